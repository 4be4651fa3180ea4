"""Items in the Django admin: metadata only, read-only. Nothing here opens or shows sealed content."""

from __future__ import annotations

from django.contrib import admin

from isn.admin_audit import AuditedModelAdmin, ReadOnlyAuditedModelAdmin
from messaging.models import (
    AgencyWebhook,
    ConsentRequest,
    Forward,
    Item,
    OutboxMessage,
    Rfi,
    Subscription,
    TaskDeadLetter,
    WebhookDeadLetter,
)
from messaging.models.delivery import Delivery


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


@admin.register(Rfi)
class RfiAdmin(ReadOnlyAuditedModelAdmin):
    """Requests for information: who asked whom, when, and where they stand; never the subject or the thread."""

    list_display = [
        "id",
        "requester_country",
        "requester_agency",
        "target_country",
        "target_agency",
        "priority",
        "status",
        "escalation_level",
        "due_at",
        "created_at",
    ]
    list_filter = ["status", "priority", "escalation_level", "requester_country", "target_country"]
    list_select_related = ["requester_agency", "target_agency"]
    date_hierarchy = "created_at"
    search_fields = ["=id"]
    # Sealed fields are never listed, so the admin cannot even hand out ciphertext.
    fields = [
        "id",
        "requester_agency",
        "requester_office",
        "requester_user",
        "requester_country",
        "target_agency",
        "target_office",
        "target_country",
        "item",
        "priority",
        "status",
        "due_at",
        "escalation_level",
        "escalated_at",
        "answered_at",
        "closed_at",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields
    show_full_result_count = False

    def audit_target_country(self, obj: Rfi) -> str:  # type: ignore[override]
        return obj.target_country


@admin.register(Forward)
class ForwardAdmin(ReadOnlyAuditedModelAdmin):
    """Who passed an item on to whom inside their country, and whether it was cut off; never the reason."""

    list_display = ["id", "item", "country", "from_agency", "to_agency", "to_office", "created_at", "revoked_at"]
    list_filter = ["country"]
    list_select_related = ["item", "from_agency", "to_agency", "to_office"]
    search_fields = ["=item__id"]
    fields = ["id", "item", "country", "from_agency", "from_user", "to_agency", "to_office", "created_at", "revoked_at"]
    readonly_fields = fields
    show_full_result_count = False

    def audit_target_country(self, obj: Forward) -> str:  # type: ignore[override]
        return obj.country_id


@admin.register(ConsentRequest)
class ConsentRequestAdmin(ReadOnlyAuditedModelAdmin):
    """Who asked to share which item with which country, and the decision; never the justification or reason."""

    list_display = ["id", "item", "requester_agency", "target_country", "target_agency", "status", "due_at"]
    list_filter = ["status", "escalation_level", "target_country"]
    list_select_related = ["item", "requester_agency", "target_agency"]
    date_hierarchy = "created_at"
    search_fields = ["=id", "=item__id"]
    # Sealed fields are never listed, so the admin cannot even hand out ciphertext.
    fields = [
        "id",
        "item",
        "requester_agency",
        "requester_user",
        "target_country",
        "target_agency",
        "status",
        "due_at",
        "escalation_level",
        "escalated_at",
        "decided_by",
        "decided_at",
        "revoked_at",
        "created_at",
    ]
    readonly_fields = fields
    show_full_result_count = False

    def audit_target_country(self, obj: ConsentRequest) -> str:  # type: ignore[override]
        return obj.item.originator_country


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAuditedModelAdmin):
    list_display = ["id", "item", "agency", "office", "user", "reason", "priority", "routed_at", "acknowledged_at"]
    list_filter = ["reason", "priority", "escalation_level"]
    list_select_related = ["item", "agency", "office", "user"]
    search_fields = ["=item__id"]
    show_full_result_count = False

    def audit_target_country(self, obj: Delivery) -> str:  # type: ignore[override]
        return obj.item.originator_country


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAuditedModelAdmin):
    list_display = ["id", "kind", "queue", "item", "created_at", "attempts", "published_at", "processed_at"]
    list_filter = ["kind", "queue"]
    search_fields = ["=item__id"]
    show_full_result_count = False


@admin.register(WebhookDeadLetter)
class WebhookDeadLetterAdmin(ReadOnlyAuditedModelAdmin):
    list_display = ["id", "agency", "item", "event", "attempts", "last_error", "created_at"]
    list_filter = ["event"]
    list_select_related = ["agency", "item"]

    def audit_target_country(self, obj: WebhookDeadLetter) -> str:  # type: ignore[override]
        return obj.agency.country_id


@admin.register(TaskDeadLetter)
class TaskDeadLetterAdmin(ReadOnlyAuditedModelAdmin):
    list_display = ["id", "task_name", "args", "error_class", "attempts", "created_at"]
    list_filter = ["task_name", "error_class"]


@admin.register(Subscription)
class SubscriptionAdmin(AuditedModelAdmin):
    list_display = ["id", "agency", "office", "user", "category", "priority", "originator_country", "is_active"]
    list_filter = ["is_active", "category", "priority"]
    list_select_related = ["agency", "office", "user"]
    raw_id_fields = ["office", "user"]

    def audit_target_country(self, obj: Subscription) -> str:  # type: ignore[override]
        return obj.agency.country_id


@admin.register(AgencyWebhook)
class AgencyWebhookAdmin(ReadOnlyAuditedModelAdmin):
    """Set through the API by the agency's admin (the secret is shown once there); here only to look at."""

    list_display = ["agency", "url", "is_active", "updated_at"]
    fields = ["agency", "url", "is_active", "created_at", "updated_at"]
    readonly_fields = fields

    def audit_target_country(self, obj: AgencyWebhook) -> str:  # type: ignore[override]
        return obj.agency.country_id
