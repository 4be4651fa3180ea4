"""FLASH escalation, called directly with a short configured time: supervisors and duty desk, then national."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from messaging.escalation import flash_escalate_due
from messaging.models import Delivery, Notification, NotificationKind, OutboxKind, OutboxMessage
from messaging.routing import item_route
from messaging.services import item_acknowledge, item_withdraw
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
