"""Celery tasks of the audit trail: thin, idempotent, bounded. Their names are a contract with beat and the broker."""

from __future__ import annotations

import logging

from celery import shared_task

from audit.chain import SEAL_TASK, is_postgresql, seal_pending
from audit.checkpoints import checkpoint_create
from audit.ledger import ledger_reconcile

logger = logging.getLogger(__name__)

# On SQLite a sealing transaction holds the database's one write lock, which the portal waits for: a backlog is
# sealed in transactions of this many events, so the portal writes in between.
SQLITE_SEAL_EVENTS = 2000


@shared_task(name=SEAL_TASK, time_limit=120, soft_time_limit=100, ignore_result=True)
def seal_events() -> int:
    """Seal pending events into the chain (queued on commit by ``record``; beat sends it every 5 seconds)."""
    if is_postgresql():
        results = [seal_pending()]
    else:
        results = [seal_pending(max_events=SQLITE_SEAL_EVENTS)]
        while results[-1].sealed == SQLITE_SEAL_EVENTS:
            results.append(seal_pending(max_events=SQLITE_SEAL_EVENTS))
    sealed = sum(result.sealed for result in results)
    gaps = sum(result.gaps_filled for result in results)
    if sealed or gaps:
        logger.info("audit: sealed %d events (%d gaps) up to #%s", sealed, gaps, results[-1].head_id)
    return sealed


@shared_task(name="audit.tasks.create_checkpoint", time_limit=300, soft_time_limit=280, ignore_result=True)
def create_checkpoint() -> int | None:
    """Sign the chain head (beat sends it every ISN_AUDIT_CHECKPOINT_SECONDS)."""
    checkpoint = checkpoint_create()
    return checkpoint.last_event_id if checkpoint is not None else None


@shared_task(name="audit.tasks.reconcile_ledger", time_limit=120, soft_time_limit=100, ignore_result=True)
def reconcile_ledger() -> int:
    """Append to the revocation ledger every shred whose on-commit append failed (beat sends it every minute)."""
    return ledger_reconcile()
