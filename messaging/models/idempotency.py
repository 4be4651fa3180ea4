"""What an API write with an ``Idempotency-Key`` leaves behind, so that a retry gives its first outcome again."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

IDEMPOTENCY_KEY_MAX_LENGTH = 255


class IdempotencyKey(models.Model):
    """One caller's key for one write: written in the write's own transaction, so a rolled-back write leaves none.

    Holds no content, on purpose: only a hash of the request and the status, type and id of what it made. A replay
    re-reads that resource through the normal audited read, so it answers as a read would now.
    """

    key = models.CharField(max_length=IDEMPOTENCY_KEY_MAX_LENGTH)
    # The caller: the person, or the API key (whose service account is ``user``); a key is scoped to one caller.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey("agencies.ApiKey", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    request_hash = models.CharField(max_length=64)  # SHA-256 (hex) of the method, path and body: never the body
    # Null only inside the write's own transaction, before the write has answered.
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    resource_type = models.CharField(max_length=64, blank=True)
    resource_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "key"], condition=models.Q(api_key__isnull=True), name="idempotency_key_per_user"
            ),
            models.UniqueConstraint(
                fields=["api_key", "key"], condition=models.Q(api_key__isnull=False), name="idempotency_key_per_api_key"
            ),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]

    def __str__(self) -> str:
        return f"idempotency key #{self.pk} ({self.resource_type} {self.resource_id})"
