"""Celery tasks of the directory: thin, idempotent, bounded. Their names are a contract with beat and the broker."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.db import InterfaceError, OperationalError

logger = logging.getLogger(__name__)

# Well inside the task's time limit: a sweep left unfinished is taken up by tomorrow's, or by a retry.
LAPSE_TIME_BUDGET_SECONDS = 240.0


@shared_task(
    name="agencies.tasks.lapse_access_reviews",
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=3,
    time_limit=300,
    soft_time_limit=270,
    ignore_result=True,
)
def lapse_access_reviews() -> int:
    """Suspend the memberships whose access review lapsed, and cut their people off (beat sends it daily)."""
    from agencies.reviews import MAX_BATCH, memberships_lapse

    started = time.monotonic()
    lapsed = 0
    while True:
        batch = memberships_lapse(limit=MAX_BATCH)
        lapsed += len(batch)
        if len(batch) < MAX_BATCH or time.monotonic() - started > LAPSE_TIME_BUDGET_SECONDS:
            break
    if lapsed:
        logger.info("agencies: suspended %d memberships whose access review lapsed", lapsed)
    return lapsed
