"""End to end through a real Redis broker and a real Celery worker (with beat inside it) on the test database:
routing, e-mail to a local SMTP server, signed webhooks to a local receiver with retries and dead letters, and FLASH
escalation on time. Posts go through the API, so the outbox is published on commit as in production."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest
from rest_framework.test import APIClient

from isn.celery import app
from messaging.delivery.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify, webhook_configure
from messaging.items.acknowledgement import item_acknowledge
from messaging.models import (
    Notification,
    NotificationKind,
    OutboxKind,
    OutboxMessage,
    WebhookDeadLetter,
)
from messaging.models.delivery import Delivery
from tests.messaging.conftest import api_payload
from tests.messaging.network import build_network
from tests.messaging.workers import private_broker, smtp_sink, start_worker, wait_for, webhook_receiver

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ESCALATE_AFTER = 2


@pytest.fixture(scope="module")
def smtp():
    with smtp_sink() as sink:
        yield sink


# One worker per test, stopped before the test's database is flushed: a worker still polling (beat runs inside it)
# while the flush TRUNCATEs every table can deadlock with it.
@pytest.fixture
def worker(tmp_path_factory, smtp):
    folder = tmp_path_factory.mktemp("routing-worker")
    with private_broker(folder) as redis:
        process = start_worker(
            redis.url,
            folder,
            beat=True,
            env={
                "ISN_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "ISN_EMAIL_HOST": "127.0.0.1",
                "ISN_EMAIL_PORT": str(smtp.port),
                "ISN_FLASH_ESCALATE_AFTER_SECONDS": str(ESCALATE_AFTER),
                "ISN_FLASH_CHECK_SECONDS": "1",
                "ISN_WEBHOOK_BACKOFF_SECONDS": "1",
                "ISN_WEBHOOK_MAX_ATTEMPTS": "3",
                "ISN_WEBHOOK_TIMEOUT_SECONDS": "2",
            },
        )
        try:
            yield process
        finally:
            process.stop()


def post(user, **overrides) -> str:
    client = APIClient()
    client.force_authenticate(user)
    payload = api_payload(**{"countries": ["VN", "KH", "TH", "LA"], **overrides})
    response = client.post("/api/v1/items/", payload, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_worker_routes_to_counterpart_subscription_and_duty_desk_and_mails_each_person_once(worker, smtp):
    net = build_network()
    item_id = post(net.user("vn.officer"), priority="routine")

    wait_for(lambda: Delivery.objects.filter(item_id=item_id).count() == 4, timeout=30, what=worker.output())
    got = {
        (d.agency.short_name, d.office.name if d.office else None, d.reason)
        for d in Delivery.objects.filter(item_id=item_id)
    }
    assert got == {
        ("ADD", "Bavet BLO", "counterpart"),
        ("ONCB", "Chiang Saen BLO", "subscription"),
        ("GDCE", "GDCE duty desk", "duty_desk"),
        ("LCDC", None, "duty_desk"),
    }
    people = ["kh.officer", "kh.supervisor", "th.officer", "kh.customs", "la.supervisor"]
    addresses = [f"{name}@isn-test.example.org" for name in people]
    wait_for(lambda: all(smtp.to(address) for address in addresses), timeout=30, what="e-mails")
    route_row = OutboxMessage.objects.get(item_id=item_id, kind=OutboxKind.ITEM_ROUTE)
    assert route_row.published_at is not None
    assert route_row.processed_at is not None

    # The same routing message three more times, straight to the broker: nothing is created or sent twice.
    counts = (Delivery.objects.count(), Notification.objects.count(), OutboxMessage.objects.count())
    for _ in range(3):
        app.send_task("messaging.tasks.route_item", args=[route_row.pk], queue="default")
    time.sleep(2)
    assert (Delivery.objects.count(), Notification.objects.count(), OutboxMessage.objects.count()) == counts
    for address in addresses:
        [message] = smtp.to(address)
        assert item_id in message.get_payload()
        assert "lorries" not in message.get_payload()
        assert "Meth pills shipment" not in message["Subject"]
    assert not smtp.to("kh.auditor@isn-test.example.org")
    assert not smtp.to("vn.officer@isn-test.example.org")


def test_worker_signs_webhooks_and_retries_then_dead_letters_a_failing_receiver(worker):
    net = build_network()
    with webhook_receiver(200) as healthy, webhook_receiver(500) as failing:
        th_admin = net.user("th.officer")
        from agencies.models import Membership, Role

        Membership.objects.filter(user=th_admin).update(role=Role.AGENCY_ADMIN)
        th_admin = type(th_admin).objects.get(pk=th_admin.pk)  # a fresh object: memberships are cached per user
        _, th_secret = webhook_configure(actor=th_admin, url=healthy.url)
        webhook_configure(actor=net.user("kh.admin"), url=failing.url)

        item_id = post(net.user("vn.officer"))

        letter = wait_for(
            lambda: WebhookDeadLetter.objects.filter(item_id=item_id).first(), timeout=40, what=worker.output()
        )
        assert (letter.agency_id, letter.attempts, letter.last_error) == (net.kh.pk, 3, "HTTP 500")
        calls = failing.received()
        assert len(calls) == 3
        # One delivery id across the retries, so the receiver can tell a retry from a new call.
        assert len({headers["x-isn-delivery"] for headers, _ in calls}) == 1
        [(headers, body)] = wait_for(healthy.received, timeout=10, what="the healthy receiver")
    assert verify(th_secret.encode(), headers[TIMESTAMP_HEADER.lower()], body, headers[SIGNATURE_HEADER.lower()])
    assert json.loads(body)["item"]["item_id"] == item_id
    assert not Delivery.objects.filter(item_id=item_id, agency=net.th, notified_at__isnull=True).exists()


def test_an_unacknowledged_flash_escalates_on_time_and_an_acknowledged_one_does_not(worker, smtp):
    net = build_network()
    item_id = post(net.user("vn.officer"), priority="flash", countries=["VN", "KH"])
    wait_for(lambda: Delivery.objects.filter(item_id=item_id).count() == 2, timeout=20, what=worker.output())
    item_acknowledge(actor=net.user("kh.customs"), item_id=item_id)

    first = wait_for(
        lambda: Delivery.objects.filter(item_id=item_id, agency=net.kh, escalation_level__gte=1).first(),
        timeout=20,
        what="the first escalation",
    )
    late = (first.escalated_at - first.routed_at).total_seconds()
    assert ESCALATE_AFTER <= late <= ESCALATE_AFTER + 3  # the sweep runs every second
    wait_for(
        lambda: Delivery.objects.filter(item_id=item_id, agency=net.kh, escalation_level=2).exists(),
        timeout=20,
        what="the national escalation",
    )
    escalated = Counter(
        Notification.objects.filter(item_id=item_id)
        .exclude(kind=NotificationKind.ROUTED)
        .values_list("kind", flat=True)
    )
    assert escalated == {NotificationKind.ESCALATED: 3, NotificationKind.ESCALATED_NATIONAL: 1}
    assert not Delivery.objects.filter(item_id=item_id, agency=net.kh_customs, escalation_level__gt=0).exists()
    wait_for(
        lambda: any("Not acknowledged" in m["Subject"] for m in smtp.to("kh.supervisor@isn-test.example.org")),
        timeout=20,
        what="the escalation e-mail",
    )
