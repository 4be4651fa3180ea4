"""The audit trail's gauges for /metrics (``isn.metrics``): how far sealing and checkpoints lag, nothing else."""

from __future__ import annotations

import math
from collections.abc import Iterator

from django.utils import timezone

from audit.models import AuditCheckpoint, AuditEvent
from isn.metrics import Gauge, age_seconds


def audit_gauges() -> Iterator[Gauge]:
    now = timezone.now()
    # Both reads walk the partial index of unsealed events, which the sealer keeps small.
    unsealed = AuditEvent.objects.filter(hash="")
    oldest = unsealed.order_by("id").values_list("created_at", flat=True).first()
    yield Gauge("isn_audit_unsealed_events", "Audit events not yet linked into the hash chain.", unsealed.count())
    yield Gauge(
        "isn_audit_oldest_unsealed_age_seconds",
        "Age of the oldest audit event not yet sealed (0 when all are sealed).",
        age_seconds(oldest, now),
    )
    last = AuditCheckpoint.objects.order_by("-last_event_id").values_list("created_at", flat=True).first()
    yield Gauge(
        "isn_audit_last_checkpoint_age_seconds",
        "Age of the latest signed checkpoint of the audit chain (+Inf before the first one).",
        math.inf if last is None else age_seconds(last, now),
    )
