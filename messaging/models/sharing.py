"""Forwards inside a country and consent requests for another country (the third-party rule)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from messaging.models.items import Item

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
            # Per asking agency: whether another agency asked too is not the asker's to know.
            models.UniqueConstraint(
                fields=["item", "target_country", "requester_agency"],
                condition=models.Q(status="pending"),
                name="consent_one_pending_per_agency_country",
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
