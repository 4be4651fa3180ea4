"""Celery tasks of the audit trail: thin, idempotent, bounded. Their names are a contract with beat and the broker."""

from __future__ import annotations

import logging

from celery import shared_task

from audit.chain import SEAL_TASK, seal_pending
from audit.checkpoints import checkpoint_create

logger = logging.getLogger(__name__)


@shared_task(name=SEAL_TASK, time_limit=120, soft_time_limit=100, ignore_result=True)
def seal_events() -> int:
    """Seal pending events into the chain (queued on commit by ``record``; beat sends it every 5 seconds)."""
    result = seal_pending()
    if result.sealed or result.gaps_filled:
        logger.info("audit: sealed %d events (%d gaps) up to #%s", result.sealed, result.gaps_filled, result.head_id)
    return result.sealed


@shared_task(name="audit.tasks.create_checkpoint", time_limit=300, soft_time_limit=280, ignore_result=True)
def create_checkpoint() -> int | None:
    """Sign the chain head (beat sends it every ISN_AUDIT_CHECKPOINT_SECONDS)."""
    checkpoint = checkpoint_create()
    return checkpoint.last_event_id if checkpoint is not None else None
