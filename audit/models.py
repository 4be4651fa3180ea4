"""The append-only audit trail.

An event is written by ``audit.services.record`` inside the transaction of the act it records. Its ``id`` comes
from a database sequence, so concurrent writers never wait on each other. Shortly after commit the sealer links
events into the hash chain in ``id`` order (filling ids that never committed with explicit gap events), so every
number is accounted for; signed checkpoints let members prove later that the chain still extends what they saw.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Outcome(models.TextChoices):
    OK = "ok", _("OK")
    DENIED = "denied", _("Denied")
    ERROR = "error", _("Error")


class AuditEvent(models.Model):
    """One act: who did what, when, to what, with what outcome. Never intelligence content, never secrets."""

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(db_index=True)
    # Who: a user or an agency API key, with the agency and country they acted for. No foreign-key constraints:
    # the record outlives the accounts it names, and a snapshot of the label keeps it readable.
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_api_key_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(max_length=150, blank=True)
    actor_agency_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    actor_country = models.CharField(max_length=2, blank=True, db_index=True)
    # What.
    action = models.CharField(max_length=100, db_index=True)
    target_type = models.CharField(max_length=50, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_country = models.CharField(max_length=2, blank=True, db_index=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.OK)
    # From where.
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=256, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)
    # The chain: null until sealed; afterwards never changed.
    prev_hash = models.CharField(max_length=64, blank=True, default="")
    hash = models.CharField(max_length=64, blank=True, default="")
    sealed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["target_type", "target_id"], name="audit_event_target_idx"),
            models.Index(fields=["actor_user", "created_at"], name="audit_event_actor_time_idx"),
            models.Index(fields=["id"], name="audit_event_unsealed_idx", condition=models.Q(hash="")),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} by {self.actor_label or 'ISN'} ({self.outcome})"


class AuditCheckpoint(models.Model):
    """A signed statement that the chain up to ``last_event_id`` hashes to ``chain_hash`` (Ed25519)."""

    last_event_id = models.BigIntegerField(unique=True)
    chain_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    public_key = models.CharField(max_length=64, help_text=_("Hex of the raw Ed25519 public key that signed it."))
    signature = models.CharField(max_length=128, help_text=_("Hex of the Ed25519 signature."))

    class Meta:
        ordering = ["-last_event_id"]

    def __str__(self) -> str:
        return f"checkpoint at #{self.last_event_id}"


class AuditArchive(models.Model):
    """A segment of old events moved out of the database; the chain goes on from ``last_hash``."""

    first_event_id = models.BigIntegerField()
    last_event_id = models.BigIntegerField(unique=True)
    last_hash = models.CharField(max_length=64)
    event_count = models.BigIntegerField()
    file_name = models.CharField(max_length=255)
    file_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-last_event_id"]

    def __str__(self) -> str:
        return f"archive #{self.first_event_id}-#{self.last_event_id}"
