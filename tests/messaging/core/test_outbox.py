"""The outbox: rows written with the act, published after commit without waiting on a dead broker, relayed later."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from isn import broker
from messaging.core.outbox import outbox_publish, outbox_relay, task_dead_letter_record
from messaging.items.changes import item_change
from messaging.models import OutboxKind, OutboxMessage, TaskDeadLetter, TaskQueue
from tests.messaging.network import build_network, post_item

pytestmark = pytest.mark.django_db


@pytest.fixture
def net():
    return build_network()


@pytest.fixture
def sent(monkeypatch):
    """Messages 'published', without a broker: (task name, args, queue)."""
    messages: list[tuple[str, list, str]] = []

    def fake_send_task(name, args=None, queue=None, retry=True, **kwargs):
        assert retry is False  # one attempt: never a retry loop inside a request
        if name.startswith("messaging."):  # the audit trail's own sealing requests are not the outbox's
            messages.append((name, args, queue))

    from isn.celery import app

    monkeypatch.setattr(app, "send_task", fake_send_task)
    broker.breaker.reset()
    yield messages
    broker.breaker.reset()


def test_posting_writes_a_route_row_holding_ids_only(net):
    item = post_item(net.user("vn.officer"))
    row = OutboxMessage.objects.get(item=item)
    assert (row.kind, row.queue, row.published_at, row.processed_at) == (
        OutboxKind.ITEM_ROUTE,
        TaskQueue.DEFAULT,
        None,
        None,
    )
    assert row.payload == {"item_id": str(item.pk), "priority": "routine"}


def test_a_failed_post_leaves_no_outbox_row(net):
    from isn.errors import InvalidInput

    with pytest.raises(InvalidInput):
        post_item(net.user("vn.officer"), title="")
    assert not OutboxMessage.objects.exists()


def test_rows_are_published_after_commit_flash_on_urgent(net, sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        item = post_item(net.user("vn.officer"), priority="flash")
    row = OutboxMessage.objects.get(item=item)
    assert sent == [("messaging.tasks.route_item", [row.pk], "urgent")]
    assert row.published_at is not None


def test_a_broker_failure_trips_the_breaker_and_leaves_the_row(net, monkeypatch, django_capture_on_commit_callbacks):
    from isn.celery import app

    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(app, "send_task", refuse)
    broker.breaker.reset()
    try:
        started = time.monotonic()
        with django_capture_on_commit_callbacks(execute=True):
            first = post_item(net.user("vn.officer"))
        with django_capture_on_commit_callbacks(execute=True):
            post_item(net.user("vn.officer"))
        assert time.monotonic() - started < 2
        assert len(attempts) == 1  # the second post did not even try
        assert OutboxMessage.objects.get(item=first).published_at is None
        assert broker.breaker.is_open()
    finally:
        broker.breaker.reset()


def test_the_relay_publishes_leftovers_urgent_first_and_only_once(net, sent):
    routine = post_item(net.user("vn.officer"))
    urgent = post_item(net.user("vn.officer"), priority="flash")
    result = outbox_relay()
    assert result.published == 2
    assert [queue for _, _, queue in sent] == ["urgent", "default"]
    assert [args[0] for _, args, _ in sent] == [
        OutboxMessage.objects.get(item=urgent).pk,
        OutboxMessage.objects.get(item=routine).pk,
    ]
    assert outbox_relay().published == 0


def test_the_relay_republishes_a_row_published_but_never_processed(net, sent):
    item = post_item(net.user("vn.officer"))
    row = OutboxMessage.objects.get(item=item)
    outbox_relay()
    assert outbox_relay(redeliver_after=3600).republished == 0
    OutboxMessage.objects.filter(pk=row.pk).update(
        published_at=timezone.now() - timedelta(hours=1), available_at=timezone.now() - timedelta(hours=1)
    )
    assert outbox_relay(redeliver_after=600).republished == 1
    assert len(sent) == 2


def test_the_relay_republishes_an_urgent_row_within_seconds_and_a_routine_one_after_minutes(net, sent, settings):
    # A FLASH item's message died with the broker a moment after it was sent: it must not wait ten minutes.
    settings.ISN_OUTBOX_REDELIVER_URGENT_AFTER_SECONDS = 15
    settings.ISN_OUTBOX_REDELIVER_AFTER_SECONDS = 600
    urgent = post_item(net.user("vn.officer"), priority="flash")
    routine = post_item(net.user("vn.officer"))
    outbox_relay()
    sent.clear()
    moments_ago = timezone.now() - timedelta(seconds=10)
    OutboxMessage.objects.update(published_at=moments_ago, available_at=moments_ago)
    assert outbox_relay().republished == 0
    twenty_seconds_ago = timezone.now() - timedelta(seconds=20)
    OutboxMessage.objects.update(published_at=twenty_seconds_ago, available_at=twenty_seconds_ago)
    assert outbox_relay().republished == 1
    assert [(args[0], queue) for _, args, queue in sent] == [(OutboxMessage.objects.get(item=urgent).pk, "urgent")]
    OutboxMessage.objects.filter(item=routine).update(
        published_at=timezone.now() - timedelta(minutes=11), available_at=timezone.now() - timedelta(minutes=11)
    )
    assert outbox_relay().republished == 1
    assert sent[-1][2] == "default"


def test_outbox_publish_skips_rows_already_published(net, sent):
    item = post_item(net.user("vn.officer"))
    row = OutboxMessage.objects.get(item=item)
    assert outbox_publish([row.pk]) == 1
    assert outbox_publish([row.pk]) == 0
    assert len(sent) == 1


def test_the_relay_prunes_old_processed_rows(net, sent, settings):
    item = post_item(net.user("vn.officer"))
    OutboxMessage.objects.filter(item=item).update(
        published_at=timezone.now(), processed_at=timezone.now() - timedelta(days=settings.ISN_OUTBOX_KEEP_DAYS + 1)
    )
    assert outbox_relay().pruned == 1


def test_narrowing_writes_a_revoke_row(net):
    item = post_item(net.user("vn.officer"))
    item_change(actor=net.user("vn.officer"), item_id=item.pk, countries=["VN", "KH"])
    assert OutboxMessage.objects.filter(item=item, kind=OutboxKind.ITEM_REVOKE).count() == 1


def test_a_task_that_keeps_failing_is_dead_lettered_and_its_row_stops(net):
    item = post_item(net.user("vn.officer"))
    row = OutboxMessage.objects.get(item=item)
    task_dead_letter_record(task_name="messaging.tasks.route_item", args=[row.pk], error_class="ValueError", attempts=6)
    letter = TaskDeadLetter.objects.get()
    assert (letter.task_name, letter.args, letter.error_class, letter.attempts) == (
        "messaging.tasks.route_item",
        [row.pk],
        "ValueError",
        6,
    )
    assert OutboxMessage.objects.get(pk=row.pk).processed_at is not None
    assert AuditEvent.objects.filter(action="messaging.task.dead_letter", outcome="error").exists()


def test_an_outage_is_dead_lettered_but_its_row_is_kept_for_the_relay(net):
    item = post_item(net.user("vn.officer"))
    row = OutboxMessage.objects.get(item=item)
    task_dead_letter_record(
        task_name="messaging.tasks.route_item", args=[row.pk], error_class="OperationalError", attempts=6
    )
    assert OutboxMessage.objects.get(pk=row.pk).processed_at is None
