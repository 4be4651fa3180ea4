"""Hits and checks are kept ``ISN_HIT_RETENTION_DAYS`` and then deleted: one audit event per run, counts only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import record
from messaging.models import Hit, MatchCheck

# Deleted in batches, so a first run over a year's backlog never holds one enormous transaction's locks.
PURGE_BATCH = 2000


@dataclass(frozen=True)
class HitsPurged:
    hits: int
    checks: int
    before: datetime


def _purge_batch(model: type[Hit] | type[MatchCheck], before: datetime) -> int:
    ids = list(model.objects.filter(created_at__lt=before).order_by("id").values_list("id", flat=True)[:PURGE_BATCH])
    if not ids:
        return 0
    # A hit's notices go with it (cascade) and a request opened from it keeps everything but the link to the hit.
    model.objects.filter(pk__in=ids).delete()
    return len(ids)


def hits_purge(*, now: datetime | None = None) -> HitsPurged:
    """Delete hits, then checks, older than the retention period; recorded once. Hits first: a hit is made in its
    check, so it is never older than its check, and deleting a check never takes a hit still kept."""
    before = (now or timezone.now()) - timedelta(days=settings.ISN_HIT_RETENTION_DAYS)
    counts = {Hit: 0, MatchCheck: 0}
    for model in (Hit, MatchCheck):
        while True:
            with transaction.atomic():
                deleted = _purge_batch(model, before)
            counts[model] += deleted
            if deleted < PURGE_BATCH:
                break
    result = HitsPurged(hits=counts[Hit], checks=counts[MatchCheck], before=before)
    record(
        action="messaging.hit.purge",
        actor=None,
        target_type="messaging.hit",
        details={"hits": result.hits, "checks": result.checks, "before": before.isoformat()},
    )
    return result
