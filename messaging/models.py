"""Intelligence items, sealed under a per-item data key, and the grants and wrapped keys that say who may open them.

An item's title, body and attachments are sealed with its own random data key (AES-256-GCM, associated data binding
item id, field and content version). The data key is stored only wrapped, once per country the item is released to
(``ItemKey``), under that country's key-encryption key: deleting a country's ``ItemKey`` is crypto-shredding.
Visibility is decided by indexed grant rows (country, agency) and, for named individuals, by django-guardian's
direct foreign-key object permissions; ``messaging.selectors.items_visible_to`` turns them into one SQL query.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from guardian.models import UserObjectPermissionBase

TITLE_MAX_LENGTH = 300
BODY_MAX_LENGTH = 50_000
BORDER_CROSSING_MAX_LENGTH = 200
FILENAME_MAX_LENGTH = 200


class Category(models.TextChoices):
    METH_PILLS = "meth_pills", _("Methamphetamine pills")
    METH_CRYSTAL = "meth_crystal", _("Crystal methamphetamine")
    HEROIN_OPIUM = "heroin_opium", _("Heroin / opium")
    KETAMINE = "ketamine", _("Ketamine")
    CANNABIS = "cannabis", _("Cannabis")
    NPS = "nps", _("New psychoactive substances")
    PRECURSORS = "precursors", _("Precursor chemicals")
    HUMAN_TRAFFICKING = "human_trafficking", _("Human trafficking")
    WILDLIFE = "wildlife", _("Wildlife")
    TIMBER = "timber", _("Timber")
    CYBER_FRAUD = "cyber_fraud", _("Cyber-enabled fraud / scam compounds")
    MONEY_LAUNDERING = "money_laundering", _("Money laundering")
    OTHER = "other", _("Other")


class Priority(models.TextChoices):
    ROUTINE = "routine", _("Routine")
    PRIORITY = "priority", _("Priority")
    FLASH = "flash", _("Flash")


class SourceReliability(models.TextChoices):
    """Admiralty grading of the source."""

    A = "A", _("A: completely reliable")
    B = "B", _("B: usually reliable")
    C = "C", _("C: fairly reliable")
    D = "D", _("D: not usually reliable")
    E = "E", _("E: unreliable")
    X = "X", _("X: reliability cannot be judged")


class InfoCredibility(models.IntegerChoices):
    """Admiralty grading of the information itself."""

    CONFIRMED = 1, _("1: confirmed by other sources")
    PROBABLY_TRUE = 2, _("2: probably true")
    POSSIBLY_TRUE = 3, _("3: possibly true")
    DOUBTFUL = 4, _("4: doubtful")
    IMPROBABLE = 5, _("5: improbable")


class HandlingCode(models.TextChoices):
    """Traffic Light Protocol 2.0."""

    CLEAR = "clear", _("TLP:CLEAR")
    GREEN = "green", _("TLP:GREEN")
    AMBER = "amber", _("TLP:AMBER")
    AMBER_STRICT = "amber_strict", _("TLP:AMBER+STRICT")
    RED = "red", _("TLP:RED")


class ItemStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    WITHDRAWN = "withdrawn", _("Withdrawn by the originator")
    EXPIRED = "expired", _("Expired at its review date")


class Item(models.Model):
    """A piece of intelligence posted by an agency. Its text is stored only sealed; see the module docstring."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    originator_agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="items")
    originator_office = models.ForeignKey(
        "agencies.Office", on_delete=models.PROTECT, null=True, blank=True, related_name="items"
    )
    originator_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="items")
    # Denormalised from the agency: filters and audit targets use it without a join.
    originator_country = models.CharField(max_length=2, db_index=True)
    title_sealed = models.BinaryField(editable=False)
    body_sealed = models.BinaryField(editable=False)
    # Part of every seal's associated data: a correction re-seals under the next version, so an older ciphertext
    # put back in place no longer opens.
    content_version = models.PositiveIntegerField(default=1)
    language = models.CharField(max_length=10)
    category = models.CharField(max_length=32, choices=Category.choices)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.ROUTINE)
    source_reliability = models.CharField(max_length=1, choices=SourceReliability.choices)
    info_credibility = models.PositiveSmallIntegerField(choices=InfoCredibility.choices)
    handling_code = models.CharField(max_length=16, choices=HandlingCode.choices)
    border_crossing = models.CharField(max_length=BORDER_CROSSING_MAX_LENGTH, blank=True)
    review_date = models.DateField(help_text=_("After this date the item expires and its keys are shredded."))
    status = models.CharField(max_length=10, choices=ItemStatus.choices, default=ItemStatus.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="item_newest_first_idx"),
            models.Index(fields=["status", "review_date"], name="item_status_review_idx"),
            models.Index(fields=["originator_agency", "-created_at"], name="item_originator_agency_idx"),
        ]

    def __str__(self) -> str:
        # Never the title: it is intelligence content.
        return f"item {self.pk} ({self.originator_country}, {self.get_priority_display()})"


class ItemKey(models.Model):
    """The item's data key wrapped by one country's key-encryption key. Deleting it shreds that country's copy."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="keys")
    country = models.ForeignKey("agencies.Country", on_delete=models.PROTECT, related_name="+")
    kek_version = models.PositiveIntegerField()
    wrapped_key = models.BinaryField(editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "country"], name="item_key_one_per_country")]
        # Rotation re-wraps a country's keys version by version.
        indexes = [models.Index(fields=["country", "kek_version"], name="item_key_country_version_idx")]

    def __str__(self) -> str:
        return f"key of {self.item_id} for {self.country_id} (v{self.kek_version})"


class ItemCountryGrant(models.Model):
    """The item is released to this country (the originator's own country always has one)."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="country_grants")
    country = models.ForeignKey("agencies.Country", on_delete=models.PROTECT, related_name="+")
    # Set when the country was added by an approved consent request (the third-party rule), not by the originator.
    consent = models.ForeignKey(
        "messaging.ConsentRequest", on_delete=models.PROTECT, null=True, blank=True, related_name="country_grants"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "country"], name="item_country_grant_unique")]
        indexes = [models.Index(fields=["country", "item"], name="item_country_grant_inbox_idx")]

    def __str__(self) -> str:
        return f"{self.item_id} -> {self.country_id}"


class ItemAgencyGrant(models.Model):
    """Within a released country, only the agencies named by such rows see the item (when there is at least one)."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="agency_grants")
    agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="+")
    # Denormalised from the agency so "is this country restricted?" is one index probe.
    country = models.ForeignKey("agencies.Country", on_delete=models.PROTECT, related_name="+")
    # Set when an approved consent request named one agency of its country.
    consent = models.ForeignKey(
        "messaging.ConsentRequest", on_delete=models.PROTECT, null=True, blank=True, related_name="agency_grants"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "agency"], name="item_agency_grant_unique")]
        indexes = [
            models.Index(fields=["item", "country"], name="item_agency_grant_country_idx"),
            models.Index(fields=["agency", "item"], name="item_agency_grant_agency_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.item_id} -> agency {self.agency_id}"


class ItemUserObjectPermission(UserObjectPermissionBase):
    """A named individual (need-to-know), as a django-guardian direct foreign-key permission (``view_item``)."""

    content_object = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="named_grants")

    class Meta(UserObjectPermissionBase.Meta):
        indexes = [models.Index(fields=["user", "content_object"], name="item_named_grant_user_idx")]


class Attachment(models.Model):
    """A file attached by the originator, sealed under the item's data key. Its type was sniffed from its bytes."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="attachments")
    # A file name can itself be intelligence ("suspect passport.jpg"): sealed like the content.
    filename_sealed = models.BinaryField(editable=False)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64, help_text=_("SHA-256 of the plaintext, hex."))
    content_sealed = models.BinaryField(editable=False)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"attachment {self.pk} of {self.item_id}"


class ItemRead(models.Model):
    """When a user first opened an item: drives the ``unread`` filter. The audit trail holds every read."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="reads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    first_read_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "item"], name="item_read_once_per_user")]

    def __str__(self) -> str:
        return f"{self.user_id} read {self.item_id}"


# --- routing and notifications ---------------------------------------------------------------------------------------


class TaskQueue(models.TextChoices):
    """Celery queues: FLASH work never waits behind a backlog of routine work."""

    URGENT = "urgent", _("Urgent (FLASH)")
    DEFAULT = "default", _("Default")


class OutboxKind(models.TextChoices):
    ITEM_ROUTE = "item.route", _("Route an item to its recipients")
    ITEM_REVOKE = "item.revoke", _("Tell holders that their access was removed")
    NOTIFY_EMAIL = "notify.email", _("E-mail the people notified about an item")
    NOTIFY_WEBHOOK = "notify.webhook", _("Call an agency's webhook")
    ITEM_FORWARD = "item.forward", _("Deliver a forwarded item")
    CONSENT_DELIVER = "consent.deliver", _("Deliver an item shared with the originator's consent")


class OutboxMessage(models.Model):
    """Work for a Celery task, written in the transaction of the act that calls for it (a transactional outbox).

    Published to the broker right after commit and, for anything left over, by beat's relay; a broker outage delays
    the work and loses none. ``payload`` holds ids and codes only: it travels through the broker.
    """

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=32, choices=OutboxKind.choices)
    # The item the work is about; null only for work about a free-standing request for information.
    item = models.ForeignKey(Item, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    rfi = models.ForeignKey("messaging.Rfi", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    payload = models.JSONField(default=dict, blank=True)
    queue = models.CharField(max_length=16, choices=TaskQueue.choices, default=TaskQueue.DEFAULT)
    created_at = models.DateTimeField(default=timezone.now)
    # Not published before this time; a consumer waiting to retry moves it forward, so the relay leaves it alone.
    available_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0, help_text=_("Times a consumer has worked on it."))
    published_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["available_at", "id"],
                condition=models.Q(published_at__isnull=True),
                name="outbox_unpublished_idx",
            ),
            models.Index(
                fields=["published_at"],
                condition=models.Q(published_at__isnull=False, processed_at__isnull=True),
                name="outbox_unprocessed_idx",
            ),
            models.Index(fields=["processed_at"], name="outbox_processed_idx"),
        ]

    def __str__(self) -> str:
        return f"outbox #{self.pk} {self.kind} ({self.item_id})"


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
                fields=["user", "item", "consent", "rfi", "kind"],
                name="notification_once_per_kind",
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
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"webhook of agency {self.agency_id}"


class WebhookDeadLetter(models.Model):
    """A webhook call that failed every attempt: shown to the agency's admins, who can fix their receiver."""

    agency = models.ForeignKey("agencies.Agency", on_delete=models.CASCADE, related_name="+")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="+")
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


class TaskDeadLetter(models.Model):
    """A Celery task that kept failing after its bounded retries: for operators to look at and re-run."""

    task_name = models.CharField(max_length=200)
    args = models.JSONField(default=list, help_text=_("Ids and codes only."))
    error_class = models.CharField(max_length=200)
    attempts = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.task_name}{tuple(self.args)} failed ({self.error_class})"


# --- forwarding and the third-party rule -----------------------------------------------------------------------------

FORWARD_REASON_MAX_LENGTH = 1000
CONSENT_TEXT_MAX_LENGTH = 2000


class Forward(models.Model):
    """A recipient passed the item on inside their own country, as its handling code allows (TLP:RED never,
    AMBER+STRICT only inside their own agency). The receiving agency sees the item while the forward is active;
    the originator sees every forward. The reason is sealed under the item's data key."""

    id = models.BigAutoField(primary_key=True)
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="forwards")
    from_agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="+")
    from_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    to_agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="+")
    to_office = models.ForeignKey("agencies.Office", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    # The country of both agencies: a forward never crosses a border.
    country = models.ForeignKey("agencies.Country", on_delete=models.PROTECT, related_name="+")
    reason_sealed = models.BinaryField(editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True, help_text=_("Cut off by narrowing or withdrawal."))

    class Meta:
        ordering = ["item_id", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["item", "to_agency", "to_office"],
                condition=models.Q(revoked_at__isnull=True),
                name="forward_once_per_recipient",
                nulls_distinct=False,
            ),
        ]
        indexes = [
            models.Index(
                fields=["to_agency", "item"], condition=models.Q(revoked_at__isnull=True), name="forward_active_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"forward of {self.item_id} from agency {self.from_agency_id} to agency {self.to_agency_id}"


class ConsentStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for the originator's decision")
    APPROVED = "approved", _("Approved")
    DECLINED = "declined", _("Declined")
    CANCELLED = "cancelled", _("Cancelled by the requester")
    REVOKED = "revoked", _("Cut off by narrowing or withdrawal")


class ConsentRequest(models.Model):
    """A holder of an item asks the originating agency to share it with a country outside its release.

    A supervisor of the originating agency approves (the data key is wrapped for that country only then, and the
    item is routed there) or declines with a reason. Justification and decline reason are sealed under the item's
    data key. Overdue requests remind, then escalate (``escalation_level``)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="consent_requests")
    requester_agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="+")
    requester_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    target_country = models.ForeignKey("agencies.Country", on_delete=models.PROTECT, related_name="+")
    target_agency = models.ForeignKey(
        "agencies.Agency", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    justification_sealed = models.BinaryField(editable=False)
    status = models.CharField(max_length=10, choices=ConsentStatus.choices, default=ConsentStatus.PENDING)
    due_at = models.DateTimeField()
    escalation_level = models.PositiveSmallIntegerField(default=0)
    escalated_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decline_reason_sealed = models.BinaryField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["item", "target_country"],
                condition=models.Q(status="pending"),
                name="consent_one_pending_per_country",
            ),
        ]
        indexes = [
            models.Index(fields=["requester_agency", "-created_at"], name="consent_requester_idx"),
            models.Index(
                fields=["escalation_level", "due_at"], condition=models.Q(status="pending"), name="consent_due_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"consent request {self.pk} for {self.item_id} to {self.target_country_id} ({self.status})"


# --- requests for information ----------------------------------------------------------------------------------------

RFI_SUBJECT_MAX_LENGTH = 300
RFI_TEXT_MAX_LENGTH = 20_000


class RfiStatus(models.TextChoices):
    OPEN = "open", _("Open")
    ANSWERED = "answered", _("Answered")
    CLOSED = "closed", _("Closed")


class Rfi(models.Model):
    """A question from one agency (or office) to another country's agency or a BLO counterpart, about an item or
    free-standing. Subject, question and replies are sealed under the request's own data key, wrapped for the
    two countries (``RfiKey``), exactly like an item's."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    requester_agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="+")
    requester_office = models.ForeignKey(
        "agencies.Office", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    requester_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    target_agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="+")
    target_office = models.ForeignKey(
        "agencies.Office", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Denormalised from the agencies: audit targets and scoping use them without a join.
    requester_country = models.CharField(max_length=2, db_index=True)
    target_country = models.CharField(max_length=2, db_index=True)
    item = models.ForeignKey(Item, on_delete=models.PROTECT, null=True, blank=True, related_name="rfis")
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.ROUTINE)
    subject_sealed = models.BinaryField(editable=False)
    question_sealed = models.BinaryField(editable=False)
    status = models.CharField(max_length=10, choices=RfiStatus.choices, default=RfiStatus.OPEN)
    due_at = models.DateTimeField()
    escalation_level = models.PositiveSmallIntegerField(default=0)
    escalated_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "request for information"
        verbose_name_plural = "requests for information"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["requester_agency", "-created_at"], name="rfi_requester_idx"),
            models.Index(fields=["target_agency", "-created_at"], name="rfi_target_idx"),
            models.Index(fields=["escalation_level", "due_at"], condition=models.Q(status="open"), name="rfi_due_idx"),
        ]

    def __str__(self) -> str:
        # Never the subject: it is intelligence content.
        return f"RFI {self.pk} ({self.requester_country} -> {self.target_country}, {self.status})"


class RfiKey(models.Model):
    """The request's data key wrapped by one country's key-encryption key (the requester's and the target's)."""

    rfi = models.ForeignKey(Rfi, on_delete=models.CASCADE, related_name="keys")
    country = models.ForeignKey("agencies.Country", on_delete=models.PROTECT, related_name="+")
    kek_version = models.PositiveIntegerField()
    wrapped_key = models.BinaryField(editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rfi", "country"], name="rfi_key_one_per_country")]
        indexes = [models.Index(fields=["country", "kek_version"], name="rfi_key_country_version_idx")]

    def __str__(self) -> str:
        return f"key of RFI {self.rfi_id} for {self.country_id} (v{self.kek_version})"


class RfiReply(models.Model):
    """One message in a request's thread, sealed under the request's data key; it may point at a new item."""

    id = models.BigAutoField(primary_key=True)
    rfi = models.ForeignKey(Rfi, on_delete=models.CASCADE, related_name="replies")
    author_agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="+")
    author_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body_sealed = models.BinaryField(editable=False)
    item = models.ForeignKey(Item, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["rfi_id", "created_at", "id"]
        verbose_name_plural = "RFI replies"

    def __str__(self) -> str:
        return f"reply #{self.pk} to RFI {self.rfi_id}"
