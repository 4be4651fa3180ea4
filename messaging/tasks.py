"""Celery tasks of messaging: thin, idempotent, bounded; they take ids and codes, never model instances."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

logger = logging.getLogger(__name__)

# Well inside the task's time limit, so a batch is never cut off half-way; the task then queues its continuation.
REWRAP_TIME_BUDGET_SECONDS = 60.0


@shared_task(
    bind=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=5,
    time_limit=120,
    soft_time_limit=100,
    ignore_result=True,
)
def rewrap_country_keys(self, country_code: str, old_version: int) -> int:  # type: ignore[no-untyped-def]
    """Re-wrap a country's data keys from ``old_version`` to its primary key, then retire ``old_version``."""
    from messaging.services import country_keys_rewrap

    result = country_keys_rewrap(
        actor=None, country_code=country_code, old_version=old_version, time_budget=REWRAP_TIME_BUDGET_SECONDS
    )
    logger.info(
        "messaging: re-wrapped %d %s keys from v%d (%d failed, %d remaining, retired=%s)",
        result.rewrapped,
        country_code,
        old_version,
        result.failed,
        result.remaining,
        result.retired,
    )
    if not result.retired:
        if result.rewrapped:
            # Progress within the time budget: carry on in a fresh task.
            rewrap_country_keys.apply_async((country_code, old_version))
        else:
            # No progress (rows locked by a long transaction?): try again later, a bounded number of times.
            raise self.retry(countdown=30)
    return result.rewrapped


@shared_task(
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=3,
    time_limit=1800,
    soft_time_limit=1700,
    ignore_result=True,
)
def expire_items() -> int:
    """Expire items past their review date and shred their keys (beat sends it daily)."""
    from messaging.services import items_expire

    count = items_expire(actor=None)
    if count:
        logger.info("messaging: expired %d items", count)
    return count
