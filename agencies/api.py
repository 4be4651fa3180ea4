"""Directory API (read-only: /api/v1/agencies/, /api/v1/offices/), agency admins' API keys (/api/v1/api-keys/), the
sync keys' declarations that national auditors approve (/api/v1/sync-declarations/), and memberships with their
two-person proposals (/api/v1/memberships/, /api/v1/membership-proposals/)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from agencies.api_keys import api_key_issue, api_key_revoke
from agencies.enrolment import enrolment_code_issue
from agencies.memberships import (
    agency_admin_propose,
    first_admin_propose,
    membership_proposal_approve,
    membership_proposal_cancel,
    membership_proposal_decline,
    second_factor_reset_propose,
)
from agencies.models import (
    Agency,
    AgencyKind,
    ApiKey,
    ApiKeyScope,
    CountryCode,
    Membership,
    MembershipProposal,
    Office,
    OfficeKind,
    ProposalKind,
    ProposalStatus,
    Role,
    SyncDeclaration,
    SyncDeclarationStatus,
)
from agencies.permissions import (
    IsAgencyAdmin,
    IsAgencyAdminOrAuditor,
    IsNetworkMember,
    IsSignedInPerson,
    ProposesOrDecides,
)
from agencies.selectors import (
    agencies_visible_to,
    api_keys_visible_to,
    membership_for,
    membership_proposals_visible_to,
    memberships_visible_to,
    offices_visible_to,
    sync_declarations_visible_to,
)
from agencies.services import membership_change, membership_create, membership_set_active
from agencies.sync_keys import MAX_DAILY_READS, sync_declaration_approve, sync_declaration_refuse, sync_key_declare
from isn.errors import InvalidInput, NotFound, PermissionDenied
from isn.input import IdFilter, RefuseUnknownFields, id_field, takes_no_body


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
    agency = IdFilter(field_name="agency_id")
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
    sync_daily_reads = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        default=None,
        help_text="The approved daily volume of a sync key, which the auditors' flags judge it by; null: not one.",
    )
    sync_pending_daily_reads = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        default=None,
        help_text="A declared daily volume awaiting a national auditor's approval; null: none.",
    )

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "scopes",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "sync_daily_reads",
            "sync_pending_daily_reads",
        ]
        read_only_fields = fields


class ApiKeyIssueSerializer(RefuseUnknownFields, serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=ApiKeyScope.choices), min_length=1)
    expires_at = serializers.DateTimeField()


class IssuedApiKeySerializer(ApiKeySerializer):
    key = serializers.CharField(help_text="The whole key. Shown this once only: store it in the agency's system.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class SyncDeclareSerializer(RefuseUnknownFields, serializers.Serializer):
    daily_reads = serializers.IntegerField(
        min_value=1,
        max_value=MAX_DAILY_READS,
        help_text="How many reads (items, lists, downloads) the system makes on an ordinary day.",
    )


class SyncDeclarationSerializer(serializers.ModelSerializer):
    api_key = serializers.IntegerField(source="key_id", read_only=True)
    api_key_name = serializers.CharField(source="key.name", read_only=True)
    api_key_prefix = serializers.CharField(source="key.prefix", read_only=True)
    agency = serializers.CharField(source="key.agency.short_name", read_only=True)
    country = serializers.CharField(source="key.agency.country_id", read_only=True)
    declared_by = serializers.CharField(source="declared_by.username", read_only=True)
    decided_by = serializers.CharField(source="decided_by.username", read_only=True, allow_null=True, default=None)

    class Meta:
        model = SyncDeclaration
        fields = [
            "id",
            "api_key",
            "api_key_name",
            "api_key_prefix",
            "agency",
            "country",
            "daily_reads",
            "status",
            "declared_by",
            "declared_at",
            "decided_by",
            "decided_at",
            "refusal_reason",
            "replaced_at",
        ]
        read_only_fields = fields


class SyncRefuseSerializer(RefuseUnknownFields, serializers.Serializer):
    reason = serializers.CharField(max_length=500, help_text="Why, for the agency admin who declared it.")


class SyncDeclarationFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=SyncDeclarationStatus.choices)

    class Meta:
        model = SyncDeclaration
        fields = ["status"]


def _valid(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    incoming = serializer_class(data=request.data)
    if not incoming.is_valid():
        raise InvalidInput("The request is not valid.", extra={"fields": incoming.errors})
    return dict(incoming.validated_data)


_KEY_MANAGERS = (Role.AGENCY_ADMIN, Role.NATIONAL_AUDITOR, Role.REGIONAL_AUDITOR)


def _key_manager_membership(request: Request) -> Membership:
    """An agency admin (content and admin keys) or an auditor (audit keys); api_key_issue judges the scopes."""
    membership = membership_for(request.user)
    if membership is None or membership.role not in _KEY_MANAGERS:
        raise PermissionDenied("Only an agency admin or an auditor may manage API keys.")
    return membership


class ApiKeyViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Agency admins: their agency's API keys; auditors: the audit keys of their reach (a national auditor their
    country's, the regional auditor the network-wide ones). Issue one (shown once), list them, revoke one. An audit
    key reaches no further than the auditor who issued it, and only auditors issue them."""

    serializer_class = ApiKeySerializer
    permission_classes = [IsSignedInPerson, IsNetworkMember]
    pagination_class = None

    def get_queryset(self) -> QuerySet[ApiKey]:
        return api_keys_visible_to(self.request.user)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        _key_manager_membership(request)
        return super().list(request, *args, **kwargs)

    @extend_schema(request=ApiKeyIssueSerializer, responses={201: IssuedApiKeySerializer})
    def create(self, request: Request) -> Response:
        incoming = ApiKeyIssueSerializer(data=request.data)
        if not incoming.is_valid():
            raise InvalidInput("The key request is not valid.", extra={"fields": incoming.errors})
        membership = _key_manager_membership(request)
        issued = api_key_issue(actor=request.user, agency=membership.agency, **incoming.validated_data)
        body = {**ApiKeySerializer(issued.key).data, "key": issued.plaintext}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: ApiKeySerializer})
    @action(detail=True, methods=["post"])
    @takes_no_body
    def revoke(self, request: Request, pk: str) -> Response:
        key = self.get_object()
        return Response(ApiKeySerializer(api_key_revoke(actor=request.user, key=key)).data)

    @extend_schema(request=SyncDeclareSerializer, responses={201: SyncDeclarationSerializer})
    @action(detail=True, methods=["post"], url_path="sync-declaration")
    def declare_sync(self, request: Request, pk: str) -> Response:
        """Declare the key a sync key with its expected daily volume; in force once a national auditor approves."""
        key = self.get_object()
        declaration = sync_key_declare(actor=request.user, key=key, **_valid(SyncDeclareSerializer, request))
        return Response(SyncDeclarationSerializer(declaration).data, status=status.HTTP_201_CREATED)


class SyncDeclarationViewSet(viewsets.ReadOnlyModelViewSet):
    """Sync keys' declared daily volumes: agency admins see their agency's, national auditors their country's (and
    approve or refuse those awaiting a decision), the regional auditor all. ``?status=pending`` lists the waiting."""

    serializer_class = SyncDeclarationSerializer
    filterset_class = SyncDeclarationFilter
    permission_classes = [IsSignedInPerson, IsAgencyAdminOrAuditor]

    def get_queryset(self) -> QuerySet[SyncDeclaration]:
        return sync_declarations_visible_to(self.request.user)

    @extend_schema(request=None, responses={200: SyncDeclarationSerializer})
    @action(detail=True, methods=["post"])
    @takes_no_body
    def approve(self, request: Request, pk: str) -> Response:
        """A national auditor of the key's country (not its declarant) approves: the volume is in force from now."""
        declaration = sync_declaration_approve(actor=request.user, declaration=self.get_object())
        return Response(SyncDeclarationSerializer(declaration).data)

    @extend_schema(request=SyncRefuseSerializer, responses={200: SyncDeclarationSerializer})
    @action(detail=True, methods=["post"])
    def refuse(self, request: Request, pk: str) -> Response:
        """A national auditor of the key's country refuses, saying why; any volume approved before stays in force."""
        declaration = self.get_object()
        reason = _valid(SyncRefuseSerializer, request)["reason"]
        refused = sync_declaration_refuse(actor=request.user, declaration=declaration, reason=reason)
        return Response(SyncDeclarationSerializer(refused).data)


class EnrolmentCodeRequestSerializer(RefuseUnknownFields, serializers.Serializer):
    username = serializers.CharField(max_length=150, help_text="A member of your agency who has no second factor yet.")


class EnrolmentCodeSerializer(serializers.Serializer):
    username = serializers.CharField()
    code = serializers.CharField(help_text="The one-time enrolment code. Shown this once only: give it to the person.")
    expires_at = serializers.DateTimeField()


class EnrolmentCodeViewSet(viewsets.ViewSet):
    """Agency admins, in person: a one-time code with which a member of their agency enrols a first second factor
    (required in production). It expires after ``ISN_ENROLMENT_CODE_HOURS`` and replaces any unspent one."""

    permission_classes = [IsSignedInPerson, IsAgencyAdmin]

    @extend_schema(request=EnrolmentCodeRequestSerializer, responses={201: EnrolmentCodeSerializer})
    def create(self, request: Request) -> Response:
        username = _valid(EnrolmentCodeRequestSerializer, request)["username"]
        issued = enrolment_code_issue(actor=request.user, username=username)
        body = {"username": issued.username, "code": issued.code, "expires_at": issued.expires_at}
        return Response(EnrolmentCodeSerializer(body).data, status=status.HTTP_201_CREATED)


# Memberships and the two-person rules (agencies.services, agencies.memberships).


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    agency = serializers.IntegerField(source="agency_id", read_only=True)
    country = serializers.CharField(source="agency.country_id", read_only=True)
    office = serializers.IntegerField(source="office_id", read_only=True, allow_null=True)

    class Meta:
        model = Membership
        fields = ["id", "username", "agency", "country", "office", "role", "is_active", "created_at", "updated_at"]
        read_only_fields = fields


class MembershipGrantSerializer(RefuseUnknownFields, serializers.Serializer):
    username = serializers.CharField(max_length=150, help_text="An existing account that has no membership yet.")
    role = serializers.ChoiceField(
        choices=Role.choices, help_text="Any role but agency_admin, which a second person approves (a proposal)."
    )
    office = id_field(required=False, allow_null=True, default=None, help_text="An office of your agency, or null.")


class MembershipChangeSerializer(RefuseUnknownFields, serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    office = id_field(required=False, allow_null=True, help_text="An office of your agency, or null.")
    is_active = serializers.BooleanField(required=False, help_text="false suspends the membership, true restores it.")


def _office_of(agency: Agency, office_id: int | None) -> Office | None:
    if office_id is None:
        return None
    office = Office.objects.filter(pk=office_id, agency=agency).first()
    if office is None:
        raise InvalidInput("The office must belong to the agency.", extra={"fields": {"office": ["Not one of its."]}})
    return office


class MembershipViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Agency admins, in person: their agency's memberships. Grant one to an existing account with none, change a
    member's role or office, suspend or restore one. A new agency admin is proposed instead
    (``/api/v1/membership-proposals/``): a second person of the country approves. Accounts themselves are made by
    the platform's operator, who grants no membership."""

    serializer_class = MembershipSerializer
    permission_classes = [IsSignedInPerson, IsAgencyAdmin]

    def get_queryset(self) -> QuerySet[Membership]:
        return memberships_visible_to(self.request.user)

    @extend_schema(request=MembershipGrantSerializer, responses={201: MembershipSerializer})
    def create(self, request: Request) -> Response:
        data = _valid(MembershipGrantSerializer, request)
        agency = membership_for(request.user).agency  # type: ignore[union-attr]  # IsAgencyAdmin: a member
        user = get_user_model().objects.filter(username=data["username"], api_key__isnull=True).first()
        if user is None:
            raise NotFound("There is no account with that username.")
        office = _office_of(agency, data["office"])
        membership = membership_create(actor=request.user, user=user, agency=agency, role=data["role"], office=office)
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=MembershipChangeSerializer, responses={200: MembershipSerializer})
    def partial_update(self, request: Request, pk: str) -> Response:
        membership = self.get_object()
        data = _valid(MembershipChangeSerializer, request)
        with transaction.atomic():  # all of the change or none of it
            if "role" in data or "office" in data:
                office = _office_of(membership.agency, data["office"]) if "office" in data else membership.office
                role = data.get("role", membership.role)
                membership = membership_change(actor=request.user, membership=membership, role=role, office=office)
            if "is_active" in data and data["is_active"] != membership.is_active:
                membership = membership_set_active(
                    actor=request.user, membership=membership, is_active=data["is_active"]
                )
        return Response(MembershipSerializer(membership).data)


class MembershipProposalSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="subject.username", read_only=True)
    agency = serializers.IntegerField(source="agency_id", read_only=True)
    agency_short_name = serializers.CharField(source="agency.short_name", read_only=True)
    country = serializers.CharField(source="agency.country_id", read_only=True)
    office = serializers.IntegerField(source="office_id", read_only=True, allow_null=True)
    status = serializers.SerializerMethodField()
    proposed_by = serializers.CharField(source="proposed_by.username", read_only=True)
    decided_by = serializers.CharField(source="decided_by.username", read_only=True, allow_null=True, default=None)

    class Meta:
        model = MembershipProposal
        fields = [
            "id",
            "kind",
            "username",
            "agency",
            "agency_short_name",
            "country",
            "role",
            "office",
            "status",
            "proposed_by",
            "created_at",
            "expires_at",
            "decided_by",
            "decided_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=ProposalStatus.choices))
    def get_status(self, proposal: MembershipProposal) -> str:
        """A waiting proposal past its expiry is expired, whether or not anyone has touched it since."""
        if proposal.status == ProposalStatus.PENDING and proposal.expires_at <= timezone.now():
            return ProposalStatus.EXPIRED
        return proposal.status


class MembershipProposalCreateSerializer(RefuseUnknownFields, serializers.Serializer):
    kind = serializers.ChoiceField(choices=ProposalKind.choices)
    username = serializers.CharField(max_length=150, help_text="The person the proposal is about.")
    agency = id_field(
        required=False,
        allow_null=True,
        default=None,
        help_text="first_admin only (the platform's operator): the agency without an admin. Otherwise your own.",
    )
    office = id_field(required=False, allow_null=True, default=None, help_text="The new admin's office, or null.")


class MembershipProposalFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ProposalStatus.choices)
    kind = django_filters.ChoiceFilter(choices=ProposalKind.choices)

    class Meta:
        model = MembershipProposal
        fields = ["status", "kind"]


class MembershipProposalViewSet(viewsets.ReadOnlyModelViewSet):
    """Two-person rules. An agency admin proposes a new admin of their agency or the reset of a member's lost second
    factor; the platform's operator proposes the first admin of an agency with none. A second person of the agency's
    country approves (applied at once) or declines: a national focal point of the country, or another admin of the
    agency (a first admin: a national focal point only); never the proposer or the person concerned. Proposals expire
    after seven days undecided. Agency admins see their agency's proposals, national focal points their country's,
    the operator the first-admin ones."""

    serializer_class = MembershipProposalSerializer
    filterset_class = MembershipProposalFilter
    permission_classes = [IsSignedInPerson, ProposesOrDecides]

    def get_queryset(self) -> QuerySet[MembershipProposal]:
        return membership_proposals_visible_to(self.request.user)

    @extend_schema(request=MembershipProposalCreateSerializer, responses={201: MembershipProposalSerializer})
    def create(self, request: Request) -> Response:
        data = _valid(MembershipProposalCreateSerializer, request)
        kind, username = data["kind"], data["username"]
        if kind == ProposalKind.FIRST_ADMIN:
            agency = Agency.objects.filter(pk=data["agency"], is_active=True).first()
            if agency is None:
                raise NotFound("There is no active agency with that id.")
            office = _office_of(agency, data["office"])
            proposal = first_admin_propose(actor=request.user, agency=agency, username=username, office=office)
        else:
            membership = membership_for(request.user)
            if membership is None or membership.role != Role.AGENCY_ADMIN:
                raise PermissionDenied("Only an agency admin proposes this, for their own agency.")
            if data["agency"] not in (None, membership.agency_id):
                raise InvalidInput(
                    "You propose for your own agency only.", extra={"fields": {"agency": ["Not yours."]}}
                )
            if kind == ProposalKind.AGENCY_ADMIN:
                office = _office_of(membership.agency, data["office"])
                proposal = agency_admin_propose(
                    actor=request.user, agency=membership.agency, username=username, office=office
                )
            else:
                if data["office"] is not None:
                    raise InvalidInput("A reset takes no office.", extra={"fields": {"office": ["Not taken here."]}})
                proposal = second_factor_reset_propose(actor=request.user, agency=membership.agency, username=username)
        return Response(MembershipProposalSerializer(proposal).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: MembershipProposalSerializer})
    @action(detail=True, methods=["post"])
    @takes_no_body
    def approve(self, request: Request, pk: str) -> Response:
        """A second person approves: the new admin is made, or the second factor reset, at once."""
        proposal = membership_proposal_approve(actor=request.user, proposal=self.get_object())
        return Response(MembershipProposalSerializer(proposal).data)

    @extend_schema(request=None, responses={200: MembershipProposalSerializer})
    @action(detail=True, methods=["post"])
    @takes_no_body
    def decline(self, request: Request, pk: str) -> Response:
        """A second person declines: nothing changes."""
        proposal = membership_proposal_decline(actor=request.user, proposal=self.get_object())
        return Response(MembershipProposalSerializer(proposal).data)

    @extend_schema(request=None, responses={200: MembershipProposalSerializer})
    @action(detail=True, methods=["post"])
    @takes_no_body
    def cancel(self, request: Request, pk: str) -> Response:
        """Its proposer withdraws a waiting proposal."""
        proposal = membership_proposal_cancel(actor=request.user, proposal=self.get_object())
        return Response(MembershipProposalSerializer(proposal).data)
