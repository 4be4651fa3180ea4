"""The requests-for-information API, /api/v1/rfis/: thin views over ``messaging.rfis.services``.

A request the caller may not see answers 404 with the same body as one that does not exist or an id that is not an
id. Errors are ``{"detail", "code"}`` (and ``errors`` per field for bad input), from ``isn.api.exception_handler``;
authentication and permissions are the API's defaults (a session with both factors or an API key; writes need the
key's write scope).
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from isn.errors import InvalidInput, NotFound, PermissionDenied
from isn.input import RefuseUnknownFields, id_field, takes_no_body
from messaging.api.common import (
    ERROR,
    AgencyRefSerializer,
    ItemFilterBackend,
    NewestFirstPagination,
    OfficeRefSerializer,
    idempotent,
)
from messaging.core.people import content_membership
from messaging.models import RFI_SUBJECT_MAX_LENGTH, RFI_TEXT_MAX_LENGTH, Priority, Rfi, RfiStatus
from messaging.models.hits import HIT_REFERENCE_LENGTH
from messaging.rfis import services as rfis


class RfiFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=RfiStatus.choices)
    priority = django_filters.ChoiceFilter(choices=Priority.choices)
    direction = django_filters.ChoiceFilter(
        choices=rfis.DIRECTIONS, method="filter_direction", label="sent: asked by your agency; received: asked of it"
    )

    class Meta:
        model = Rfi
        fields = ["status", "priority", "direction"]

    def filter_direction(self, queryset: QuerySet[Rfi], name: str, value: str) -> QuerySet[Rfi]:
        return rfis.rfis_in_direction(queryset, self.request.user, value)


# --- serializers: input --------------------------------------------------------------------------------------------


class RfiCreateSerializer(RefuseUnknownFields, serializers.Serializer):
    target_agency = id_field(
        required=False,
        allow_null=True,
        default=None,
        help_text="Id of the agency asked: an active agency of another country. Required unless hit_reference is "
        "given (the request then goes to the agency holding the item hit).",
    )
    target_office = id_field(
        required=False,
        allow_null=True,
        default=None,
        help_text="Id of one of its offices, typically your BLO's counterpart; else its duty desk is told.",
    )
    item = serializers.UUIDField(
        required=False,
        allow_null=True,
        default=None,
        help_text="An item you may read that the question is about; the asked side sees only its id.",
    )
    hit_reference = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        default=None,
        max_length=HIT_REFERENCE_LENGTH,
        help_text="A hit reference (HIT-...) your agency received from an identifier check: the request goes to the "
        "agency holding the item hit, which alone sees which of its items it named. Unknown or another agency's: 404.",
    )
    subject = serializers.CharField(max_length=RFI_SUBJECT_MAX_LENGTH, help_text="One line.")
    question = serializers.CharField(max_length=RFI_TEXT_MAX_LENGTH, trim_whitespace=False)
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.ROUTINE)
    due_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="When an answer is needed; by default 2 hours (FLASH), 24 hours (PRIORITY) or 7 days (ROUTINE).",
    )


class RfiReplyCreateSerializer(RefuseUnknownFields, serializers.Serializer):
    body = serializers.CharField(max_length=RFI_TEXT_MAX_LENGTH, trim_whitespace=False)
    item = serializers.UUIDField(
        required=False,
        allow_null=True,
        default=None,
        help_text="An item your agency posted, already released to the other side, that answers the question.",
    )


def _validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise InvalidInput("The request is not valid; see errors.", extra={"fields": serializer.errors})
    return dict(serializer.validated_data)


# --- serializers: output -------------------------------------------------------------------------------------------


class _RfiMetadataSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="rfi.id")
    direction = serializers.ChoiceField(choices=rfis.DIRECTIONS, help_text="From your agency's point of view.")
    requester_agency = AgencyRefSerializer(source="rfi.requester_agency")
    requester_office = OfficeRefSerializer(source="rfi.requester_office", allow_null=True)
    requester_country = serializers.CharField(source="rfi.requester_country")
    target_agency = AgencyRefSerializer(source="rfi.target_agency")
    target_office = OfficeRefSerializer(source="rfi.target_office", allow_null=True)
    target_country = serializers.CharField(source="rfi.target_country")
    item = serializers.UUIDField(source="rfi.item_id", allow_null=True, help_text="The item asked about, if any.")
    hit_reference = serializers.SerializerMethodField(help_text="The hit the request was opened from, if any.")
    priority = serializers.ChoiceField(choices=Priority.choices, source="rfi.priority")
    status = serializers.ChoiceField(choices=RfiStatus.choices, source="rfi.status")
    due_at = serializers.DateTimeField(source="rfi.due_at")
    escalation_level = serializers.IntegerField(
        source="rfi.escalation_level", help_text="0: none; 1: the asked side reminded; 2: escalated nationally."
    )
    answered_at = serializers.DateTimeField(source="rfi.answered_at", allow_null=True)
    closed_at = serializers.DateTimeField(source="rfi.closed_at", allow_null=True)
    created_at = serializers.DateTimeField(source="rfi.created_at")
    updated_at = serializers.DateTimeField(source="rfi.updated_at")

    def get_hit_reference(self, content: Any) -> str | None:
        return content.rfi.hit.reference if content.rfi.hit_id else None


class RfiSummarySerializer(_RfiMetadataSerializer):
    subject = serializers.CharField(allow_null=True, help_text="Null when it could not be opened (recorded).")


class RfiReplySerializer(serializers.Serializer):
    id = serializers.IntegerField(source="reply.id")
    author_agency = AgencyRefSerializer(source="reply.author_agency")
    body = serializers.CharField()
    item = serializers.UUIDField(source="reply.item_id", allow_null=True, help_text="An item attached to the answer.")
    created_at = serializers.DateTimeField(source="reply.created_at")


class RfiDetailSerializer(_RfiMetadataSerializer):
    subject = serializers.CharField()
    question = serializers.CharField()
    replies = RfiReplySerializer(many=True, help_text="The thread, oldest first.")
    hit_item = serializers.UUIDField(
        source="hit_item_id",
        allow_null=True,
        help_text="For the agency holding the item a hit named (the asked agency): that item. Null for anyone else.",
    )


class RfiStateSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=RfiStatus.choices)
    due_at = serializers.DateTimeField()
    answered_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)


_RFI_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The request's id.")
_NOT_FOUND = OpenApiResponse(ERROR, description="No such request, or not one you may see (indistinguishable).")


def _rfi_replay(request: Request, kwargs: dict[str, Any], rfi_id: str) -> Any:
    return RfiDetailSerializer(rfis.rfi_read(actor=request.user, rfi_id=rfi_id)).data


def _reply_replay(request: Request, kwargs: dict[str, Any], reply_id: str) -> Any:
    for reply in rfis.rfi_read(actor=request.user, rfi_id=kwargs["pk"]).replies:
        if str(reply.reply.pk) == reply_id:
            return RfiReplySerializer(reply).data
    raise NotFound("No such reply.")


def _rfi_state_replay(request: Request, kwargs: dict[str, Any], rfi_id: str) -> Any:
    return RfiStateSerializer(rfis.rfi_read(actor=request.user, rfi_id=rfi_id).rfi).data


@extend_schema_view(
    list=extend_schema(
        summary="Requests for information your agency sent or received, newest first (every id listed is recorded)",
        responses={200: RfiSummarySerializer(many=True), 400: ERROR, 403: ERROR},
    ),
    create=extend_schema(
        summary="Ask another country's agency (or one of its offices) a question",
        request=RfiCreateSerializer,
        responses={201: RfiDetailSerializer, 400: ERROR, 403: ERROR},
    ),
    retrieve=extend_schema(
        summary="Open a request for information with its thread (recorded)",
        parameters=[_RFI_ID],
        responses={200: RfiDetailSerializer, 404: _NOT_FOUND, 409: ERROR},
    ),
)
class RfiViewSet(viewsets.GenericViewSet):
    """Requests for information, scoped to the caller by ``messaging.rfis.services.rfis_visible_to``."""

    queryset = Rfi.objects.none()  # names the model for the schema and denial records; see get_queryset
    serializer_class = RfiDetailSerializer
    pagination_class = NewestFirstPagination
    filter_backends = [ItemFilterBackend]
    filterset_class = RfiFilter
    # Any segment reaches the view, so a malformed id gets the same JSON 404 as an unknown one.
    lookup_value_regex = "[^/]+"
    http_method_names = ["get", "post", "head", "options"]

    def get_queryset(self) -> QuerySet[Rfi]:
        return rfis.rfis_for_listing(self.request.user)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        summaries = rfis.rfi_list(actor=request.user, rfis=page or [])
        return self.get_paginated_response(RfiSummarySerializer(summaries, many=True).data)

    @idempotent("messaging.rfi", replay=_rfi_replay)
    def create(self, request: Request) -> Response:
        if content_membership(request.user) is None:  # refused before the body is judged
            raise PermissionDenied("Only officers of a member agency may send requests for information.")
        data: dict[str, Any] = _validated(RfiCreateSerializer, request.data)
        data["item_id"] = data.pop("item")
        content = rfis.rfi_create(actor=request.user, **data)
        return Response(RfiDetailSerializer(content).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(RfiDetailSerializer(rfis.rfi_read(actor=request.user, rfi_id=pk)).data)

    @idempotent("messaging.rfireply", replay=_reply_replay)
    @extend_schema(
        summary="Reply in the thread (the asked side's reply answers it; the asker's reopens an answered one)",
        parameters=[_RFI_ID],
        request=RfiReplyCreateSerializer,
        responses={201: RfiReplySerializer, 400: ERROR, 403: ERROR, 404: _NOT_FOUND, 409: ERROR},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def replies(self, request: Request, pk: str) -> Response:
        rfis.rfi_get(request.user, rfi_id=pk)  # a request the caller may not see is 404 before a body is judged
        data = _validated(RfiReplyCreateSerializer, request.data)
        reply = rfis.rfi_reply(actor=request.user, rfi_id=pk, body=data["body"], item_id=data["item"])
        return Response(RfiReplySerializer(reply).data, status=status.HTTP_201_CREATED)

    @idempotent("messaging.rfi", replay=_rfi_state_replay)
    @extend_schema(
        summary="Asking agency: close the request (it takes no more replies)",
        parameters=[_RFI_ID],
        request=None,
        responses={200: RfiStateSerializer, 403: ERROR, 404: _NOT_FOUND, 409: ERROR},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    @takes_no_body
    def close(self, request: Request, pk: str) -> Response:
        return Response(RfiStateSerializer(rfis.rfi_close(actor=request.user, rfi_id=pk)).data)
