"""The transactional outbox: work for Celery written with the act that calls for it, then relayed to the broker.

``outbox_add`` writes a row in the caller's transaction and, once that commits, publishes it (``isn.broker``: one
attempt, never a long wait). ``outbox_relay`` is beat's sweep: it claims rows nobody published (``SELECT ... FOR
UPDATE SKIP LOCKED``, so several relays never send the same row together), and republishes rows published long ago
but never processed (their message was lost with a broker or a killed worker). Delivery is at least once; every
consumer is idempotent, so a message sent twice does nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from isn import broker
from messaging.core.sql import execute, fetch_all, fetch_one
from messaging.models import Item, OutboxKind, OutboxMessage, Priority, Rfi, TaskDeadLetter, TaskQueue

logger = logging.getLogger(__name__)

# Which task consumes which kind of row; every task takes the row's id and nothing else.
TASKS = {
    OutboxKind.ITEM_ROUTE: "messaging.tasks.route_item",
    OutboxKind.ITEM_REVOKE: "messaging.tasks.notify_revoked",
    OutboxKind.NOTIFY_EMAIL: "messaging.tasks.send_notification_emails",
    OutboxKind.NOTIFY_WEBHOOK: "messaging.tasks.send_webhook",
    OutboxKind.ITEM_FORWARD: "messaging.tasks.deliver_forward",
    OutboxKind.CONSENT_DELIVER: "messaging.tasks.deliver_consent",
}


def queue_for(subject: Item | Rfi) -> str:
    return TaskQueue.URGENT if subject.priority == Priority.FLASH else TaskQueue.DEFAULT


def outbox_add(*, kind: str, item: Item | Rfi, payload: dict[str, Any] | None = None) -> OutboxMessage:
    """Write one row in the caller's transaction; it is published after commit (or by the relay).

    ``item`` is what the work is about: an item, or a request for information (which need not name an item)."""
    return outbox_add_many([(kind, item, payload or {})])[0]


def _row(kind: str, subject: Item | Rfi, payload: dict[str, Any], now: Any) -> OutboxMessage:
    item, rfi = (None, subject) if isinstance(subject, Rfi) else (subject, None)
    return OutboxMessage(
        kind=kind, item=item, rfi=rfi, payload=payload, queue=queue_for(subject), created_at=now, available_at=now
    )


def outbox_add_many(rows: Iterable[tuple[str, Item | Rfi, dict[str, Any]]]) -> list[OutboxMessage]:
    now = timezone.now()
    messages = OutboxMessage.objects.bulk_create([_row(kind, subject, payload, now) for kind, subject, payload in rows])
    ids = [message.pk for message in messages]
    if ids:
        transaction.on_commit(lambda: outbox_publish(ids))
    return messages


def _send(message: OutboxMessage) -> bool:
    return broker.publish(TASKS[OutboxKind(message.kind)], [message.pk], queue=message.queue)


def outbox_publish(ids: Sequence[int]) -> int:
    """After commit: publish these rows now, unless the relay has them or the broker is known to be down."""
    if broker.breaker.is_open():
        return 0
    try:
        if connection.vendor == "postgresql":
            return _mark_and_send(list(ids))
        return _claim_and_send(Q(pk__in=list(ids), published_at__isnull=True), limit=len(ids))
    except Exception as exc:  # noqa: BLE001 - the act is committed; the relay publishes what this could not
        logger.warning("outbox: could not publish after commit (%s); the relay will", type(exc).__name__)
        return 0


# Claims and marks in one statement: the rows stay locked until the transaction ends, so the relay skips them while
# they are being sent, and a killed process leaves them unpublished for the relay.
_MARK_PUBLISHED = """
    UPDATE {table} SET published_at = %s
    WHERE id IN (SELECT id FROM {table} WHERE id = ANY(%s) AND published_at IS NULL FOR UPDATE SKIP LOCKED)
    RETURNING id, kind, queue
"""


@transaction.atomic
def _mark_and_send(ids: list[int]) -> int:
    """``_claim_and_send`` for the rows a transaction just wrote, with one statement instead of two (PostgreSQL)."""
    rows = sorted(fetch_all(_MARK_PUBLISHED.format(table=OutboxMessage._meta.db_table), [timezone.now(), ids]))
    sent = 0
    for pk, kind, queue in rows:
        if not broker.publish(TASKS[OutboxKind(kind)], [pk], queue=queue):
            break  # the broker is down: the rest stay for the relay, and no request waits on it again
        sent += 1
    if sent < len(rows):
        OutboxMessage.objects.filter(pk__in=[pk for pk, _, _ in rows[sent:]]).update(published_at=None)
    return sent


@transaction.atomic
def _claim_and_send(condition: Q, *, limit: int, order: Sequence[str] = ("id",)) -> int:
    rows = list(OutboxMessage.objects.select_for_update(skip_locked=True).filter(condition).order_by(*order)[:limit])
    sent: list[int] = []
    for row in rows:
        if not _send(row):
            break  # the broker is down: the rest stay for the relay, and no request waits on it again
        sent.append(row.pk)
    if sent:
        OutboxMessage.objects.filter(pk__in=sent).update(published_at=timezone.now())
    return len(sent)


@dataclass(frozen=True)
class RelayResult:
    published: int
    republished: int
    pruned: int


def outbox_relay(
    *, batch_size: int | None = None, redeliver_after: float | None = None, urgent_redeliver_after: float | None = None
) -> RelayResult:
    """Publish every row that is due and unpublished (urgent first), republish stale ones, prune old processed ones.

    A row published but not processed is stale after ``ISN_OUTBOX_REDELIVER_URGENT_AFTER_SECONDS`` on the urgent queue
    (FLASH work: its message may have died with the broker a moment after it was sent) and after
    ``ISN_OUTBOX_REDELIVER_AFTER_SECONDS`` on the others. Consumers are idempotent: a second message for a row still
    queued or in progress finds it processed, or waits on its lock, and does nothing more.
    """
    batch_size = batch_size or settings.ISN_OUTBOX_BATCH
    redeliver_after = settings.ISN_OUTBOX_REDELIVER_AFTER_SECONDS if redeliver_after is None else redeliver_after
    if urgent_redeliver_after is None:
        urgent_redeliver_after = min(settings.ISN_OUTBOX_REDELIVER_URGENT_AFTER_SECONDS, redeliver_after)
    now = timezone.now()
    published = 0
    due = Q(published_at__isnull=True, available_at__lte=now)
    for queue in (TaskQueue.URGENT, TaskQueue.DEFAULT):
        while True:
            sent = _claim_and_send(due & Q(queue=queue), limit=batch_size, order=("available_at", "id"))
            published += sent
            if sent < batch_size:
                break
        if broker.breaker.is_open():
            return RelayResult(published=published, republished=0, pruned=0)
    # A message lost with a broker restart or a killed worker: its row was published but nobody finished it.
    republished = 0
    for queues, after in (
        (Q(queue=TaskQueue.URGENT), urgent_redeliver_after),
        (~Q(queue=TaskQueue.URGENT), redeliver_after),
    ):
        stale_before = now - timedelta(seconds=after)
        stale = queues & Q(
            published_at__isnull=False,
            processed_at__isnull=True,
            published_at__lte=stale_before,
            available_at__lte=stale_before,
        )
        republished += _claim_and_send(stale, limit=batch_size, order=("published_at", "id"))
        if broker.breaker.is_open():
            break
    if republished:
        logger.warning("outbox: republished %d messages that were never processed", republished)
    keep_until = now - timedelta(days=settings.ISN_OUTBOX_KEEP_DAYS)
    old = OutboxMessage.objects.filter(processed_at__lt=keep_until).values_list("pk", flat=True)[:batch_size]
    pruned, _ = OutboxMessage.objects.filter(pk__in=list(old)).delete()
    return RelayResult(published=published, republished=republished, pruned=pruned)


def outbox_claim(outbox_id: int, kind: str) -> OutboxMessage | None:
    """For a consumer, inside its transaction: the unprocessed row, locked; None when it was already processed.

    The lock waits rather than skips: the relay holds it for the moment between publishing and marking the row
    published, and a duplicate message must wait for the first consumer and then find the row processed.
    """
    return OutboxMessage.objects.select_for_update().filter(pk=outbox_id, kind=kind, processed_at__isnull=True).first()


_TAKE = """
    UPDATE {table} SET processed_at = %s, attempts = attempts + 1
    WHERE id = %s AND kind = %s AND processed_at IS NULL
    RETURNING item_id
"""


def outbox_take(outbox_id: int, kind: str) -> Any | None:
    """``outbox_claim`` and ``outbox_done`` in one statement, for a consumer whose whole work is its transaction.

    The row is locked and marked processed at once, so a rollback leaves it unprocessed. Returns the row's item id,
    or None when it was already processed; like ``outbox_claim``, it waits for a lock rather than skipping the row.
    """
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    row = fetch_one(_TAKE.format(table=OutboxMessage._meta.db_table), [now, outbox_id, kind])
    return None if row is None else row[0]


def outbox_done(message: OutboxMessage) -> None:
    message.processed_at = timezone.now()
    message.attempts += 1
    message.save(update_fields=["processed_at", "attempts"])


_DONE = "UPDATE {table} SET processed_at = %s, attempts = attempts + 1 WHERE id = %s AND processed_at IS NULL"


def outbox_done_unless_done(outbox_id: int) -> bool:
    """``outbox_done`` for a row this transaction has not locked (a duplicate message may have finished it): one
    statement, which takes the row lock itself; False when it was already processed."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    return bool(execute(_DONE.format(table=OutboxMessage._meta.db_table), [now, outbox_id]))


@transaction.atomic
def task_dead_letter_record(*, task_name: str, args: Sequence[Any], error_class: str, attempts: int) -> None:
    """A task kept failing: keep a record for operators and, when it consumed an outbox row, stop redelivering it.

    A broker or database outage (``OperationalError``, from kombu or Django) is the exception: the row stays, and
    the relay sends it again once the outage is over.
    """
    from audit.models import Outcome
    from audit.services import record

    letter = TaskDeadLetter.objects.create(
        task_name=task_name[:200], args=list(args), error_class=error_class[:200], attempts=attempts
    )
    if task_name in TASKS.values() and args and isinstance(args[0], int) and error_class != "OperationalError":
        OutboxMessage.objects.filter(pk=args[0], processed_at__isnull=True).update(processed_at=timezone.now())
    record(
        action="messaging.task.dead_letter",
        actor=None,
        target=letter,
        outcome=Outcome.ERROR,
        details={"task": task_name, "args": list(args), "error": error_class, "attempts": attempts},
    )
