"""Messaging's gauges for /metrics (``isn.metrics``): counts and ages only, never an id, a name or any content."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Min
from django.utils import timezone

from isn.metrics import Gauge, age_seconds
from messaging.models import OutboxMessage, Priority, TaskDeadLetter, WebhookDeadLetter
from messaging.models.delivery import Delivery


def messaging_gauges() -> Iterator[Gauge]:
    now = timezone.now()
    waiting = OutboxMessage.objects.filter(processed_at__isnull=True)
    oldest = waiting.aggregate(oldest=Min("created_at"))["oldest"]
    yield Gauge("isn_outbox_unprocessed", "Outbox rows (work for the workers) not yet processed.", waiting.count())
    yield Gauge(
        "isn_outbox_oldest_unprocessed_age_seconds",
        "Age of the oldest outbox row not yet processed (0 when none is waiting).",
        age_seconds(oldest, now),
    )
    yield Gauge(
        "isn_webhook_dead_letters", "Webhook calls that failed every attempt.", WebhookDeadLetter.objects.count()
    )
    yield Gauge("isn_task_dead_letters", "Celery tasks that failed every retry.", TaskDeadLetter.objects.count())
    # The partial index of FLASH deliveries awaiting acknowledgement keeps this cheap.
    pending = Delivery.objects.filter(priority=Priority.FLASH, acknowledged_at__isnull=True, revoked_at__isnull=True)
    yield Gauge(
        "isn_flash_escalations_pending",
        "FLASH deliveries neither acknowledged nor revoked (escalated until acknowledged).",
        pending.count(),
    )
