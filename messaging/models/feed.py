"""The change feed: what changed for whom, as ids, kinds and times (never content)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ChangeKind(models.TextChoices):
    ITEM_VISIBLE = "item.visible", _("Item became visible")
    ITEM_CHANGED = "item.changed", _("Item changed")
    ITEM_ACKNOWLEDGED = "item.acknowledged", _("Item acknowledged")
    ITEM_NARROWED = "item.narrowed", _("Item narrowed away")
    ITEM_WITHDRAWN = "item.withdrawn", _("Item withdrawn")
    ITEM_EXPIRED = "item.expired", _("Item expired")
    CONSENT_REQUESTED = "consent.requested", _("Consent requested")
    CONSENT_GRANTED = "consent.granted", _("Consent granted")
    CONSENT_DECLINED = "consent.declined", _("Consent declined")
    CONSENT_CANCELLED = "consent.cancelled", _("Consent request cancelled")
    CONSENT_REVOKED = "consent.revoked", _("Consent revoked")
    RFI_OPENED = "rfi.opened", _("Request for information opened")
    RFI_REPLIED = "rfi.replied", _("Request for information answered")
    RFI_CLOSED = "rfi.closed", _("Request for information closed")


# The writing transaction's id, so a reader can stop short of any transaction still running: ordered by it, the
# feed never skips a row that commits after a later one was already read (``messaging.delivery.feed``).
CURRENT_TRANSACTION = RawSQL("pg_current_xact_id()::text::bigint", ())


class Change(models.Model):
    """One change, told to one audience: a whole agency (its members who may read content) or one person.

    Never content: the reader fetches what it names through the audited reads, which answer by what the reader may
    see now. Kept ``ISN_FEED_RETENTION_DAYS``, then purged."""

    id = models.BigAutoField(primary_key=True)
    txid = models.BigIntegerField(db_default=CURRENT_TRANSACTION, editable=False)
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=24, choices=ChangeKind.choices)
    agency = models.ForeignKey("agencies.Agency", on_delete=models.CASCADE, null=True, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, related_name="+")
    # Plain ids, not foreign keys: a change outlives nothing it names, and writing one takes no lock on its row.
    item_id = models.UUIDField(null=True)
    consent_id = models.UUIDField(null=True)
    rfi_id = models.UUIDField(null=True)

    class Meta:
        ordering = ["txid", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(agency__isnull=True) ^ models.Q(user__isnull=True), name="change_one_audience"
            ),
        ]
        indexes = [
            models.Index(
                fields=["agency", "txid", "id"], condition=models.Q(agency__isnull=False), name="change_agency_idx"
            ),
            models.Index(fields=["user", "txid", "id"], condition=models.Q(user__isnull=False), name="change_user_idx"),
            BrinIndex(fields=["at"], name="change_at_brin"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"
