"""Celery tasks of messaging: thin, idempotent, bounded; they take ids and codes, never model instances."""

from __future__ import annotations

import logging

from celery import Task, shared_task
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
    from messaging.items.keys import country_keys_rewrap

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
    from messaging.items.changes import items_expire

    count = items_expire(actor=None)
    if count:
        logger.info("messaging: expired %d items", count)
    return count


@shared_task(
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=3,
    time_limit=300,
    soft_time_limit=270,
    ignore_result=True,
)
def purge_idempotency_keys() -> int:
    """Delete API idempotency records older than their 24-hour replay window (beat sends it hourly)."""
    from messaging.core.idempotency import idempotency_keys_purge

    return idempotency_keys_purge()


@shared_task(
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=3,
    time_limit=600,
    soft_time_limit=570,
    ignore_result=True,
)
def purge_changes() -> int:
    """Delete change-feed entries older than the feed keeps (beat sends it daily)."""
    from messaging.delivery.feed import changes_purge

    return changes_purge()


# --- routing and notifications -------------------------------------------------------------------------------------
# Every task here takes the id of an outbox row (or nothing), is idempotent, and is bounded in time and retries. The
# queue is chosen when the row is published: ``urgent`` for FLASH items, so a backlog never delays them.

_TRANSIENT = (OperationalError, InterfaceError)


class DeadLetteringTask(Task):
    """A task that, once it has used up its retries (or failed outright), leaves a ``TaskDeadLetter``."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):  # type: ignore[no-untyped-def]
        from messaging.core.outbox import task_dead_letter_record

        try:
            task_dead_letter_record(
                task_name=self.name,
                args=list(args),
                error_class=type(exc).__name__,
                attempts=(self.request.retries or 0) + 1,
            )
        except Exception as record_error:  # noqa: BLE001 - the database may be what failed; the log must say so
            logger.error(
                "messaging: %s%s failed (%s) and its dead letter could not be written (%s)",
                self.name,
                tuple(args),
                type(exc).__name__,
                type(record_error).__name__,
            )


_BOUNDED = {
    "base": DeadLetteringTask,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
}
# Routing and revocation: database work only, retried on transient database or broker errors.
_ROUTING = {
    **_BOUNDED,
    "autoretry_for": _TRANSIENT,
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "max_retries": 5,
    "time_limit": 120,
    "soft_time_limit": 100,
}


@shared_task(**_ROUTING)
def route_item(outbox_id: int) -> int:
    """Route an item to its recipients (deliveries, in-portal notifications, e-mail and webhook rows)."""
    from messaging.delivery.routing import item_route

    result = item_route(outbox_id=outbox_id)
    return result.deliveries if result is not None else 0


@shared_task(**_ROUTING)
def notify_revoked(outbox_id: int) -> int:
    """Mark deliveries that a narrowing or withdrawal cut off, and tell their holders."""
    from messaging.delivery.routing import item_revoke_notify

    result = item_revoke_notify(outbox_id=outbox_id)
    return result.deliveries if result is not None else 0


@shared_task(
    **_BOUNDED,
    autoretry_for=(*_TRANSIENT, OSError),  # smtplib's errors are OSErrors
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=5,
    time_limit=300,
    soft_time_limit=280,
)
def send_notification_emails(outbox_id: int) -> int:
    """E-mail the people notified about an item, each once."""
    from messaging.delivery.notifications import notification_emails_send

    return notification_emails_send(outbox_id=outbox_id)


@shared_task(
    **_BOUNDED,
    bind=True,
    autoretry_for=_TRANSIENT,
    retry_backoff=True,
    max_retries=50,  # a safety net only: the real bound is ISN_WEBHOOK_MAX_ATTEMPTS, counted on the outbox row
    time_limit=60,
    soft_time_limit=50,
)
def send_webhook(self, outbox_id: int) -> str:  # type: ignore[no-untyped-def]
    """One try of a webhook call; retried with exponential back-off, then dead-lettered."""
    from messaging.delivery.webhooks import webhook_send

    outcome = webhook_send(outbox_id=outbox_id)
    if outcome.status == "retry":
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@shared_task(acks_late=True, ignore_result=True, time_limit=60, soft_time_limit=50)
def relay_outbox() -> int:
    """Beat's sweep: publish outbox rows left over (broker down at commit time) and republish lost ones."""
    from isn.broker import breaker
    from messaging.core.outbox import outbox_relay

    # This message came through the broker, so the broker is back: stop skipping publishes in this process.
    breaker.reset()
    result = outbox_relay()
    if result.published or result.republished:
        logger.info("messaging: relayed %d outbox rows (%d republished)", result.published, result.republished)
    return result.published + result.republished


@shared_task(
    acks_late=True,
    ignore_result=True,
    autoretry_for=_TRANSIENT,
    retry_backoff=True,
    max_retries=3,
    time_limit=120,
    soft_time_limit=100,
)
def escalate_flash() -> int:
    """Beat's sweep: escalate FLASH items a receiving agency has not acknowledged in time."""
    from messaging.delivery.flash import flash_escalate_due

    steps = flash_escalate_due()
    if steps:
        logger.info("messaging: %d FLASH escalation steps", steps)
    return steps


# --- requests for information --------------------------------------------------------------------------------------


@shared_task(
    acks_late=True,
    ignore_result=True,
    autoretry_for=_TRANSIENT,
    retry_backoff=True,
    max_retries=3,
    time_limit=120,
    soft_time_limit=100,
)
def escalate_rfis() -> int:
    """Beat's sweep: remind, then escalate, open requests for information past their due time."""
    from messaging.rfis.services import rfis_escalate_due

    steps = rfis_escalate_due()
    if steps:
        logger.info("messaging: %d RFI reminder and escalation steps", steps)
    return steps


# --- forwards and consent requests ---------------------------------------------------------------------------------


@shared_task(**_ROUTING)
def deliver_forward(outbox_id: int) -> int:
    """Deliver a forwarded item to its receiving office or agency (delivery, notifications, webhook row)."""
    from messaging.sharing.forwards import forward_deliver

    result = forward_deliver(outbox_id=outbox_id)
    return result.deliveries if result is not None else 0


@shared_task(**_ROUTING)
def deliver_consent(outbox_id: int) -> int:
    """Route an item to the country an approved consent request shared it with."""
    from messaging.sharing.consents import consent_deliver

    result = consent_deliver(outbox_id=outbox_id)
    return result.deliveries if result is not None else 0


@shared_task(
    acks_late=True,
    ignore_result=True,
    autoretry_for=_TRANSIENT,
    retry_backoff=True,
    max_retries=3,
    time_limit=120,
    soft_time_limit=100,
)
def escalate_consents() -> int:
    """Beat's sweep: remind, then escalate, consent requests still pending past their due time."""
    from messaging.sharing.consents import consents_escalate_due

    steps = consents_escalate_due()
    if steps:
        logger.info("messaging: %d consent reminder and escalation steps", steps)
    return steps


# --- hits of identifier checks -------------------------------------------------------------------------------------


@shared_task(
    acks_late=True,
    ignore_result=True,
    autoretry_for=(*_TRANSIENT, OSError),  # smtplib's errors are OSErrors; agencies already told stay told
    retry_backoff=True,
    max_retries=3,
    time_limit=1800,
    soft_time_limit=1700,
)
def send_hit_digest() -> int:
    """Beat's daily digest: each officer is told the hits on their agency's items not told at once."""
    from messaging.delivery.hit_notices import hits_digest_send

    return hits_digest_send()


@shared_task(
    acks_late=True,
    ignore_result=True,
    autoretry_for=_TRANSIENT,
    retry_backoff=True,
    max_retries=3,
    time_limit=1800,
    soft_time_limit=1700,
)
def purge_hits() -> int:
    """Delete hits and checks older than ISN_HIT_RETENTION_DAYS (beat sends it daily); recorded with counts."""
    from messaging.matching.retention import hits_purge

    result = hits_purge()
    if result.hits or result.checks:
        logger.info("messaging: purged %d hits and %d checks", result.hits, result.checks)
    return result.hits
