from __future__ import annotations

from django.contrib import admin

from agencies.models import Agency, Country, Membership, Office


@admin.register(Country)
class CountryAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "is_state", "timezone"]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False  # the members are fixed by the MOU and created by a migration

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Agency)
class AgencyAdmin(admin.ModelAdmin):
    list_display = ["short_name", "name", "country", "kind", "is_active"]
    list_filter = ["country", "kind", "is_active"]
    search_fields = ["name", "short_name"]


@admin.register(Office)
class OfficeAdmin(admin.ModelAdmin):
    list_display = ["name", "agency", "kind", "border_crossing", "province", "is_active"]
    list_filter = ["kind", "agency__country", "is_active"]
    search_fields = ["name", "border_crossing", "province"]
    list_select_related = ["agency"]
    filter_horizontal = ["counterparts"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "agency", "office", "role", "is_active"]
    list_filter = ["role", "agency__country", "is_active"]
    search_fields = ["user__username", "user__email", "agency__short_name"]
    list_select_related = ["user", "agency", "office"]
    raw_id_fields = ["user"]
