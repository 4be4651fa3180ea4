"""Acknowledgement (once per receiving agency) and the originator's per-agency view of routing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from isn.errors import NotFound, PermissionDenied
from messaging.delivery.flash import flash_escalate_due
from messaging.delivery.routing import item_route
from messaging.items.acknowledgement import (
    AlreadyAcknowledged,
    item_acknowledge,
)
from messaging.items.changes import item_change
from messaging.items.lifecycle import item_read
from messaging.models import (
    Acknowledgement,
    Notification,
    OutboxKind,
    OutboxMessage,
)
from messaging.models.delivery import Delivery
from tests.messaging.network import build_network, post_item

pytestmark = pytest.mark.django_db


@pytest.fixture
def net():
    return build_network()


@pytest.fixture
def routed(net):
    item = post_item(net.user("vn.officer"), priority="flash")
    item_route(outbox_id=OutboxMessage.objects.get(item=item, kind=OutboxKind.ITEM_ROUTE).pk)
    return item


def test_a_receiving_officer_acknowledges_for_the_agency(net, routed):
    kh_officer = net.user("kh.officer")
    ack = item_acknowledge(actor=kh_officer, item_id=routed.pk, note="operation_planned", note_text="Team at 05:00")

    assert (ack.agency_id, ack.user_id, ack.note) == (net.kh.pk, kh_officer.pk, "operation_planned")
    assert b"Team at 05:00" not in bytes(ack.note_text_sealed)  # sealed like the item
    assert not Delivery.objects.filter(item=routed, agency=net.kh, acknowledged_at__isnull=True).exists()
    assert Delivery.objects.filter(item=routed, agency=net.th, acknowledged_at__isnull=True).exists()
    event = AuditEvent.objects.get(action="messaging.item.acknowledge", target_id=str(routed.pk))
    assert event.details == {"agency_id": net.kh.pk, "note": "operation_planned", "has_text": True}
    assert "05:00" not in str(event.details)


def test_a_second_acknowledgement_by_the_same_agency_is_a_conflict(net, routed):
    item_acknowledge(actor=net.user("kh.officer"), item_id=routed.pk)
    with pytest.raises(AlreadyAcknowledged):
        item_acknowledge(actor=net.user("kh.supervisor"), item_id=routed.pk, note="no_trace")
    assert Acknowledgement.objects.filter(item=routed).count() == 1


def test_the_originator_cannot_acknowledge_its_own_item(net, routed):
    with pytest.raises(PermissionDenied):
        item_acknowledge(actor=net.user("vn.officer"), item_id=routed.pk)


def test_a_flash_item_is_acknowledged_before_routing_and_routing_keeps_it_acknowledged(net, settings):
    item = post_item(net.user("vn.officer"), priority="flash", countries=["VN", "KH"])  # in the inbox, not routed yet
    assert not Delivery.objects.filter(item=item).exists()
    acknowledgement = item_acknowledge(actor=net.user("kh.officer"), item_id=item.pk)
    item_route(outbox_id=OutboxMessage.objects.get(item=item, kind=OutboxKind.ITEM_ROUTE).pk)
    made = Delivery.objects.filter(item=item, agency=net.kh)
    assert made.exists()
    assert set(made.values_list("acknowledged_at", flat=True)) == {acknowledgement.created_at}
    # However late the FLASH sweep runs, it escalates only the agency that has not acknowledged (Cambodia's customs).
    later = timezone.now() + timedelta(seconds=settings.ISN_FLASH_ESCALATE_AFTER_SECONDS * 3)
    assert flash_escalate_due(now=later) == 1
    assert set(made.values_list("escalation_level", flat=True)) == {0}
    assert set(
        Delivery.objects.filter(item=item, agency=net.kh_customs).values_list("escalation_level", flat=True)
    ) == {1}
    with pytest.raises(AlreadyAcknowledged):
        item_acknowledge(actor=net.user("kh.supervisor"), item_id=item.pk)


def test_an_officer_of_an_unreleased_country_gets_not_found(net):
    item = post_item(net.user("vn.officer"), countries=["VN", "KH"])
    item_route(outbox_id=OutboxMessage.objects.get(item=item, kind=OutboxKind.ITEM_ROUTE).pk)
    with pytest.raises(NotFound):
        item_acknowledge(actor=net.user("th.officer"), item_id=item.pk)


def test_a_bad_note_is_refused(net, routed):
    from isn.errors import InvalidInput

    with pytest.raises(InvalidInput):
        item_acknowledge(actor=net.user("kh.officer"), item_id=routed.pk, note="done")


def test_reading_marks_the_agency_delivery_and_the_readers_notices_read(net, routed):
    kh_officer = net.user("kh.officer")
    item_read(actor=kh_officer, item_id=routed.pk)
    assert not Delivery.objects.filter(item=routed, agency=net.kh, read_at__isnull=True).exists()
    assert Delivery.objects.filter(item=routed, agency=net.th, read_at__isnull=True).exists()
    assert not Notification.objects.filter(item=routed, user=kh_officer, read_at__isnull=True).exists()
    assert Notification.objects.filter(item=routed, user=net.user("kh.supervisor"), read_at__isnull=True).exists()


def test_the_originator_sees_routed_read_and_acknowledged_per_agency(net, routed, api):
    item_read(actor=net.user("kh.officer"), item_id=routed.pk)
    item_acknowledge(actor=net.user("kh.officer"), item_id=routed.pk, note="actioned", note_text="Seized 2 kg")
    api.force_authenticate(net.user("vn.officer"))

    response = api.get(f"/api/v1/items/{routed.pk}/deliveries/")

    assert response.status_code == 200, response.content
    rows = {row["agency"]["short_name"]: row for row in response.json()}
    assert set(rows) == {"ADD", "GDCE", "ONCB", "LCDC"}
    assert rows["ADD"]["read_at"]
    assert rows["ADD"]["acknowledged_at"]
    assert (rows["ADD"]["acknowledged_by"], rows["ADD"]["note"], rows["ADD"]["note_text"]) == (
        "kh.officer",
        "actioned",
        "Seized 2 kg",
    )
    assert rows["ONCB"]["read_at"] is None
    assert rows["ONCB"]["acknowledged_at"] is None
    assert AuditEvent.objects.filter(action="messaging.item.deliveries_view", target_id=str(routed.pk)).exists()


def test_the_acknowledgement_note_survives_a_rekey(net, routed, api):
    item_acknowledge(actor=net.user("kh.officer"), item_id=routed.pk, note="other", note_text="Call me")
    item_change(actor=net.user("vn.officer"), item_id=routed.pk, countries=["VN", "KH"])  # shreds and re-keys
    api.force_authenticate(net.user("vn.officer"))
    rows = {row["agency"]["short_name"]: row for row in api.get(f"/api/v1/items/{routed.pk}/deliveries/").json()}
    assert rows["ADD"]["note_text"] == "Call me"


def test_recipients_never_see_the_recipient_list(net, routed, api):
    api.force_authenticate(net.user("kh.officer"))
    assert api.get(f"/api/v1/items/{routed.pk}/deliveries/").status_code == 403
    api.force_authenticate(net.user("kh.auditor"))
    assert api.get(f"/api/v1/items/{routed.pk}/deliveries/").status_code == 404


def test_acknowledge_api_answers_201_then_409(net, routed, api):
    api.force_authenticate(net.user("kh.officer"))
    url = f"/api/v1/items/{routed.pk}/acknowledge/"
    first = api.post(url, {"note": "no_trace"}, format="json")
    assert first.status_code == 201, first.content
    assert first.json()["note"] == "no_trace"
    second = api.post(url, {}, format="json")
    assert second.status_code == 409
    assert second.json()["code"] == "already_acknowledged"


def test_acknowledge_api_refuses_anonymous_and_outsiders(net, routed, api, outsider):
    url = f"/api/v1/items/{routed.pk}/acknowledge/"
    assert api.post(url, {}, format="json").status_code in (401, 403)
    api.force_authenticate(outsider)
    assert api.post(url, {}, format="json").status_code == 403
    assert not Acknowledgement.objects.exists()
