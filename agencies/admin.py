from __future__ import annotations

from django.contrib import admin

from agencies.models import Agency, Country, Membership, MembershipProposal, Office
from isn.admin_audit import AuditedModelAdmin, ReadOnlyAuditedModelAdmin


@admin.register(Country)
class CountryAdmin(AuditedModelAdmin):
    list_display = ["code", "name", "is_state", "timezone"]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False  # the members are fixed by the MOU and created by a migration

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def audit_target_country(self, obj: Country) -> str:  # type: ignore[override]
        return obj.code


@admin.register(Agency)
class AgencyAdmin(AuditedModelAdmin):
    list_display = ["short_name", "name", "country", "kind", "is_active"]
    list_filter = ["country", "kind", "is_active"]
    search_fields = ["name", "short_name"]

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        # Moving an agency to another country would give its members that country's items: no single person's act.
        return ("country",) if obj is not None else ()


@admin.register(Office)
class OfficeAdmin(AuditedModelAdmin):
    list_display = ["name", "agency", "kind", "border_crossing", "province", "is_active"]
    list_filter = ["kind", "agency__country", "is_active"]
    search_fields = ["name", "border_crossing", "province"]
    list_select_related = ["agency"]
    filter_horizontal = ["counterparts"]

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        return ("agency",) if obj is not None else ()  # an office stays with its agency, as its members do

    def audit_target_country(self, obj: Office) -> str:  # type: ignore[override]
        return obj.agency.country_id


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAuditedModelAdmin):
    """Read-only, auditor memberships included: every membership is granted by the agency's own admin through ISN
    (``agencies.services``, ``agencies.memberships``), so the platform's operator can give nobody, themselves
    included, a place in an agency. The operator proposes an agency's first admin through the API."""

    list_display = ["user", "agency", "office", "role", "is_active"]
    list_filter = ["role", "agency__country", "is_active"]
    search_fields = ["user__username", "user__email", "agency__short_name"]
    list_select_related = ["user", "agency", "office"]

    def audit_target_country(self, obj: Membership) -> str:  # type: ignore[override]
        return obj.agency.country_id


@admin.register(MembershipProposal)
class MembershipProposalAdmin(ReadOnlyAuditedModelAdmin):
    list_display = ["kind", "subject", "agency", "status", "proposed_by", "decided_by", "created_at"]
    list_filter = ["kind", "status", "agency__country"]
    list_select_related = ["subject", "agency", "proposed_by", "decided_by"]

    def audit_target_country(self, obj: MembershipProposal) -> str:  # type: ignore[override]
        return obj.agency.country_id
