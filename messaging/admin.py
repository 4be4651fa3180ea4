"""Items in the Django admin: metadata only, read-only. Nothing here opens or shows sealed content."""

from __future__ import annotations

from django.contrib import admin

from isn.admin_audit import ReadOnlyAuditedModelAdmin
from messaging.models import Item


@admin.register(Item)
class ItemAdmin(ReadOnlyAuditedModelAdmin):
    list_display = [
        "id",
        "originator_country",
        "originator_agency",
        "category",
        "priority",
        "handling_code",
        "status",
        "content_version",
        "review_date",
        "created_at",
    ]
    list_filter = ["status", "priority", "category", "handling_code", "originator_country"]
    list_select_related = ["originator_agency"]
    date_hierarchy = "created_at"
    search_fields = ["=id"]
    # Sealed fields are never listed, so the admin cannot even hand out ciphertext.
    fields = [
        "id",
        "originator_agency",
        "originator_office",
        "originator_user",
        "originator_country",
        "language",
        "category",
        "priority",
        "source_reliability",
        "info_credibility",
        "handling_code",
        "border_crossing",
        "review_date",
        "status",
        "content_version",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields
    show_full_result_count = False  # a COUNT(*) over every item on each page view is needless at scale

    def audit_target_country(self, obj: Item) -> str:  # type: ignore[override]
        return obj.originator_country
