"""Sealing links events into the hash chain in id order, shortly after commit, and accounts for every id."""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator

import pytest
from django.db import connection, transaction

from audit import services
from audit.chain import GAP_ACTION, GENESIS_HASH, HASH_FIELDS, event_hash, seal_pending
from audit.models import AuditEvent, Outcome
from audit.services import record
from audit.verify import verify_chain
from tests.audit.chain_helpers import write_events

CHAIN_FIELDS = ("id", "prev_hash", "hash")


def _chain(ids: list[int]) -> list[tuple[int, str, str]]:
    return list(AuditEvent.objects.filter(id__in=ids).order_by("id").values_list(*CHAIN_FIELDS))


def _failed_act(events: int) -> list[int]:
    """An act that records ``events`` events and then fails: their ids are used up but never committed."""
    ids: list[int] = []

    def act() -> None:
        with transaction.atomic():
            ids.extend(record(action="messaging.item.read", actor=None).pk for _ in range(events))
            raise RuntimeError("the act failed")

    with pytest.raises(RuntimeError):
        act()
    return ids


@pytest.mark.django_db
def test_sealing_links_each_event_to_the_one_before(vn_officer):
    ids = write_events(5, vn_officer)
    assert all(h == "" for _, _, h in _chain(ids)), "events are written unsealed, without any lock"

    result = seal_pending()

    assert (result.sealed, result.gaps_filled, result.stalled_at, result.head_id) == (5, 0, None, ids[-1])
    chain = _chain(ids)
    assert chain[0][1] == GENESIS_HASH
    for (_, _, previous_hash), (_, prev_hash, _) in itertools.pairwise(chain):
        assert prev_hash == previous_hash
    first = AuditEvent.objects.values_list(*HASH_FIELDS).get(pk=ids[0])
    assert chain[0][2] == event_hash(first, GENESIS_HASH)
    assert AuditEvent.objects.filter(id__in=ids, sealed_at__isnull=True).count() == 0


@pytest.mark.django_db
def test_sealing_is_idempotent_and_continues_the_chain(vn_officer):
    first = write_events(3, vn_officer)
    seal_pending()
    sealed_before = _chain(first)
    assert seal_pending().sealed == 0
    second = write_events(2, vn_officer)

    assert seal_pending().sealed == 2

    assert _chain(first) == sealed_before
    assert _chain(second)[0][1] == sealed_before[-1][2]
    assert verify_chain().ok


@pytest.mark.django_db
def test_a_rolled_back_id_stalls_sealing_within_the_grace_period(vn_officer, settings):
    settings.ISN_AUDIT_GAP_GRACE_SECONDS = 60
    before = write_events(1, vn_officer)
    lost = _failed_act(1)[0]
    after = write_events(1, vn_officer)
    assert after[0] == lost + 1 == before[0] + 2

    result = seal_pending()

    assert (result.sealed, result.stalled_at) == (1, lost)
    assert AuditEvent.objects.get(pk=after[0]).hash == ""
    report = verify_chain()
    assert report.ok
    assert report.pending == 1


@pytest.mark.django_db
def test_an_id_that_never_committed_becomes_an_explicit_gap_event(vn_officer, settings):
    settings.ISN_AUDIT_GAP_GRACE_SECONDS = 0
    before = write_events(1, vn_officer)
    _failed_act(2)
    after = write_events(1, vn_officer)

    result = seal_pending()

    assert (result.sealed, result.gaps_filled, result.stalled_at) == (4, 2, None)
    gaps = list(AuditEvent.objects.filter(action=GAP_ACTION).order_by("id"))
    assert [gap.pk for gap in gaps] == [before[0] + 1, before[0] + 2]
    assert all(gap.outcome == Outcome.ERROR and gap.details == {"reason": "id never committed"} for gap in gaps)
    assert [event_id for event_id, _, _ in _chain([*before, *after, *[g.pk for g in gaps]])] == list(
        range(before[0], after[0] + 1)
    )
    report = verify_chain()
    assert report.ok
    assert (report.checked, report.pending) == (AuditEvent.objects.count(), 0)


@contextlib.contextmanager
def act_in_flight() -> Iterator[list[int]]:
    """An act in another thread that has recorded one event (its id in the list) and not yet committed; it commits
    when the block ends."""
    recorded = threading.Event()
    release = threading.Event()
    in_flight: list[int] = []

    def slow_act() -> None:
        try:
            with transaction.atomic():
                in_flight.append(record(action="messaging.item.list", actor=None).pk)
                recorded.set()
                release.wait(30)
        finally:
            connection.close()

    worker = threading.Thread(target=slow_act)
    worker.start()
    try:
        assert recorded.wait(10)
        yield in_flight
    finally:
        release.set()
        worker.join(30)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_id_still_in_flight_is_never_declared_a_gap(vn_officer, settings):
    settings.ISN_AUDIT_GAP_GRACE_SECONDS = 0
    write_events(1, vn_officer)
    seal_pending()
    with act_in_flight() as in_flight:
        later = write_events(1, vn_officer)

        stalled = seal_pending()  # its gap insert waits for the open act, then gives up (lock_timeout)

        assert (stalled.stalled_at, stalled.gaps_filled) == (in_flight[0], 0)
    result = seal_pending()
    assert (result.sealed, result.gaps_filled, result.head_id) == (2, 0, later[0])
    assert AuditEvent.objects.get(pk=in_flight[0]).action == "messaging.item.list"
    assert verify_chain().ok


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_empty_chain_does_not_start_above_an_id_still_in_flight(vn_officer, settings):
    """With nothing sealed yet, the first committed event is not the chain's start while a lower id may commit."""
    settings.ISN_AUDIT_GAP_GRACE_SECONDS = 60
    assert not AuditEvent.objects.exclude(hash="").exists()
    with act_in_flight() as in_flight:
        later = write_events(1, vn_officer)
        assert later[0] > in_flight[0]

        stalled = seal_pending()

        assert (stalled.sealed, stalled.stalled_at) == (0, later[0])
        assert AuditEvent.objects.get(pk=later[0]).hash == ""
    result = seal_pending()
    assert (result.sealed, result.head_id) == (2, later[0])
    assert verify_chain().ok


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_second_sealer_returns_at_once_while_one_holds_the_lock(vn_officer):
    ids = write_events(3, vn_officer)
    locked = threading.Event()
    release = threading.Event()

    def holder() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [services_lock_key()])
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert locked.wait(10)
        busy = seal_pending()
        assert (busy.busy, busy.sealed) == (True, 0)
        assert AuditEvent.objects.filter(id__in=ids, hash="").count() == 3
    finally:
        release.set()
        thread.join(30)
    assert seal_pending().sealed == 3


def services_lock_key() -> int:
    from audit.chain import SEALER_LOCK_KEY

    return SEALER_LOCK_KEY


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_writers_and_sealers_build_one_intact_chain(vn_officer):
    errors: list[BaseException] = []
    sealed_counts: list[int] = []

    def writer() -> None:
        try:
            for _ in range(25):
                with transaction.atomic():
                    record(action="audit.status.view", actor=None)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    def sealer() -> None:
        try:
            for _ in range(20):
                sealed_counts.append(seal_pending().sealed)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer) for _ in range(4)] + [threading.Thread(target=sealer) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    seal_pending()

    report = verify_chain()
    assert report.ok, report.summary()
    assert AuditEvent.objects.filter(action="audit.status.view", hash="").count() == 0
    assert AuditEvent.objects.filter(action="audit.status.view").count() == 100
    assert sum(sealed_counts) + 0 <= 100  # each event is sealed exactly once, by whichever sealer held the lock
    assert len(set(AuditEvent.objects.values_list("hash", flat=True))) == AuditEvent.objects.count()


@pytest.fixture
def fresh_breaker(monkeypatch):
    from isn import broker

    monkeypatch.setattr(services, "_next_seal_queue_at", 0.0)
    broker.breaker.reset()
    yield broker.breaker
    broker.breaker.reset()


def _queued_seal_messages() -> int:
    """Sealing messages waiting in the real Redis broker's default queue."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    return sum(b"audit.tasks.seal_events" in message for message in client.lrange("default", 0, -1))


@pytest.mark.django_db
def test_record_queues_sealing_after_commit_and_not_before(
    vn_officer, fresh_breaker, django_capture_on_commit_callbacks
):
    waiting = _queued_seal_messages()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        record(action="messaging.item.read", actor=vn_officer)
    assert _queued_seal_messages() == waiting
    for callback in callbacks:
        callback()
    assert _queued_seal_messages() == waiting + 1


@pytest.mark.django_db
def test_a_broker_outage_never_fails_the_act(
    vn_officer, fresh_breaker, django_capture_on_commit_callbacks, caplog, tmp_path
):
    from tests.messaging.workers import private_broker

    with private_broker(tmp_path) as redis_server:
        redis_server.stop()
        with django_capture_on_commit_callbacks(execute=True):
            event = record(action="messaging.item.read", actor=vn_officer)
        assert fresh_breaker.is_open()  # backs off, so the next requests do not each wait on the broker
    assert AuditEvent.objects.filter(pk=event.pk).exists()
    assert "could not publish audit.tasks.seal_events" in caplog.text


@pytest.mark.django_db
def test_the_celery_task_seals(vn_officer):
    from audit.tasks import seal_events

    ids = write_events(2, vn_officer)
    assert seal_events.apply().get() == 2
    assert AuditEvent.objects.filter(id__in=ids, hash="").count() == 0


@pytest.mark.django_db
def test_on_sqlite_the_task_seals_a_backlog_in_short_transactions(vn_officer, monkeypatch):
    from audit import tasks

    # SQLite's write lock is the database's only one: a long sealing transaction would keep the portal waiting.
    monkeypatch.setattr(tasks, "is_postgresql", lambda: False)
    monkeypatch.setattr(tasks, "SQLITE_SEAL_EVENTS", 2)
    transactions: list[int] = []
    real_seal_pending = tasks.seal_pending

    def counted(**kwargs):
        result = real_seal_pending(**kwargs)
        transactions.append(result.sealed)
        return result

    monkeypatch.setattr(tasks, "seal_pending", counted)
    ids = write_events(5, vn_officer)
    assert tasks.seal_events() == 5
    assert transactions == [2, 2, 1]
    assert AuditEvent.objects.filter(id__in=ids, hash="").count() == 0
    assert verify_chain().ok
