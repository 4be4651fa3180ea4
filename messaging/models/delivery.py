"""Deliveries to agencies and offices, acknowledgements, in-portal notifications, subscriptions and webhooks."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from messaging.models.items import BORDER_CROSSING_MAX_LENGTH, Category, Item, Priority
from messaging.models.plumbing import OutboxMessage


class DeliveryReason(models.TextChoices):
    COUNTERPART = "counterpart", _("Counterpart BLO of the posting office")
    SUBSCRIPTION = "subscription", _("Matching subscription")
    DUTY_DESK = "duty_desk", _("Agency duty desk")
    NAMED = "named", _("Named on the item")
    FORWARDED = "forwarded", _("Forwarded inside the country")
    CONSENTED = "consented", _("Shared with the originator's consent")


class Delivery(models.Model):
    """An item routed to one recipient: an office, a person, or (without either) a whole agency.

    At most one per (item, agency, office, user), nulls counted as equal, so a repeated routing message adds nothing.
    """

    id = models.BigAutoField(primary_key=True)
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="deliveries")
    agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="+")
    office = models.ForeignKey("agencies.Office", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(max_length=16, choices=DeliveryReason.choices)
    # Denormalised from the item: the FLASH escalation sweep is one partial-index scan.
    priority = models.CharField(max_length=10, choices=Priority.choices)
    routed_at = models.DateTimeField(default=timezone.now)
    notified_at = models.DateTimeField(null=True, blank=True, help_text=_("First e-mail or webhook sent for it."))
    read_at = models.DateTimeField(null=True, blank=True, help_text=_("First opened by a member of the agency."))
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    escalation_level = models.PositiveSmallIntegerField(default=0)
    escalated_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, help_text=_("Access removed by narrowing or withdrawal."))

    class Meta:
        ordering = ["item_id", "agency_id", "id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["item", "agency", "office", "user"],
                name="delivery_once_per_recipient",
                nulls_distinct=False,
            ),
        ]
        indexes = [
            models.Index(fields=["agency", "item"], name="delivery_agency_item_idx"),
            models.Index(
                fields=["escalation_level", "routed_at"],
                condition=models.Q(priority="flash", acknowledged_at__isnull=True, revoked_at__isnull=True),
                name="delivery_flash_unacked_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"delivery of {self.item_id} to agency {self.agency_id} ({self.reason})"


class AcknowledgementNote(models.TextChoices):
    ACTIONED = "actioned", _("Actioned")
    NO_TRACE = "no_trace", _("No trace")
    OPERATION_PLANNED = "operation_planned", _("Operation planned")
    OTHER = "other", _("Other")


ACKNOWLEDGEMENT_TEXT_MAX_LENGTH = 1000


class Acknowledgement(models.Model):
    """A receiving agency has acknowledged an item: once per agency. Its free text is sealed like the item's."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="acknowledgements")
    agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    note = models.CharField(max_length=20, choices=AcknowledgementNote.choices, blank=True)
    note_text_sealed = models.BinaryField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["item_id", "created_at"]
        constraints = [models.UniqueConstraint(fields=["item", "agency"], name="acknowledgement_once_per_agency")]

    def __str__(self) -> str:
        return f"{self.item_id} acknowledged by agency {self.agency_id}"


class NotificationKind(models.TextChoices):
    ROUTED = "item_routed", _("An item was routed to you")
    ESCALATED = "flash_escalated", _("A FLASH item is not acknowledged yet")
    ESCALATED_NATIONAL = "flash_escalated_national", _("A FLASH item is still not acknowledged: national escalation")
    REVOKED = "item_revoked", _("Your access to an item was removed")
    FORWARDED = "item_forwarded", _("An item was forwarded to you")
    CONSENT_REQUESTED = "consent_requested", _("A consent request waits for your decision")
    CONSENT_REMINDER = "consent_reminder", _("A consent request is due")
    CONSENT_ESCALATED = "consent_escalated", _("A consent request is overdue")
    CONSENT_APPROVED = "consent_approved", _("Your consent request was approved")
    CONSENT_DECLINED = "consent_declined", _("Your consent request was declined")
    RFI_RECEIVED = "rfi_received", _("A request for information was sent to you")
    RFI_REPLIED = "rfi_replied", _("A request for information has a new reply")
    RFI_REMINDER = "rfi_reminder", _("A request for information is due")
    RFI_ESCALATED = "rfi_escalated", _("A request for information is overdue")
    RFI_CLOSED = "rfi_closed", _("A request for information was closed")
    HIT_ON_ITEM = "hit_on_item", _("An identifier check matched an item of your agency")


class Notification(models.Model):
    """Something a person is told about an item, a consent request or a request for information, in the portal and
    by e-mail: metadata and a link, never content. At most one per (user, kind, subject), nulls counted as equal."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    consent = models.ForeignKey(
        "messaging.ConsentRequest", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    rfi = models.ForeignKey("messaging.Rfi", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    # A hit on an item of the person's agency (with ``item``): one notification per hit, deleted with the hit.
    hit = models.ForeignKey("messaging.Hit", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    # The sent-once guard for e-mail: claimed (with a lease) before sending, marked sent after.
    email_claimed_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "item", "consent", "rfi", "hit", "kind"],
                name="notification_once_per_kind_and_hit",
                nulls_distinct=False,
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-created_at", "-id"], name="notification_user_newest_idx"),
            models.Index(fields=["user"], condition=models.Q(read_at__isnull=True), name="notification_unread_idx"),
            models.Index(
                fields=["item", "kind"], condition=models.Q(emailed_at__isnull=True), name="notification_unmailed_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for user {self.user_id} about {self.item_id}"


class Subscription(models.Model):
    """An office or a person of an agency asks to receive items matching these criteria (blank means any)."""

    agency = models.ForeignKey("agencies.Agency", on_delete=models.CASCADE, related_name="+")
    office = models.ForeignKey("agencies.Office", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    category = models.CharField(max_length=32, choices=Category.choices, blank=True)
    priority = models.CharField(max_length=10, choices=Priority.choices, blank=True)
    originator_country = models.CharField(max_length=2, blank=True)
    border_crossing = models.CharField(max_length=BORDER_CROSSING_MAX_LENGTH, blank=True)
    province = models.CharField(max_length=100, blank=True, help_text=_("Province of the posting office."))
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["agency_id", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(office__isnull=False) | models.Q(user__isnull=False),
                name="subscription_has_office_or_user",
            ),
        ]
        indexes = [models.Index(fields=["agency"], condition=models.Q(is_active=True), name="subscription_active_idx")]

    def __str__(self) -> str:
        return f"subscription #{self.pk} of agency {self.agency_id}"


class AgencyWebhook(models.Model):
    """Where an agency's own system wants to be told about items; the signing secret is sealed under the master key."""

    agency = models.OneToOneField("agencies.Agency", on_delete=models.CASCADE, related_name="+")
    url = models.URLField(max_length=500)
    secret_sealed = models.BinaryField(editable=False)
    # The master key version (agencies.MasterKeyVersion.version) that sealed ``secret_sealed``.
    secret_master_version = models.PositiveIntegerField(default=1)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"webhook of agency {self.agency_id}"


class WebhookDeadLetter(models.Model):
    """A webhook call that failed every attempt: shown to the agency's admins, who can fix their receiver."""

    agency = models.ForeignKey("agencies.Agency", on_delete=models.CASCADE, related_name="+")
    # The item the call was about; null only for news of a request for information that names none (``rfi``).
    item = models.ForeignKey(Item, on_delete=models.CASCADE, null=True, related_name="+")
    rfi = models.ForeignKey("messaging.Rfi", on_delete=models.CASCADE, null=True, related_name="+")
    # The call's outbox payload (ids and codes only), to queue it again once that row is pruned.
    payload = models.JSONField(default=dict, blank=True)
    outbox_message = models.OneToOneField(OutboxMessage, on_delete=models.SET_NULL, null=True, related_name="+")
    event = models.CharField(max_length=32)
    attempts = models.PositiveIntegerField()
    last_error = models.CharField(max_length=100, help_text=_("HTTP status or error class; never a response body."))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["agency", "-created_at"], name="webhook_dead_letter_agency_idx")]

    def __str__(self) -> str:
        return f"dead webhook {self.event} of {self.item_id} for agency {self.agency_id}"
