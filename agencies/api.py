"""Directory API (read-only: /api/v1/agencies/, /api/v1/offices/) and agency admins' API keys (/api/v1/api-keys/)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Q, QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from agencies.api_keys import api_key_issue, api_key_revoke
from agencies.models import Agency, AgencyKind, ApiKey, ApiKeyScope, CountryCode, Membership, Office, OfficeKind, Role
from agencies.permissions import IsNetworkMember, IsSignedInPerson
from agencies.selectors import agencies_visible_to, api_keys_visible_to, membership_for, offices_visible_to
from isn.errors import InvalidInput, PermissionDenied


class CountrySummarySerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class AgencySerializer(serializers.ModelSerializer):
    country = CountrySummarySerializer(read_only=True)

    class Meta:
        model = Agency
        fields = ["id", "name", "short_name", "kind", "country"]
        read_only_fields = fields


class OfficeSummarySerializer(serializers.ModelSerializer):
    agency = serializers.CharField(source="agency.short_name", read_only=True)
    country = serializers.CharField(source="agency.country_id", read_only=True)

    class Meta:
        model = Office
        fields = ["id", "name", "border_crossing", "agency", "country"]
        read_only_fields = fields


@extend_schema_field({"type": "string", "pattern": r"^\d{2}:\d{2}(:\d{2}(\.\d+)?)?$", "example": "07:30:00"})
class LocalTimeField(serializers.TimeField):
    """A wall-clock time in the office's own time zone: no UTC offset, so not an OpenAPI "time"."""


class OfficeSerializer(serializers.ModelSerializer):
    agency = AgencySerializer(read_only=True)
    counterparts = OfficeSummarySerializer(many=True, read_only=True)
    opens_at = LocalTimeField(read_only=True, help_text="Start of working hours, local time.")
    closes_at = LocalTimeField(read_only=True, help_text="End of working hours, local time.")
    contact_email = serializers.CharField(read_only=True, help_text="An e-mail address, or empty.")

    class Meta:
        model = Office
        fields = [
            "id",
            "name",
            "kind",
            "agency",
            "border_crossing",
            "province",
            "opens_at",
            "closes_at",
            "contact_phone",
            "contact_email",
            "counterparts",
        ]
        read_only_fields = fields


class AgencyFilter(django_filters.FilterSet):
    country = django_filters.ChoiceFilter(field_name="country_id", choices=CountryCode.choices)
    kind = django_filters.ChoiceFilter(choices=AgencyKind.choices)

    class Meta:
        model = Agency
        fields = ["country", "kind"]


class OfficeFilter(django_filters.FilterSet):
    country = django_filters.ChoiceFilter(field_name="agency__country_id", choices=CountryCode.choices)
    agency = django_filters.NumberFilter(field_name="agency_id")
    kind = django_filters.ChoiceFilter(choices=OfficeKind.choices)
    q = django_filters.CharFilter(method="search", label="Name, border crossing or province contains")

    class Meta:
        model = Office
        fields = ["country", "agency", "kind", "q"]

    def search(self, queryset: QuerySet[Office], name: str, value: str) -> QuerySet[Office]:
        return queryset.filter(
            Q(name__icontains=value) | Q(border_crossing__icontains=value) | Q(province__icontains=value)
        )


class AgencyViewSet(viewsets.ReadOnlyModelViewSet):
    """Member agencies of the network."""

    serializer_class = AgencySerializer
    filterset_class = AgencyFilter

    def get_queryset(self) -> QuerySet[Agency]:
        return agencies_visible_to(self.request.user)


class OfficeViewSet(viewsets.ReadOnlyModelViewSet):
    """Border Liaison Offices and duty desks, with their counterpart offices across the border."""

    serializer_class = OfficeSerializer
    filterset_class = OfficeFilter

    def get_queryset(self) -> QuerySet[Office]:
        return offices_visible_to(self.request.user)


class ApiKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "scopes", "created_at", "expires_at", "revoked_at", "last_used_at"]
        read_only_fields = fields


class ApiKeyIssueSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=ApiKeyScope.choices), min_length=1)
    expires_at = serializers.DateTimeField()


class IssuedApiKeySerializer(ApiKeySerializer):
    key = serializers.CharField(help_text="The whole key. Shown this once only: store it in the agency's system.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


def _agency_admin_membership(request: Request) -> Membership:
    membership = membership_for(request.user)
    if membership is None or membership.role != Role.AGENCY_ADMIN:
        raise PermissionDenied("Only an agency admin may manage the agency's API keys.")
    return membership


class ApiKeyViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Agency admins: their agency's API keys. Issue one (shown once), list them, revoke one."""

    serializer_class = ApiKeySerializer
    permission_classes = [IsSignedInPerson, IsNetworkMember]
    pagination_class = None

    def get_queryset(self) -> QuerySet[ApiKey]:
        return api_keys_visible_to(self.request.user)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        _agency_admin_membership(request)
        return super().list(request, *args, **kwargs)

    @extend_schema(request=ApiKeyIssueSerializer, responses={201: IssuedApiKeySerializer})
    def create(self, request: Request) -> Response:
        incoming = ApiKeyIssueSerializer(data=request.data)
        if not incoming.is_valid():
            raise InvalidInput("The key request is not valid.", extra={"fields": incoming.errors})
        membership = _agency_admin_membership(request)
        issued = api_key_issue(actor=request.user, agency=membership.agency, **incoming.validated_data)
        body = {**ApiKeySerializer(issued.key).data, "key": issued.plaintext}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: ApiKeySerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str) -> Response:
        key = self.get_object()
        return Response(ApiKeySerializer(api_key_revoke(actor=request.user, key=key)).data)
