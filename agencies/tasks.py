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


# Well inside the task's time limit, so a batch is never cut off half-way; the task then queues its continuation.
RECOMPUTE_TIME_BUDGET_SECONDS = 60.0


@shared_task(
    name="agencies.tasks.recompute_match_tokens",
    bind=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=5,
    time_limit=120,
    soft_time_limit=100,
    ignore_result=True,
)
def recompute_match_tokens(self, old_version: int) -> int:  # type: ignore[no-untyped-def]
    """Recompute the blind tokens of match key ``old_version`` with the primary key, then retire ``old_version``."""
    from agencies.keyring import match_tokens_recompute

    result = match_tokens_recompute(actor=None, old_version=old_version, time_budget=RECOMPUTE_TIME_BUDGET_SECONDS)
    logger.info(
        "agencies: recomputed %d match tokens of v%d (%d remaining, retired=%s)",
        result.recomputed,
        old_version,
        result.remaining,
        result.retired,
    )
    if not result.retired:
        if result.recomputed:
            # Progress within the time budget: carry on in a fresh task.
            recompute_match_tokens.apply_async((old_version,))
        else:
            # No progress (rows locked by a long transaction?): try again later, a bounded number of times.
            raise self.retry(countdown=30)
    return result.recomputed
