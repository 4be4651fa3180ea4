"""The change feed: what changed for whom, as ids, kinds and times (never content)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ChangeKind(models.TextChoices):
    """What happened, as the feed names it (a machine's words: the portal does not show them)."""

    ITEM_VISIBLE = "item.visible", "Item became visible"
    ITEM_CHANGED = "item.changed", "Item changed"
    ITEM_ACKNOWLEDGED = "item.acknowledged", "Item acknowledged"
    ITEM_NARROWED = "item.narrowed", "Item narrowed away"
    ITEM_WITHDRAWN = "item.withdrawn", "Item withdrawn"
    ITEM_EXPIRED = "item.expired", "Item expired"
    CONSENT_REQUESTED = "consent.requested", "Consent requested"
    CONSENT_GRANTED = "consent.granted", "Consent granted"
    CONSENT_DECLINED = "consent.declined", "Consent declined"
    CONSENT_CANCELLED = "consent.cancelled", "Consent request cancelled"
    CONSENT_REVOKED = "consent.revoked", "Consent revoked"
    RFI_OPENED = "rfi.opened", "Request for information opened"
    RFI_REPLIED = "rfi.replied", "Request for information answered"
    RFI_CLOSED = "rfi.closed", "Request for information closed"
    HIT_ON_ITEM = "hit.on_item", "An identifier check hit an item of the agency"
    HIT_RECEIVED = "hit.received", "An identifier check of the agency hit another agency's item"


class Change(models.Model):
    """One change, told to one audience: a whole agency (its members who may read content), one office of it, or
    one person.

    Never content: the reader fetches what it names through the audited reads, which answer by what the reader may
    see now. Ids rise in the order the changes committed (``messaging.delivery.feed`` writes them under one lock).
    Kept ``ISN_FEED_RETENTION_DAYS``, then purged (in id order: ids and times rise together)."""

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=24, choices=ChangeKind.choices)
    agency = models.ForeignKey("agencies.Agency", on_delete=models.CASCADE, null=True, related_name="+")
    # With an agency: only the members of this office of it (an item forwarded to one office).
    office = models.ForeignKey("agencies.Office", on_delete=models.CASCADE, null=True, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, related_name="+")
    # Plain ids, not foreign keys: a change outlives nothing it names, and writing one takes no lock on its row.
    item_id = models.UUIDField(null=True)
    consent_id = models.UUIDField(null=True)
    rfi_id = models.UUIDField(null=True)
    # For hit changes: the hit's reference (``messaging.models.hits``); its holder resolves it to the item.
    hit_reference = models.CharField(max_length=20, blank=True, default="", db_default="")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(agency__isnull=True) ^ models.Q(user__isnull=True), name="change_one_audience"
            ),
            models.CheckConstraint(
                condition=models.Q(office__isnull=True) | models.Q(agency__isnull=False), name="change_office_of_agency"
            ),
        ]
        indexes = [
            models.Index(fields=["agency", "id"], condition=models.Q(agency__isnull=False), name="change_agency_idx"),
            models.Index(fields=["user", "id"], condition=models.Q(user__isnull=False), name="change_user_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"
