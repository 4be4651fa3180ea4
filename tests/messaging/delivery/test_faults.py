"""Faults, with real processes: Redis stopped while items are posted, and a worker killed with SIGKILL mid-routing.

Timings are printed (run with -s to see them) and bounded generously; BENCHMARKS.md has the measured figures.
"""

from __future__ import annotations

import statistics
import time

import pytest
from django.db import connection
from django.db.models import Count
from rest_framework.test import APIClient

from messaging.models import (
    Notification,
    OutboxKind,
    OutboxMessage,
)
from messaging.models.delivery import Delivery
from tests.factories import AgencyFactory, country
from tests.messaging.conftest import api_payload
from tests.messaging.network import build_network
from tests.messaging.workers import private_broker, start_worker, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _post(client: APIClient, **overrides) -> str:
    response = client.post("/api/v1/items/", api_payload(**{"countries": ["VN", "KH"], **overrides}), format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _no_duplicates() -> None:
    duplicated = (
        Delivery.objects.values("item_id", "agency_id", "office_id", "user_id").annotate(n=Count("id")).filter(n__gt=1)
    )
    assert not duplicated.exists()
    assert not Notification.objects.values("user_id", "item_id", "kind").annotate(n=Count("id")).filter(n__gt=1)


def test_posts_keep_answering_while_redis_is_down_and_no_delivery_is_lost(tmp_path):
    net = build_network()
    client = _client(net.user("vn.officer"))
    with private_broker(tmp_path) as redis:
        redis.stop()
        timings = []
        for _ in range(500):
            started = time.monotonic()
            _post(client)
            timings.append(time.monotonic() - started)
        print(
            f"\n500 posts with Redis down: median {statistics.median(timings) * 1000:.0f} ms, "
            f"p95 {statistics.quantiles(timings, n=20)[-1] * 1000:.0f} ms, max {max(timings) * 1000:.0f} ms"
        )
        assert max(timings) < 5.0
        assert OutboxMessage.objects.filter(kind=OutboxKind.ITEM_ROUTE, published_at__isnull=True).count() == 500
        assert not Delivery.objects.exists()

        redis.start()
        # Beat inside the worker runs the relay every second: the leftovers go out once the broker is back.
        worker = start_worker(redis.url, tmp_path, beat=True, name="recovery")
        try:
            started = time.monotonic()
            wait_for(lambda: Delivery.objects.count() >= 1000, timeout=150, interval=0.5, what=worker.output())
            print(f"500 items routed {time.monotonic() - started:.1f} s after Redis came back")
            time.sleep(1)
        finally:
            worker.stop()
    # Each item to Bavet BLO (ADD, counterpart) and GDCE's duty desk: exactly once.
    assert Delivery.objects.count() == 1000
    assert Delivery.objects.values("item_id").distinct().count() == 500
    _no_duplicates()
    assert not OutboxMessage.objects.filter(kind=OutboxKind.ITEM_ROUTE, processed_at__isnull=True).exists()


def _idle_in_transaction() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state = 'idle in transaction' AND pid <> pg_backend_pid()"
        )
        return int(cursor.fetchone()[0])


def test_a_worker_killed_mid_routing_loses_and_duplicates_nothing(tmp_path):
    net = build_network()
    for number in range(18):  # a fan-out wide enough that routing one item takes a while with the pause below
        AgencyFactory(country=country("KH"), name=f"Provincial police {number}", short_name=f"PP{number}")
    client = _client(net.user("vn.officer"))
    recipients_per_item = 20  # ADD (counterpart), GDCE (duty desk) and the 18 provincial agencies
    with private_broker(tmp_path) as redis:
        items = [_post(client) for _ in range(3)]
        doomed = start_worker(redis.url, tmp_path, name="doomed", env={"ISN_ROUTING_PAUSE_MS": "150"})
        try:
            wait_for(lambda: Delivery.objects.filter(item_id=items[0]).exists(), timeout=60, what=doomed.output())
            # The second item's routing transaction is open in the worker: kill it there.
            wait_for(_idle_in_transaction, timeout=10, interval=0.05, what="the second routing transaction")
        finally:
            doomed.kill()
        routed_at_kill = Delivery.objects.values("item_id").distinct().count()
        assert routed_at_kill < 3

        # A new worker; beat redelivers rows published but not processed for a second (the killed message is
        # held by Redis until its visibility timeout, hours away).
        survivor = start_worker(
            redis.url, tmp_path, beat=True, name="survivor", env={"ISN_OUTBOX_REDELIVER_AFTER_SECONDS": "1"}
        )
        try:
            wait_for(
                lambda: Delivery.objects.count() >= 3 * recipients_per_item,
                timeout=60,
                interval=0.25,
                what=survivor.output(),
            )
            time.sleep(2)  # let any duplicate message arrive and find nothing to do
        finally:
            survivor.stop()
    for item_id in items:
        assert Delivery.objects.filter(item_id=item_id).count() == recipients_per_item
    _no_duplicates()
    assert OutboxMessage.objects.filter(kind=OutboxKind.ITEM_ROUTE, processed_at__isnull=False).count() == 3
    # One e-mail row per item: the killed attempt's rows were rolled back with it.
    assert OutboxMessage.objects.filter(kind=OutboxKind.NOTIFY_EMAIL).count() == 3
