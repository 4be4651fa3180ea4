"""Consent requests (the third-party rule): asking, approving (the key is wrapped for the new country only then),
declining, cancelling, who sees a request at all, due-time reminders and escalation, and the audit trail."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from audit.selectors import events_visible_to
from isn.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from messaging.items.acknowledgement import item_acknowledge, item_deliveries_view
from messaging.items.lifecycle import item_read
from messaging.models import (
    ConsentRequest,
    ConsentStatus,
    DeliveryReason,
    ItemAgencyGrant,
    ItemCountryGrant,
    ItemKey,
    NotificationKind,
    OutboxKind,
    OutboxMessage,
)
from messaging.models.delivery import Delivery
from messaging.sharing.consents import (
    consent_cancel,
    consent_decline,
    consent_grant,
    consent_read,
    consent_request_create,
    consents_escalate_due,
)
from tests.messaging.network import Sharing, build_sharing, notified, post_item, run_outbox

JUSTIFICATION = "Thai ONCB is tracking the same lorries 70C-123.45 at Chiang Saen"
DECLINE = "Source protection: the informant is Thai"
ABSENT = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def s(db) -> Sharing:
    return build_sharing()


@pytest.fixture
def item(s) -> Any:
    """A Viet Nam item released to Viet Nam and Cambodia (not Thailand or Laos)."""
    return post_item(s.user("vn.officer"), countries=["VN", "KH"])


def ask(s: Sharing, item: Any, country: str = "TH", by: str = "kh.officer", **extra: Any) -> Any:
    return consent_request_create(
        actor=s.user(by), item_id=item.pk, target_country=country, justification=JUSTIFICATION, **extra
    ).consent


def client(user: Any) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


# --- asking ---------------------------------------------------------------------------------------------------------


def test_asking_seals_the_justification_tells_the_supervisors_and_shares_nothing_yet(s, item):
    consent = ask(s, item)

    assert (consent.status, consent.requester_agency_id, consent.target_country_id) == ("pending", s.net.kh.pk, "TH")
    assert JUSTIFICATION.encode() not in bytes(consent.justification_sealed)
    assert abs(consent.due_at - consent.created_at - timedelta(hours=24)) < timedelta(seconds=1)
    assert notified(NotificationKind.CONSENT_REQUESTED, consent=consent) == {"vn.supervisor"}
    # Nothing leaves the circle before the originator decides: no key, no grant, no read.
    assert not ItemKey.objects.filter(item=item, country_id="TH").exists()
    assert not ItemCountryGrant.objects.filter(item=item, country_id="TH").exists()
    with pytest.raises(NotFound):
        item_read(actor=s.user("th.officer"), item_id=item.pk)
    [event] = events("messaging.consent.request")
    assert (event.actor_country, event.target_country, event.target_id) == ("KH", "VN", str(consent.pk))
    assert "70C" not in str(event.details)


def test_a_flash_item_is_due_within_the_hour(s):
    flash = post_item(s.user("vn.officer"), countries=["VN", "KH"], priority="flash")
    consent = ask(s, flash)
    assert abs(consent.due_at - consent.created_at - timedelta(minutes=60)) < timedelta(seconds=1)


def test_asking_is_refused_for_released_countries_repeats_unknown_targets_and_outsiders(s, item):
    with pytest.raises(Conflict):
        ask(s, item, country="VN")  # released already
    with pytest.raises(InvalidInput):
        ask(s, item, country="XX")
    with pytest.raises(InvalidInput):  # the agency must be of the target country
        ask(s, item, target_agency=s.net.la)
    with pytest.raises(InvalidInput):
        consent_request_create(actor=s.user("kh.officer"), item_id=item.pk, target_country="TH", justification=" ")
    ask(s, item)
    with pytest.raises(Conflict):
        ask(s, item, by="kh.supervisor")  # one pending request per country
    with pytest.raises(NotFound):
        ask(s, item, country="LA", by="th.officer")  # cannot read the item
    with pytest.raises(PermissionDenied):
        ask(s, item, country="LA", by="kh.auditor")
    assert ConsentRequest.objects.count() == 1


# --- approving ------------------------------------------------------------------------------------------------------


def test_approval_wraps_the_key_for_the_target_country_only_then_and_routes_the_item_there(s, item):
    consent = ask(s, item)
    th = client(s.user("th.officer"))
    assert th.get(f"/api/v1/items/{item.pk}/").status_code == 404

    consent_grant(actor=s.user("vn.supervisor"), consent_id=consent.pk)

    consent.refresh_from_db()
    assert (consent.status, consent.decided_by, consent.escalation_level) == ("approved", s.user("vn.supervisor"), 0)
    assert ItemKey.objects.filter(item=item, country_id="TH").count() == 1
    grant = ItemCountryGrant.objects.get(item=item, country_id="TH")
    assert grant.consent_id == consent.pk
    assert th.get(f"/api/v1/items/{item.pk}/").json()["title"] == "Meth pills shipment expected at Moc Bai"
    assert notified(NotificationKind.CONSENT_APPROVED, consent=consent) == {"kh.officer"}
    row = OutboxMessage.objects.get(kind=OutboxKind.CONSENT_DELIVER, item=item)
    assert row.payload == {"item_id": str(item.pk), "consent_id": str(consent.pk)}

    run_outbox(OutboxKind.CONSENT_DELIVER)

    delivered = {
        (d.agency.short_name, d.office.name if d.office else None, d.reason)
        for d in Delivery.objects.filter(item=item).select_related("agency", "office")
    }
    # Routed by the ordinary rules inside Thailand only (Chiang Saen's subscription, RTP's duty desk: none), each
    # marked as shared by consent.
    assert delivered == {("ONCB", "Chiang Saen BLO", "consented"), ("RTP", None, "consented")}
    assert notified(NotificationKind.ROUTED, item=item) == {"th.officer"}
    [approve] = events("messaging.consent.approve")
    assert (approve.actor_country, approve.target_country) == ("VN", "KH")
    [deliver] = events("messaging.consent.deliver")
    assert deliver.target_country == "TH"
    # Both sides' national auditors see the request and its approval; the target country's sees it arrive.
    assert set(
        events_visible_to(s.user("vn.auditor"))
        .filter(action__startswith="messaging.consent.")
        .values_list("action", flat=True)
    ) >= {
        "messaging.consent.request",
        "messaging.consent.approve",
    }
    assert set(
        events_visible_to(s.user("kh.auditor"))
        .filter(action__startswith="messaging.consent.")
        .values_list("action", flat=True)
    ) >= {
        "messaging.consent.request",
        "messaging.consent.approve",
    }


def test_approval_naming_an_agency_shares_with_that_agency_only(s, item):
    consent = ask(s, item, target_agency=s.th_police)
    consent_grant(actor=s.user("vn.supervisor"), consent_id=consent.pk)
    assert ItemAgencyGrant.objects.get(item=item, country_id="TH").consent_id == consent.pk
    assert item_read(actor=s.user("th.police"), item_id=item.pk).title
    with pytest.raises(NotFound):
        item_read(actor=s.user("th.officer"), item_id=item.pk)
    run_outbox(OutboxKind.CONSENT_DELIVER)
    assert set(Delivery.objects.filter(item=item).values_list("agency__short_name", "reason")) == {("RTP", "consented")}


def test_only_a_supervisor_or_focal_point_of_the_originating_agency_decides(s, item):
    consent = ask(s, item)
    for name in ("vn.officer", "kh.officer", "kh.supervisor"):  # sides, but not deciders
        with pytest.raises(PermissionDenied):
            consent_grant(actor=s.user(name), consent_id=consent.pk)
    for name in ("th.officer", "la.supervisor", "kh.customs", "vn.auditor"):  # not a side at all
        with pytest.raises(NotFound):
            consent_grant(actor=s.user(name), consent_id=consent.pk)
    assert not ItemKey.objects.filter(item=item, country_id="TH").exists()
    consent_grant(actor=s.user("vn.focal"), consent_id=consent.pk)
    with pytest.raises(Conflict):
        consent_grant(actor=s.user("vn.supervisor"), consent_id=consent.pk)


def test_the_consented_recipients_appear_in_the_originators_delivery_states(s):
    item = post_item(s.user("vn.officer"), countries=["VN", "KH"], priority="flash")
    run_outbox()  # routed to Cambodia first
    consent_grant(actor=s.user("vn.supervisor"), consent_id=ask(s, item).pk)
    run_outbox()
    item_acknowledge(actor=s.user("th.officer"), item_id=item.pk, note="no_trace")
    states = {
        state.agency.short_name: state for state in item_deliveries_view(actor=s.user("vn.officer"), item_id=item.pk)
    }
    assert {"ONCB", "RTP", "ADD", "GDCE"} <= set(states)
    assert (states["ONCB"].acknowledged_by, states["ONCB"].note) == ("th.officer", "no_trace")
    assert Delivery.objects.get(item=item, agency__short_name="ONCB").reason == DeliveryReason.CONSENTED


def test_routing_that_runs_after_the_approval_marks_the_consented_countrys_deliveries_consented(s, item):
    # Approved before the item's own routing has run: routing reaches Thailand too, and must say why it may.
    consent_grant(actor=s.user("vn.supervisor"), consent_id=ask(s, item).pk)
    assert run_outbox(OutboxKind.ITEM_ROUTE) == 1
    reasons = dict(Delivery.objects.filter(item=item).values_list("agency__short_name", "reason"))
    assert (reasons["ONCB"], reasons["RTP"]) == (DeliveryReason.CONSENTED, DeliveryReason.CONSENTED)
    assert reasons["ADD"] == DeliveryReason.COUNTERPART  # the release's own countries keep their reasons
    assert DeliveryReason.CONSENTED in events("messaging.item.route")[-1].details["reasons"]
    # The consent's own delivery then finds every Thai recipient delivered already.
    run_outbox(OutboxKind.CONSENT_DELIVER)
    assert events("messaging.consent.deliver")[-1].details["deliveries"] == 0
    assert set(
        Delivery.objects.filter(item=item, agency__country_id="TH").values_list("agency__short_name", "reason")
    ) == {("ONCB", "consented"), ("RTP", "consented")}


# --- declining and cancelling -----------------------------------------------------------------------------------------


def test_declining_seals_the_reason_for_the_two_sides_and_shares_nothing(s, item):
    consent = ask(s, item)
    with pytest.raises(InvalidInput):
        consent_decline(actor=s.user("vn.supervisor"), consent_id=consent.pk, reason="")

    consent_decline(actor=s.user("vn.supervisor"), consent_id=consent.pk, reason=DECLINE)

    consent.refresh_from_db()
    assert consent.status == ConsentStatus.DECLINED
    assert DECLINE.encode() not in bytes(consent.decline_reason_sealed)
    assert not ItemKey.objects.filter(item=item, country_id="TH").exists()
    assert notified(NotificationKind.CONSENT_DECLINED, consent=consent) == {"kh.officer"}
    requester_view = consent_read(actor=s.user("kh.officer"), consent_id=consent.pk)
    assert (requester_view.justification, requester_view.decline_reason) == (JUSTIFICATION, DECLINE)
    originator_view = consent_read(actor=s.user("vn.officer"), consent_id=consent.pk)
    assert originator_view.decline_reason == DECLINE
    with pytest.raises(Conflict):
        consent_grant(actor=s.user("vn.supervisor"), consent_id=consent.pk)
    [event] = events("messaging.consent.decline")
    assert "informant" not in str(event.details)
    assert [e.actor_label for e in events("messaging.consent.read")] == ["kh.officer", "vn.officer"]


def test_the_requesting_agency_cancels_a_pending_request(s, item):
    consent = ask(s, item)
    with pytest.raises(PermissionDenied):
        consent_cancel(actor=s.user("vn.supervisor"), consent_id=consent.pk)
    consent_cancel(actor=s.user("kh.supervisor"), consent_id=consent.pk)  # the same agency as the requester
    consent.refresh_from_db()
    assert consent.status == ConsentStatus.CANCELLED
    with pytest.raises(Conflict):
        consent_grant(actor=s.user("vn.supervisor"), consent_id=consent.pk)
    [event] = events("messaging.consent.cancel")
    assert (event.actor_country, event.target_country) == ("KH", "VN")
    ask(s, item)  # a new request for the same country may follow


# --- who sees a request -----------------------------------------------------------------------------------------------


def test_a_third_country_sees_nothing_of_a_consent_request(s, item):
    consent = ask(s, item)
    for name in ("th.officer", "la.supervisor", "kh.customs"):
        api = client(s.user(name))
        listed = api.get("/api/v1/consents/")
        assert listed.status_code == 200
        assert listed.json()["results"] == []
        hidden, absent = api.get(f"/api/v1/consents/{consent.pk}/"), api.get(f"/api/v1/consents/{ABSENT}/")
        assert (hidden.status_code, hidden.json()) == (absent.status_code, absent.json()) == (404, absent.json())
        hidden = api.post(f"/api/v1/consents/{consent.pk}/approve/")
        absent = api.post(f"/api/v1/consents/{ABSENT}/approve/")
        assert (hidden.status_code, hidden.json()) == (absent.status_code, absent.json())
        assert api.post(f"/api/v1/consents/{consent.pk}/decline/", {"reason": "x"}).status_code == 404
        assert api.post(f"/api/v1/consents/{consent.pk}/cancel/").status_code == 404
    consent.refresh_from_db()
    assert consent.status == ConsentStatus.PENDING
    # Auditors read no content, and list no requests.
    assert client(s.user("vn.auditor")).get("/api/v1/consents/").status_code == 403


def test_api_ask_list_read_approve(s, item):
    kh = client(s.user("kh.officer"))
    created = kh.post(
        "/api/v1/consents/",
        {"item": str(item.pk), "target_country": "TH", "justification": JUSTIFICATION},
        format="json",
    )
    assert created.status_code == 201, created.content
    consent_id = created.json()["id"]
    assert (created.json()["status"], created.json()["justification"]) == ("pending", JUSTIFICATION)
    assert (
        kh.post(
            "/api/v1/consents/",
            {"item": str(item.pk), "target_country": "TH", "justification": "again"},
            format="json",
        ).status_code
        == 409
    )

    vn = client(s.user("vn.supervisor"))
    [listed] = vn.get("/api/v1/consents/").json()["results"]
    assert (listed["id"], listed["requester"], listed["requester_agency"]["short_name"]) == (
        consent_id,
        "kh.officer",
        "ADD",
    )
    assert "justification" not in listed  # lists carry metadata; the detail opens the text, recorded
    detail = vn.get(f"/api/v1/consents/{consent_id}/").json()
    assert detail["justification"] == JUSTIFICATION
    assert kh.post(f"/api/v1/consents/{consent_id}/approve/").status_code == 403
    approved = vn.post(f"/api/v1/consents/{consent_id}/approve/")
    assert (approved.status_code, approved.json()["status"], approved.json()["decided_by"]) == (
        200,
        "approved",
        "vn.supervisor",
    )
    assert vn.get("/api/v1/consents/?status=pending").json()["results"] == []
    assert events("messaging.consent.list")[0].details["consent_ids"] == [consent_id]
    assert client(s.user("th.officer")).get(f"/api/v1/items/{item.pk}/").status_code == 200


def test_api_decline_and_cancel(s, item):
    consent = ask(s, item)
    vn = client(s.user("vn.supervisor"))
    assert vn.post(f"/api/v1/consents/{consent.pk}/decline/", {}, format="json").status_code == 400
    declined = vn.post(f"/api/v1/consents/{consent.pk}/decline/", {"reason": DECLINE}, format="json")
    assert (declined.status_code, declined.json()["status"]) == (200, "declined")
    assert client(s.user("kh.officer")).get(f"/api/v1/consents/{consent.pk}/").json()["decline_reason"] == DECLINE
    other = ask(s, item, country="LA")
    cancelled = client(s.user("kh.officer")).post(f"/api/v1/consents/{other.pk}/cancel/")
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")


# --- due times ----------------------------------------------------------------------------------------------------


def test_an_undecided_request_reminds_the_supervisors_then_escalates_to_the_national_focal_points(s, item):
    consent = ask(s, item)
    assert consents_escalate_due(now=consent.due_at - timedelta(seconds=1)) == 0

    assert consents_escalate_due(now=consent.due_at + timedelta(seconds=1)) == 1
    assert consents_escalate_due(now=consent.due_at + timedelta(seconds=2)) == 0  # once per level
    consent.refresh_from_db()
    assert consent.escalation_level == 1
    assert notified(NotificationKind.CONSENT_REMINDER, consent=consent) == {"vn.supervisor"}
    assert not notified(NotificationKind.CONSENT_ESCALATED, consent=consent)

    later = consent.due_at + (consent.due_at - consent.created_at) + timedelta(seconds=1)
    assert consents_escalate_due(now=later - timedelta(seconds=2)) == 0
    assert consents_escalate_due(now=later) == 1
    assert consents_escalate_due(now=later + timedelta(days=1)) == 0  # the last level
    consent.refresh_from_db()
    assert consent.escalation_level == 2
    assert notified(NotificationKind.CONSENT_ESCALATED, consent=consent) == {"vn.focal"}
    assert [
        (e.action, e.details["level"])
        for e in AuditEvent.objects.filter(
            action__in=["messaging.consent.remind", "messaging.consent.escalate"]
        ).order_by("id")
    ] == [
        ("messaging.consent.remind", 1),
        ("messaging.consent.escalate", 2),
    ]


def test_a_decided_request_is_not_reminded(s, item):
    consent = ask(s, item)
    consent_grant(actor=s.user("vn.supervisor"), consent_id=consent.pk)
    assert consents_escalate_due(now=timezone.now() + timedelta(days=3)) == 0
    assert not notified(NotificationKind.CONSENT_REMINDER, consent=consent)


def test_the_admin_shows_consent_requests_and_forwards_without_their_texts(s, item, client):
    from messaging.sharing.forwards import item_forward
    from tests.auth import sign_in
    from tests.factories import UserFactory

    consent = ask(s, item)
    forward = item_forward(
        actor=s.user("kh.officer"), item_id=item.pk, to_agency=s.net.kh_customs, reason="Lorry 70C-123.45 reason"
    ).forward
    sign_in(client, UserFactory(username="root", is_staff=True, is_superuser=True))
    pages = [
        client.get("/admin/messaging/consentrequest/"),
        client.get(f"/admin/messaging/consentrequest/{consent.pk}/change/"),
        client.get("/admin/messaging/forward/"),
        client.get(f"/admin/messaging/forward/{forward.pk}/change/"),
    ]
    assert [page.status_code for page in pages] == [200, 200, 200, 200]
    assert str(consent.pk) in pages[0].content.decode()
    for page in pages:
        assert "70C-123.45" not in page.content.decode()
    assert client.post(f"/admin/messaging/consentrequest/{consent.pk}/delete/").status_code == 403


def test_consent_list_costs_the_same_for_one_request_or_many(s, django_assert_max_num_queries):
    vn = client(s.user("vn.supervisor"))
    for number in range(12):
        ask(s, post_item(s.user("vn.officer"), countries=["VN", "KH"], title=f"Convoy {number}"))
    with django_assert_max_num_queries(8):
        listed = vn.get("/api/v1/consents/")
    assert len(listed.json()["results"]) == 12
    assert events("messaging.consent.list")[-1].details["count"] == 12
