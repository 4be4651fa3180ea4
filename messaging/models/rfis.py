"""Requests for information between two countries, sealed under their own data key."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from messaging.models.items import Item, Priority

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
    # A request opened from a hit: the holder (and only the holder) sees which of its items the hit named.
    hit = models.ForeignKey("messaging.Hit", on_delete=models.SET_NULL, null=True, blank=True, related_name="rfis")
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

    def other_country(self, country_code: str | None) -> str:
        """The other side's country: an event carries the actor's own country already, so both auditors see it."""
        return self.requester_country if country_code == self.target_country else self.target_country


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
