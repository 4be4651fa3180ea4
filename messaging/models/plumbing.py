"""The outbox that carries work to Celery, and the dead letters of tasks that gave up."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from messaging.models.items import Item


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
