"""Forwarding inside one's own country: the handling-code rules, who may then read, delivery from the outbox, the
forward list and its sealed reasons, the API, and acknowledgement by a forwarded agency."""

from __future__ import annotations

import time
from typing import Any

import pytest
from rest_framework.test import APIClient

from audit.models import AuditEvent
from isn.celery import app
from isn.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from messaging.items.acknowledgement import item_acknowledge, item_deliveries_view
from messaging.items.changes import item_withdraw
from messaging.items.lifecycle import item_read
from messaging.models import (
    AgencyWebhook,
    DeliveryReason,
    Forward,
    Notification,
    NotificationKind,
    OutboxKind,
    OutboxMessage,
)
from messaging.models.delivery import Delivery
from messaging.sharing.forwards import forward_deliver, item_forward, item_forwards_view
from tests.messaging.network import Sharing, build_sharing, notified, post_item, run_outbox

REASON = "Customs at Bavet should check lorry 70C-123.45 before Thursday"


@pytest.fixture
def s(db) -> Sharing:
    return build_sharing()


def released_to_add(s: Sharing, **overrides: Any) -> Any:
    """A Viet Nam item released to Cambodia's ADD only: Cambodia's other agencies cannot see it."""
    fields = {"countries": ["VN", "KH"], "agencies": [s.net.kh.pk], **overrides}
    return post_item(s.user("vn.officer"), **fields)


def forward(s: Sharing, item: Any, to_agency: Any, to_office: Any = None, by: str = "kh.officer") -> Any:
    return item_forward(actor=s.user(by), item_id=item.pk, to_agency=to_agency, to_office=to_office, reason=REASON)


def client(user: Any) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


# --- the handling code decides ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("handling_code", "recipient", "allowed", "message"),
    [
        ("red", "other_agency", False, "TLP:RED"),
        ("red", "own_office", False, "TLP:RED"),
        ("amber_strict", "own_office", True, ""),
        ("amber_strict", "other_agency", False, "AMBER+STRICT"),
        ("amber", "other_agency", True, ""),
        ("amber", "own_office", True, ""),
        ("green", "other_agency", True, ""),
        ("clear", "other_agency", True, ""),
        ("amber", "other_country", False, "consent"),
        ("green", "other_country", False, "consent"),
        ("clear", "other_country", False, "consent"),
    ],
)
def test_the_handling_code_decides_where_an_item_may_be_forwarded(s, handling_code, recipient, allowed, message):
    # Thailand is released too: even so, Cambodia may not pass the item to it; only the originator's consent may.
    item = post_item(s.user("vn.officer"), countries=["VN", "KH", "TH"], handling_code=handling_code)
    to_agency, to_office = {
        "other_agency": (s.net.kh_customs, None),
        "own_office": (s.net.kh, s.net.kh_desk),
        "other_country": (s.net.th, None),
    }[recipient]

    if allowed:
        view = forward(s, item, to_agency, to_office)
        assert (view.forward.to_agency_id, view.forward.to_office_id) == (to_agency.pk, getattr(to_office, "pk", None))
        assert view.forward.country_id == "KH"
        assert OutboxMessage.objects.filter(kind=OutboxKind.ITEM_FORWARD, item=item).count() == 1
    else:
        with pytest.raises(PermissionDenied) as refused:
            forward(s, item, to_agency, to_office)
        assert message in refused.value.message
        assert not Forward.objects.filter(item=item).exists()
        assert not AuditEvent.objects.filter(action="messaging.item.forward").exists()


def test_a_forwarded_agency_reads_the_item_and_could_not_before(s):
    item = released_to_add(s)
    customs = s.user("kh.customs")
    with pytest.raises(NotFound):
        item_read(actor=customs, item_id=item.pk)
    assert client(customs).get(f"/api/v1/items/{item.pk}/").status_code == 404

    forward(s, item, s.net.kh_customs)

    assert item_read(actor=customs, item_id=item.pk).title == "Meth pills shipment expected at Moc Bai"
    assert client(customs).get(f"/api/v1/items/{item.pk}/").json()["body"].startswith("Two lorries")
    # Only the agency forwarded to: another Cambodian agency still sees nothing.
    with pytest.raises(NotFound):
        item_read(actor=s.user("kh.police"), item_id=item.pk)


def test_a_forward_is_refused_for_bad_recipients_and_repeated_recipients(s):
    item = released_to_add(s)
    forward(s, item, s.net.kh_customs)
    with pytest.raises(Conflict):
        forward(s, item, s.net.kh_customs)
    with pytest.raises(InvalidInput):  # the office is not one of that agency's
        forward(s, item, s.net.kh_customs, to_office=s.net.bavet)
    with pytest.raises(InvalidInput):  # the originator has it already
        item_forward(actor=s.user("kh.officer"), item_id=item.pk, to_agency=s.net.vn, reason=REASON)
    with pytest.raises(InvalidInput):  # one's own agency as a whole has it already
        forward(s, item, s.net.kh)
    with pytest.raises(InvalidInput):  # a reason is required
        item_forward(actor=s.user("kh.officer"), item_id=item.pk, to_agency=s.kh_police, reason="  ")
    with pytest.raises(NotFound):  # auditors never read, so never forward
        forward(s, item, s.kh_police, by="kh.auditor")
    with pytest.raises(NotFound):  # a country the item is not released to
        forward(s, item, s.th_police, by="th.officer")
    assert Forward.objects.filter(item=item).count() == 1


def test_a_withdrawn_item_cannot_be_forwarded(s):
    item = released_to_add(s)
    item_withdraw(actor=s.user("vn.officer"), item_id=item.pk)
    with pytest.raises(NotFound):
        forward(s, item, s.net.kh_customs)
    with pytest.raises(Conflict):  # the originator still sees it, but it is over
        item_forward(actor=s.user("vn.officer"), item_id=item.pk, to_agency=s.net.vn, reason=REASON)


# --- delivery from the outbox -------------------------------------------------------------------------------------


def test_the_forward_is_delivered_once_to_the_duty_desk_with_notice_and_webhook(s):
    item = released_to_add(s)
    AgencyWebhook.objects.create(agency=s.net.kh_customs, url="https://customs.example.org/isn", secret_sealed=b"-")
    view = forward(s, item, s.net.kh_customs)
    row = OutboxMessage.objects.get(kind=OutboxKind.ITEM_FORWARD, item=item)
    assert row.payload == {"item_id": str(item.pk), "forward_id": view.forward.pk}

    result = forward_deliver(outbox_id=row.pk)

    assert result.deliveries == 1
    delivery = Delivery.objects.get(item=item)
    assert (delivery.agency_id, delivery.office_id, delivery.reason) == (
        s.net.kh_customs.pk,
        s.net.kh_customs_desk.pk,
        DeliveryReason.FORWARDED,
    )
    assert notified(NotificationKind.FORWARDED, item=item) == {"kh.customs"}
    webhook = OutboxMessage.objects.get(kind=OutboxKind.NOTIFY_WEBHOOK, item=item)
    assert webhook.payload == {"item_id": str(item.pk), "agency_id": s.net.kh_customs.pk, "event": "item.forwarded"}
    event = AuditEvent.objects.get(action="messaging.forward.deliver")
    assert (event.target_id, event.details["forward_id"], event.details["deliveries"]) == (
        str(item.pk),
        view.forward.pk,
        1,
    )

    # The same message again: nothing is made or told twice.
    counts = (Delivery.objects.count(), Notification.objects.count(), OutboxMessage.objects.count())
    assert forward_deliver(outbox_id=row.pk) is None
    assert (Delivery.objects.count(), Notification.objects.count(), OutboxMessage.objects.count()) == counts


def test_a_forward_to_an_office_reaches_its_people(s):
    item = released_to_add(s)
    office = s.kh_police.offices.get()
    forward(s, item, s.kh_police, to_office=office)
    run_outbox(OutboxKind.ITEM_FORWARD)
    assert Delivery.objects.filter(item=item, agency=s.kh_police, office=office, reason="forwarded").exists()
    assert notified(NotificationKind.FORWARDED, item=item) == {"kh.police"}


def test_a_forward_cut_off_before_its_delivery_delivers_nothing(s):
    item = released_to_add(s)
    forward(s, item, s.net.kh_customs)
    item_withdraw(actor=s.user("vn.officer"), item_id=item.pk)
    run_outbox(OutboxKind.ITEM_FORWARD)
    assert not Delivery.objects.filter(item=item, agency=s.net.kh_customs).exists()
    assert not Notification.objects.filter(kind=NotificationKind.FORWARDED).exists()


# --- the forward list, its sealed reasons and the audit trail ------------------------------------------------------


def test_the_reason_is_sealed_and_never_in_the_audit_trail_or_the_outbox(s):
    item = released_to_add(s)
    view = forward(s, item, s.net.kh_customs)
    run_outbox()

    assert REASON.encode() not in bytes(Forward.objects.get(pk=view.forward.pk).reason_sealed)
    event = AuditEvent.objects.get(action="messaging.item.forward")
    assert (event.actor_label, event.target_id, event.target_country, event.actor_country) == (
        "kh.officer",
        str(item.pk),
        "VN",
        "KH",
    )
    assert event.details == {"forward_id": view.forward.pk, "to_agency": s.net.kh_customs.pk, "to_office": None}
    for details in AuditEvent.objects.values_list("details", flat=True):
        assert "70C-123.45" not in str(details)
    for payload in OutboxMessage.objects.values_list("payload", flat=True):
        assert "70C-123.45" not in str(payload)


def test_the_originator_and_the_forwarding_agency_list_forwards_with_reasons_and_the_recipient_does_not(s):
    item = released_to_add(s)
    view = forward(s, item, s.net.kh_customs)

    [mine] = item_forwards_view(actor=s.user("vn.officer"), item_id=item.pk)
    assert (mine.forward.pk, mine.reason, mine.active) == (view.forward.pk, REASON, True)
    [theirs] = item_forwards_view(actor=s.user("kh.supervisor"), item_id=item.pk)  # the forwarding agency
    assert theirs.reason == REASON
    assert item_forwards_view(actor=s.user("kh.customs"), item_id=item.pk) == []  # received, did not forward
    with pytest.raises(NotFound):
        item_forwards_view(actor=s.user("th.officer"), item_id=item.pk)
    reads = AuditEvent.objects.filter(action="messaging.forward.read").order_by("id")
    assert [(e.actor_label, e.details["forward_ids"]) for e in reads] == [
        ("vn.officer", [view.forward.pk]),
        ("kh.supervisor", [view.forward.pk]),
        ("kh.customs", []),
    ]


# --- the API ------------------------------------------------------------------------------------------------------


def test_api_forward_and_forwards(s):
    item = released_to_add(s)
    kh = client(s.user("kh.officer"))

    response = kh.post(
        f"/api/v1/items/{item.pk}/forward/", {"to_agency": s.net.kh_customs.pk, "reason": REASON}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["to_agency"]["short_name"], body["to_office"], body["active"], body["reason"]) == (
        "GDCE",
        None,
        True,
        REASON,
    )
    assert (
        kh.post(
            f"/api/v1/items/{item.pk}/forward/", {"to_agency": s.net.kh_customs.pk, "reason": REASON}, format="json"
        ).status_code
        == 409
    )
    listed = client(s.user("vn.officer")).get(f"/api/v1/items/{item.pk}/forwards/")
    assert listed.status_code == 200
    assert [(f["from_agency"]["short_name"], f["from_user"], f["reason"]) for f in listed.json()] == [
        ("ADD", "kh.officer", REASON)
    ]
    bad = kh.post(f"/api/v1/items/{item.pk}/forward/", {"reason": REASON}, format="json")
    assert bad.status_code == 400
    assert "to_agency" in bad.json()["errors"]["fields"]


def test_api_refuses_a_red_forward_with_a_clear_message_and_hides_unreleased_items(s):
    red = released_to_add(s, handling_code="red")
    response = client(s.user("kh.officer")).post(
        f"/api/v1/items/{red.pk}/forward/", {"to_agency": s.net.kh_customs.pk, "reason": REASON}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert "TLP:RED" in response.json()["detail"]

    th = client(s.user("th.officer"))
    hidden = th.post(f"/api/v1/items/{red.pk}/forward/", {}, format="json")
    absent = th.post("/api/v1/items/00000000-0000-4000-8000-000000000000/forward/", {}, format="json")
    assert (hidden.status_code, hidden.json()) == (absent.status_code, absent.json()) == (404, absent.json())
    assert th.get(f"/api/v1/items/{red.pk}/forwards/").status_code == 404


# --- acknowledgement by a forwarded agency -------------------------------------------------------------------------


def test_the_originators_delivery_states_include_the_forwarded_agency_and_its_acknowledgement(s):
    item = released_to_add(s, priority="flash")
    run_outbox()  # routed to ADD
    forward(s, item, s.net.kh_customs)
    run_outbox()

    item_acknowledge(actor=s.user("kh.customs"), item_id=item.pk, note="actioned")

    states = {
        state.agency.short_name: state for state in item_deliveries_view(actor=s.user("vn.officer"), item_id=item.pk)
    }
    assert set(states) == {"ADD", "GDCE"}
    assert (states["GDCE"].acknowledged_by, states["GDCE"].note, states["GDCE"].revoked) == (
        "kh.customs",
        "actioned",
        False,
    )
    assert states["ADD"].acknowledged_at is None
    api_states = client(s.user("vn.officer")).get(f"/api/v1/items/{item.pk}/deliveries/").json()
    assert {row["agency"]["short_name"]: row["acknowledged_by"] for row in api_states} == {
        "ADD": None,
        "GDCE": "kh.customs",
    }


# --- through a real worker -----------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_real_worker_delivers_a_forward_and_mails_the_recipient_once(tmp_path_factory):
    from tests.messaging.workers import private_broker, smtp_sink, start_worker, wait_for

    s = build_sharing()
    item = released_to_add(s)
    with smtp_sink() as smtp:
        folder = tmp_path_factory.mktemp("forward-worker")
        with private_broker(folder) as redis:
            worker = start_worker(
                redis.url,
                folder,
                name="forwarding",
                env={
                    "ISN_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                    "ISN_EMAIL_HOST": "127.0.0.1",
                    "ISN_EMAIL_PORT": str(smtp.port),
                },
            )
            try:
                # Through the API, so the outbox row is published on commit as in production.
                response = client(s.user("kh.officer")).post(
                    f"/api/v1/items/{item.pk}/forward/",
                    {"to_agency": s.net.kh_customs.pk, "reason": REASON},
                    format="json",
                )
                assert response.status_code == 201, response.content
                wait_for(
                    lambda: Delivery.objects.filter(item=item, reason=DeliveryReason.FORWARDED).exists(),
                    timeout=30,
                    what=worker.output(),
                )
                address = "kh.customs@isn-test.example.org"
                wait_for(lambda: smtp.to(address), timeout=30, what="the forward's e-mail")
                row = OutboxMessage.objects.get(kind=OutboxKind.ITEM_FORWARD, item=item)
                wait_for(
                    lambda: OutboxMessage.objects.filter(pk=row.pk, processed_at__isnull=False).exists(),
                    timeout=10,
                    what="the forward row processed",
                )
                # The same message twice more, straight to the broker: nothing is made or sent twice.
                counts = (Delivery.objects.count(), Notification.objects.count())
                for _ in range(2):
                    app.send_task("messaging.tasks.deliver_forward", args=[row.pk], queue="default")
                time.sleep(2)
                assert (Delivery.objects.count(), Notification.objects.count()) == counts
                [message] = smtp.to(address)
                assert "Forwarded to you" in message["Subject"]
                assert str(item.pk) in message.get_payload()
                assert "70C-123.45" not in message.get_payload()
                assert "Meth pills shipment" not in message.get_payload()
            finally:
                worker.stop()
