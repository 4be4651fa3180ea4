"""FLASH escalation, called directly with a short configured time: supervisors and duty desk, then national."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from messaging.delivery.flash import flash_escalate_due
from messaging.delivery.routing import item_route
from messaging.items.acknowledgement import item_acknowledge
from messaging.items.changes import item_withdraw
from messaging.models import (
    Notification,
    NotificationKind,
    OutboxKind,
    OutboxMessage,
)
from messaging.models.delivery import Delivery
from tests.messaging.network import build_network, post_item

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _short(settings):
    settings.ISN_FLASH_ESCALATE_AFTER_SECONDS = 60


@pytest.fixture
def net():
    return build_network()


def flash(net, **overrides):
    item = post_item(net.user("vn.officer"), priority="flash", countries=["VN", "KH"], **overrides)
    item_route(outbox_id=OutboxMessage.objects.get(item=item, kind=OutboxKind.ITEM_ROUTE).pk)
    return item


def told(item, kind):
    return set(Notification.objects.filter(item=item, kind=kind).values_list("user__username", flat=True))


def test_flash_escalates_on_time_to_supervisor_and_duty_desk_then_national(net):
    item = flash(net)
    routed_at = Delivery.objects.filter(item=item).first().routed_at

    assert flash_escalate_due(now=routed_at + timedelta(seconds=59)) == 0
    # Both Cambodian agencies (ADD by counterpart, GDCE by its duty desk) are unacknowledged.
    assert flash_escalate_due(now=routed_at + timedelta(seconds=61)) == 2
    assert told(item, NotificationKind.ESCALATED) == {"kh.supervisor", "kh.desk", "kh.focal", "kh.customs"}
    assert set(Delivery.objects.filter(item=item).values_list("escalation_level", flat=True)) == {1}

    assert flash_escalate_due(now=routed_at + timedelta(seconds=90)) == 0  # same step never twice
    assert flash_escalate_due(now=routed_at + timedelta(seconds=122)) == 2
    assert told(item, NotificationKind.ESCALATED_NATIONAL) == {"kh.focal"}
    assert flash_escalate_due(now=routed_at + timedelta(seconds=1000)) == 0  # two steps, then it stops

    events = AuditEvent.objects.filter(action="messaging.flash.escalate", target_id=str(item.pk))
    assert sorted(e.details["level"] for e in events) == [1, 1, 2, 2]
    # Routing, two agencies' first step, and one national step (kh.focal is told once, for either agency).
    assert OutboxMessage.objects.filter(item=item, kind=OutboxKind.NOTIFY_EMAIL).count() == 4


def test_acknowledgement_stops_the_escalation_of_that_agency_only(net):
    item = flash(net)
    item_acknowledge(actor=net.user("kh.officer"), item_id=item.pk)
    later = timezone.now() + timedelta(seconds=61)
    assert flash_escalate_due(now=later) == 1
    assert set(Delivery.objects.filter(item=item, escalation_level=1).values_list("agency__short_name", flat=True)) == {
        "GDCE"
    }


def test_routine_and_withdrawn_items_never_escalate(net):
    routine = post_item(net.user("vn.officer"), countries=["VN", "KH"])
    item_route(outbox_id=OutboxMessage.objects.get(item=routine, kind=OutboxKind.ITEM_ROUTE).pk)
    withdrawn = flash(net)
    item_withdraw(actor=net.user("vn.officer"), item_id=withdrawn.pk)
    assert flash_escalate_due(now=timezone.now() + timedelta(hours=1)) == 0


# --- escalation by webhook -----------------------------------------------------------------------------------------


def escalation_calls(item):
    return sorted(
        (row.payload["agency_id"], row.payload["event"], row.queue)
        for row in OutboxMessage.objects.filter(item=item, kind=OutboxKind.NOTIFY_WEBHOOK)
        if row.payload["event"].startswith("item.escalated")
    )


def test_each_escalation_step_queues_one_signed_webhook_call_for_the_escalated_agency(net):
    from messaging.delivery.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify, webhook_configure, webhook_send
    from tests.messaging.workers import webhook_receiver

    with webhook_receiver(200) as receiver:
        _, secret = webhook_configure(actor=net.user("kh.admin"), url=receiver.url)  # ADD has one; GDCE none
        item = flash(net)
        routed_at = Delivery.objects.filter(item=item).first().routed_at

        assert flash_escalate_due(now=routed_at + timedelta(seconds=61)) == 2
        assert escalation_calls(item) == [(net.kh.pk, "item.escalated", "urgent")]
        assert flash_escalate_due(now=routed_at + timedelta(seconds=90)) == 0  # a second sweep adds nothing
        assert flash_escalate_due(now=routed_at + timedelta(seconds=122)) == 2
        assert escalation_calls(item) == [
            (net.kh.pk, "item.escalated", "urgent"),
            (net.kh.pk, "item.escalated_national", "urgent"),
        ]
        assert flash_escalate_due(now=routed_at + timedelta(seconds=1000)) == 0
        assert len(escalation_calls(item)) == 2

        first = OutboxMessage.objects.get(item=item, payload__event="item.escalated")
        assert webhook_send(outbox_id=first.pk).status == "sent"
        assert webhook_send(outbox_id=first.pk).status == "skipped"  # a repeated message: sent once
        [(headers, body)] = receiver.received()
    assert verify(secret.encode(), headers[TIMESTAMP_HEADER.lower()], body, headers[SIGNATURE_HEADER.lower()])
    assert headers["x-isn-event"] == "item.escalated"
    payload = json.loads(body)
    assert (payload["event"], payload["agency"], payload["delivery"]) == ("item.escalated", net.kh.pk, str(first.pk))
    assert payload["item"]["item_id"] == str(item.pk)
    assert payload["item"]["priority"] == "flash"
    assert b"lorries" not in body
    assert b"Meth pills shipment" not in body


def test_no_webhook_call_without_an_active_webhook_or_after_acknowledgement(net):
    from messaging.delivery.webhooks import webhook_configure
    from messaging.models import AgencyWebhook

    webhook_configure(actor=net.user("kh.admin"), url="https://kh.example.org/isn")
    AgencyWebhook.objects.update(is_active=False)
    switched_off = flash(net)
    assert flash_escalate_due(now=timezone.now() + timedelta(seconds=61)) == 2
    assert escalation_calls(switched_off) == []

    AgencyWebhook.objects.update(is_active=True)
    acknowledged = flash(net)
    item_acknowledge(actor=net.user("kh.officer"), item_id=acknowledged.pk)
    assert flash_escalate_due(now=timezone.now() + timedelta(seconds=61)) == 1  # GDCE only, which has no webhook
    assert escalation_calls(acknowledged) == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_real_worker_delivers_the_escalation_webhook(tmp_path):
    from messaging.delivery.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify, webhook_configure
    from tests.messaging.workers import private_broker, start_worker, wait_for, webhook_receiver

    net = build_network()
    with private_broker(tmp_path) as redis, webhook_receiver(200) as receiver:
        worker = start_worker(redis.url, tmp_path, name="flash-webhook")
        try:
            _, secret = webhook_configure(actor=net.user("kh.admin"), url=receiver.url)
            item = post_item(net.user("vn.officer"), priority="flash", countries=["VN", "KH"])
            # The worker routes (published on commit) and calls the webhook about the routing.
            wait_for(
                lambda: [b for _, b in receiver.received() if json.loads(b)["event"] == "item.routed"],
                timeout=30,
                what=worker.output(),
            )
            routed_at = Delivery.objects.filter(item=item).first().routed_at
            assert flash_escalate_due(now=routed_at + timedelta(seconds=61)) == 2

            def escalated():
                return [(h, b) for h, b in receiver.received() if json.loads(b)["event"] == "item.escalated"]

            [(headers, body)] = wait_for(escalated, timeout=30, what=worker.output())
        finally:
            worker.stop()
    assert verify(secret.encode(), headers[TIMESTAMP_HEADER.lower()], body, headers[SIGNATURE_HEADER.lower()])
    assert json.loads(body)["item"]["item_id"] == str(item.pk)
    row = OutboxMessage.objects.get(item=item, payload__event="item.escalated")
    assert (row.processed_at is not None, row.queue, headers["x-isn-delivery"]) == (True, "urgent", str(row.pk))
