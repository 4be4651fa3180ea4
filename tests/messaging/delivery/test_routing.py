"""Routing, called directly (fast): who gets a delivery and why, and that a repeated message adds nothing."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditEvent
from messaging.delivery.routing import item_revoke_notify, item_route
from messaging.items.changes import item_change, item_withdraw
from messaging.models import (
    Notification,
    NotificationKind,
    OutboxKind,
    OutboxMessage,
    Subscription,
    TaskQueue,
)
from messaging.models.delivery import Delivery
from tests.messaging.network import Network, build_network, post_item

pytestmark = pytest.mark.django_db


@pytest.fixture
def net() -> Network:
    return build_network()


def route(item: Any) -> Any:
    message = OutboxMessage.objects.get(item=item, kind=OutboxKind.ITEM_ROUTE)
    return item_route(outbox_id=message.pk)


def deliveries(item: Any) -> set[tuple[str, str | None, str | None, str]]:
    return {
        (d.agency.short_name, d.office.name if d.office else None, d.user.username if d.user else None, d.reason)
        for d in Delivery.objects.filter(item=item).select_related("agency", "office", "user")
    }


def notified(item: Any, kind: str = NotificationKind.ROUTED) -> set[str]:
    return set(Notification.objects.filter(item=item, kind=kind).values_list("user__username", flat=True))


def test_counterpart_subscription_and_duty_desk_each_pick_their_recipients(net):
    item = post_item(net.user("vn.officer"))

    result = route(item)

    assert deliveries(item) == {
        ("ADD", "Bavet BLO", None, "counterpart"),  # (a) Moc Bai's counterpart; ADD's duty desk is not needed
        ("ONCB", "Chiang Saen BLO", None, "subscription"),  # (b) subscribed to meth pills; not ONCB's desk
        ("GDCE", "GDCE duty desk", None, "duty_desk"),  # (c) nothing else matched
        ("LCDC", None, None, "duty_desk"),  # no duty desk office: the agency as a whole
    }
    assert result.deliveries == 4
    # The people each delivery stands for; never the originator's agency, never an auditor.
    assert notified(item) == {"kh.officer", "kh.supervisor", "th.officer", "kh.customs", "la.supervisor"}


def test_the_originating_agency_never_receives_its_own_item(net):
    Subscription.objects.create(agency=net.vn, user=net.user("vn.focal"))
    item = post_item(net.user("vn.officer"))
    route(item)
    assert not Delivery.objects.filter(item=item, agency=net.vn).exists()


def test_unmatched_subscription_leaves_the_duty_desk_in_charge(net):
    item = post_item(net.user("vn.officer"), category="timber")
    route(item)
    assert ("ONCB", "ONCB duty desk", None, "duty_desk") in deliveries(item)
    assert not any(agency == "ONCB" and office == "Chiang Saen BLO" for agency, office, _, _ in deliveries(item))


@pytest.mark.parametrize(
    ("criteria", "matches"),
    [
        ({"priority": "flash"}, True),
        ({"priority": "routine"}, False),
        ({"originator_country": "VN"}, True),
        ({"originator_country": "KH"}, False),
        ({"border_crossing": "moc bai - bavet"}, True),
        ({"border_crossing": "Mohan - Boten"}, False),
        ({"province": "Tay Ninh"}, True),
        ({"province": "Svay Rieng"}, False),
    ],
)
def test_a_personal_subscription_matches_on_each_criterion(net, criteria, matches):
    Subscription.objects.all().delete()
    Subscription.objects.create(agency=net.th, user=net.user("th.desk"), **criteria)
    item = post_item(net.user("vn.officer"), priority="flash")
    route(item)
    personal = ("ONCB", None, "th.desk", "subscription")
    assert (personal in deliveries(item)) is matches
    assert (("ONCB", "ONCB duty desk", None, "duty_desk") in deliveries(item)) is not matches


def test_agency_restriction_narrows_the_recipients(net):
    item = post_item(net.user("vn.officer"), agencies=[net.kh_customs.pk])
    route(item)
    agencies = {agency for agency, _, _, _ in deliveries(item)}
    # Cambodia is restricted to GDCE; Thailand and Laos are not restricted.
    assert agencies == {"GDCE", "ONCB", "LCDC"}


def test_a_named_person_gets_a_personal_delivery_even_outside_the_named_agencies(net):
    item = post_item(net.user("vn.officer"), agencies=[net.kh_customs.pk], named_users=["kh.desk"])
    route(item)
    assert ("ADD", None, "kh.desk", "named") in deliveries(item)
    assert not Delivery.objects.filter(item=item, agency=net.kh, user__isnull=True).exists()
    assert "kh.desk" in notified(item)


def test_only_released_countries_are_routed_to(net):
    item = post_item(net.user("vn.officer"), countries=["VN", "TH"])
    route(item)
    assert {agency for agency, _, _, _ in deliveries(item)} == {"ONCB"}


def test_a_repeated_routing_message_creates_nothing_twice(net, django_capture_on_commit_callbacks):
    item = post_item(net.user("vn.officer"))
    message = OutboxMessage.objects.get(item=item, kind=OutboxKind.ITEM_ROUTE)
    assert item_route(outbox_id=message.pk).deliveries == 4
    counts = (Delivery.objects.count(), Notification.objects.count(), OutboxMessage.objects.count())

    assert item_route(outbox_id=message.pk) is None  # the row is processed: nothing to do
    # Even a row forced back to unprocessed (a consumer that died after commit) adds no delivery, notice or e-mail.
    OutboxMessage.objects.filter(pk=message.pk).update(processed_at=None)
    assert item_route(outbox_id=message.pk).deliveries == 0

    assert (Delivery.objects.count(), Notification.objects.count(), OutboxMessage.objects.count()) == counts


def test_routing_is_recorded_with_ids_only(net):
    item = post_item(net.user("vn.officer"))
    route(item)
    event = AuditEvent.objects.get(action="messaging.item.route", target_id=str(item.pk))
    assert event.actor_label == "ISN"
    assert event.target_country == "VN"
    assert event.details["deliveries"] == 4
    assert sorted(event.details["agencies"]) == sorted([net.kh.pk, net.kh_customs.pk, net.th.pk, net.la.pk])
    assert "Moc Bai" not in str(event.details)


def test_routing_queues_one_email_row_and_flash_goes_to_the_urgent_queue(net):
    item = post_item(net.user("vn.officer"), priority="flash")
    route_row = OutboxMessage.objects.get(item=item, kind=OutboxKind.ITEM_ROUTE)
    assert route_row.queue == TaskQueue.URGENT
    assert route_row.payload == {"item_id": str(item.pk), "priority": "flash"}
    route(item)
    email = OutboxMessage.objects.get(item=item, kind=OutboxKind.NOTIFY_EMAIL)
    assert email.queue == TaskQueue.URGENT
    assert email.payload == {"item_id": str(item.pk), "kind": "item_routed"}


def test_narrowing_revokes_the_cut_off_deliveries_and_tells_their_people(net):
    vn_officer = net.user("vn.officer")
    item = post_item(vn_officer)
    route(item)

    item_change(actor=vn_officer, item_id=item.pk, countries=["VN", "KH", "LA"])
    revoke = OutboxMessage.objects.get(item=item, kind=OutboxKind.ITEM_REVOKE)
    result = item_revoke_notify(outbox_id=revoke.pk)

    assert result.agencies == 1
    revoked = Delivery.objects.filter(item=item, revoked_at__isnull=False)
    assert {d.agency.short_name for d in revoked} == {"ONCB"}
    assert notified(item, NotificationKind.REVOKED) == {"th.officer"}
    assert item_revoke_notify(outbox_id=revoke.pk) is None
    assert AuditEvent.objects.filter(action="messaging.item.revoke_notify", target_id=str(item.pk)).count() == 1


def test_withdrawal_revokes_every_delivery(net):
    vn_officer = net.user("vn.officer")
    item = post_item(vn_officer)
    route(item)
    item_withdraw(actor=vn_officer, item_id=item.pk)
    item_revoke_notify(outbox_id=OutboxMessage.objects.get(item=item, kind=OutboxKind.ITEM_REVOKE).pk)
    assert not Delivery.objects.filter(item=item, revoked_at__isnull=True).exists()
    assert notified(item, NotificationKind.REVOKED) == notified(item)


def test_a_withdrawn_item_is_not_routed(net):
    vn_officer = net.user("vn.officer")
    item = post_item(vn_officer)
    item_withdraw(actor=vn_officer, item_id=item.pk)
    assert route(item).deliveries == 0
    assert not Delivery.objects.filter(item=item).exists()
