"""What the API modules share: refs to agencies and offices, filter errors as bad input, the error shape."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request

from isn.errors import InvalidInput
from isn.schema import ProblemSerializer


class ItemFilterBackend(DjangoFilterBackend):
    """django-filter, with bad filter values reported like every other bad input."""

    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: Any) -> QuerySet[Any]:
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            errors = {name: list(messages) for name, messages in filterset.errors.items()}
            raise InvalidInput("Invalid filter.", extra={"fields": errors})
        return filterset.qs


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise InvalidInput("The request is not valid; see errors.", extra={"fields": serializer.errors})
    return dict(serializer.validated_data)


@extend_schema_field({"type": "string", "format": "binary"})
class UploadField(serializers.FileField):
    """A file sent as a multipart part: binary in the schema, so generated clients can upload it."""


class AgencyRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    short_name = serializers.CharField()
    country = serializers.CharField(source="country_id")


class OfficeRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


# The one error body (problem details); isn.api.ApiSchema documents every error answer with it.
ERROR = ProblemSerializer


class CountSerializer(serializers.Serializer):
    count = serializers.IntegerField()


class AccessCursorPagination(CursorPagination):
    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500


class NewestFirstPagination(CursorPagination):
    """Newest first; a cursor, not page numbers, so the first page costs the same at a million rows. The one
    paginator of the inbox, notifications, consent requests and requests for information."""

    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
