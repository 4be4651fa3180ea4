"""Four eyes on consent: whoever asked to share an item with another country never decides on that request, through
the services, the API or the portal; the refusal is recorded like every refused request (``access.denied``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from audit.models import AuditEvent, Outcome
from isn.errors import PermissionDenied
from messaging.models import ConsentStatus, ItemCountryGrant, ItemKey, NotificationKind
from messaging.sharing.consents import (
    consent_decline,
    consent_grant,
    consent_request_create,
    consents_escalate_due,
)
from tests.auth import sign_in
from tests.messaging.network import Sharing, build_sharing, notified, post_item

JUSTIFICATION = "Thai ONCB is tracking the same lorries 70C-123.45 at Chiang Saen"


@pytest.fixture
def s(db) -> Sharing:
    return build_sharing()


@pytest.fixture
def own_request(s) -> Any:
    """Viet Nam's supervisor asks to share their own agency's item (released to VN and KH) with Thailand."""
    item = post_item(s.user("vn.officer"), countries=["VN", "KH"])
    return consent_request_create(
        actor=s.user("vn.supervisor"), item_id=item.pk, target_country="TH", justification=JUSTIFICATION
    ).consent


def api(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def shared_with_thailand(consent: Any) -> bool:
    return (
        ItemCountryGrant.objects.filter(item_id=consent.item_id, country_id="TH").exists()
        or ItemKey.objects.filter(item_id=consent.item_id, country_id="TH").exists()
    )


def test_the_requester_cannot_approve_or_decline_their_own_request(s, own_request):
    with pytest.raises(PermissionDenied, match="four eyes"):
        consent_grant(actor=s.user("vn.supervisor"), consent_id=own_request.pk)
    with pytest.raises(PermissionDenied, match="four eyes"):
        consent_decline(actor=s.user("vn.supervisor"), consent_id=own_request.pk, reason="Changed my mind")
    own_request.refresh_from_db()
    assert own_request.status == ConsentStatus.PENDING
    assert not shared_with_thailand(own_request)
    assert not AuditEvent.objects.filter(action__in=["messaging.consent.approve", "messaging.consent.decline"])
    # A second person of the originating agency decides.
    consent_grant(actor=s.user("vn.focal"), consent_id=own_request.pk)
    own_request.refresh_from_db()
    assert (own_request.status, own_request.decided_by) == (ConsentStatus.APPROVED, s.user("vn.focal"))
    assert shared_with_thailand(own_request)


def test_the_requester_is_not_asked_to_decide_their_own_request(s, own_request):
    assert "vn.supervisor" not in notified(NotificationKind.CONSENT_REQUESTED, consent=own_request)
    assert "vn.focal" in notified(NotificationKind.CONSENT_REQUESTED, consent=own_request)


def test_reminders_and_escalation_pass_over_the_requester(s):
    item = post_item(s.user("vn.officer"), countries=["VN", "KH"])
    consent = consent_request_create(
        actor=s.user("vn.focal"), item_id=item.pk, target_country="TH", justification=JUSTIFICATION
    ).consent
    assert consents_escalate_due(now=consent.due_at + timedelta(seconds=1)) == 1
    later = consent.due_at + (consent.due_at - consent.created_at) + timedelta(seconds=1)
    assert consents_escalate_due(now=later) == 1
    assert notified(NotificationKind.CONSENT_REMINDER, consent=consent) == {"vn.supervisor"}
    assert "vn.focal" not in notified(NotificationKind.CONSENT_ESCALATED, consent=consent)
    assert [e.details["level"] for e in AuditEvent.objects.filter(action="messaging.consent.escalate")] == [2]


def test_api_refuses_self_approval_with_403_and_records_the_refusal(s, own_request):
    supervisor = api(s.user("vn.supervisor"))
    for act, body in (("approve", {}), ("decline", {"reason": "Not needed"})):
        response = supervisor.post(f"/api/v1/consents/{own_request.pk}/{act}/", body, format="json")
        assert response.status_code == 403, response.content
        problem = response.json()
        assert problem["code"] == "permission_denied"
        assert "asked for it" in problem["detail"]
    denials = AuditEvent.objects.filter(action="access.denied", actor_user=s.user("vn.supervisor")).order_by("id")
    assert [(d.outcome, d.details["reason"], d.target_id) for d in denials] == [
        (Outcome.DENIED, "permission_denied", str(own_request.pk)),
        (Outcome.DENIED, "permission_denied", str(own_request.pk)),
    ]
    own_request.refresh_from_db()
    assert own_request.status == ConsentStatus.PENDING
    assert not shared_with_thailand(own_request)
    approved = api(s.user("vn.focal")).post(f"/api/v1/consents/{own_request.pk}/approve/")
    assert (approved.status_code, approved.json()["decided_by"]) == (200, "vn.focal")


def test_portal_offers_no_decision_to_the_requester_and_refuses_a_forged_one(s, own_request):
    supervisor = sign_in(Client(), s.user("vn.supervisor"))
    detail = supervisor.get(f"/consents/{own_request.pk}/").content.decode()
    assert 'data-act="approve"' not in detail
    assert 'data-act="decline"' not in detail
    assert 'data-act="cancel"' in detail  # they may still withdraw it
    assert supervisor.post(f"/consents/{own_request.pk}/approve/").status_code == 403
    assert supervisor.post(f"/consents/{own_request.pk}/decline/", {"reason": "Not needed"}).status_code == 403
    denials = AuditEvent.objects.filter(action="access.denied", actor_user=s.user("vn.supervisor"))
    assert [d.details["reason"] for d in denials] == ["permission_denied", "permission_denied"]
    waiting = supervisor.get("/consents/").content.decode()
    assert f'data-consent="{own_request.pk}"' in waiting  # listed, as asked by the agency
    own_request.refresh_from_db()
    assert own_request.status == ConsentStatus.PENDING
    assert not shared_with_thailand(own_request)
