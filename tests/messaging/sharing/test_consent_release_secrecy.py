"""Asking consent tells a recipient nothing about the release or about other agencies' requests: a request for a
country the item is already released to is accepted like any other (the originating agency sees that it is
released; approving it changes nothing), and one agency's waiting request does not block another's."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.test import Client
from rest_framework.test import APIClient

from audit.models import AuditEvent
from isn.errors import Conflict
from messaging.items.changes import item_change
from messaging.items.lifecycle import item_read
from messaging.models import (
    ConsentRequest,
    ConsentStatus,
    ItemCountryGrant,
    ItemKey,
    NotificationKind,
    OutboxKind,
    OutboxMessage,
)
from messaging.sharing.consents import consent_grant, consent_request_create
from tests.auth import sign_in
from tests.messaging.network import Sharing, build_sharing, notified, post_item, run_outbox

JUSTIFICATION = "Thai ONCB is tracking the same lorries 70C-123.45 at Chiang Saen"


@pytest.fixture
def s(db) -> Sharing:
    return build_sharing()


@pytest.fixture
def item(s) -> Any:
    """A Viet Nam item released to Viet Nam, Cambodia and Thailand (not Laos)."""
    return post_item(s.user("vn.officer"), countries=["VN", "KH", "TH"])


def ask(s: Sharing, item: Any, country: str, by: str = "kh.officer") -> Any:
    return consent_request_create(
        actor=s.user(by), item_id=item.pk, target_country=country, justification=JUSTIFICATION
    ).consent


def api(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


SHAPE = {"status", "target_country", "requester", "justification", "decided_by", "target_agency"}


def test_api_answers_alike_for_a_released_and_an_unreleased_country(s, item):
    kh = api(s.user("kh.officer"))
    answers = {}
    for country in ("TH", "LA"):
        response = kh.post(
            "/api/v1/consents/",
            {"item": str(item.pk), "target_country": country, "justification": JUSTIFICATION},
            format="json",
        )
        assert response.status_code == 201, response.content
        answers[country] = {key: value for key, value in response.json().items() if key in SHAPE}
    assert answers["TH"] == {**answers["LA"], "target_country": "TH"}
    assert answers["TH"]["status"] == "pending"
    stored = ConsentRequest.objects.filter(item=item, status=ConsentStatus.PENDING)
    assert set(stored.values_list("target_country_id", flat=True)) == {"TH", "LA"}
    assert AuditEvent.objects.filter(action="messaging.consent.request").count() == 2
    # Both are put to the originating agency's supervisors alike.
    for consent in stored:
        assert notified(NotificationKind.CONSENT_REQUESTED, consent=consent) == {"vn.supervisor"}


def test_what_the_caller_knows_is_still_refused(s, item):
    with pytest.raises(Conflict):
        ask(s, item, "KH")  # the caller's own country holds what they read
    with pytest.raises(Conflict):
        ask(s, item, "VN")  # and so does the originator's
    with pytest.raises(Conflict):  # the originating agency sees its own release
        ask(s, item, "TH", by="vn.officer")
    assert not ConsentRequest.objects.exists()


def test_another_agencys_waiting_request_does_not_block_or_show(s, item):
    theirs = ask(s, item, "LA", by="kh.police")  # Cambodian National Police, another Cambodian agency
    kh = api(s.user("kh.officer"))
    body = {"item": str(item.pk), "target_country": "LA", "justification": JUSTIFICATION}
    mine = kh.post("/api/v1/consents/", body, format="json")
    assert mine.status_code == 201, mine.content
    assert mine.json()["id"] != str(theirs.pk)
    again = kh.post("/api/v1/consents/", body, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "conflict")  # only the agency's own request blocks
    assert ConsentRequest.objects.filter(item=item, target_country_id="LA", status="pending").count() == 2
    with pytest.raises(IntegrityError), transaction.atomic():
        ConsentRequest.objects.create(
            item=item,
            requester_agency=theirs.requester_agency,
            requester_user=s.user("kh.police"),
            target_country_id="LA",
            justification_sealed=b"x",
            due_at=theirs.due_at,
        )


def test_approving_a_request_for_a_country_already_released_changes_nothing(s, item):
    consent = ask(s, item, "TH")
    grant = ItemCountryGrant.objects.get(item=item, country_id="TH")
    keys = set(ItemKey.objects.filter(item=item).values_list("pk", flat=True))
    outbox = OutboxMessage.objects.filter(kind=OutboxKind.CONSENT_DELIVER).count()

    consent_grant(actor=s.user("vn.supervisor"), consent_id=consent.pk)

    consent.refresh_from_db()
    assert (consent.status, consent.decided_by) == (ConsentStatus.APPROVED, s.user("vn.supervisor"))
    assert list(ItemCountryGrant.objects.filter(item=item, country_id="TH")) == [grant]
    assert ItemCountryGrant.objects.get(pk=grant.pk).consent_id is None  # still the originator's own release
    assert set(ItemKey.objects.filter(item=item).values_list("pk", flat=True)) == keys
    assert OutboxMessage.objects.filter(kind=OutboxKind.CONSENT_DELIVER).count() == outbox
    assert notified(NotificationKind.CONSENT_APPROVED, consent=consent) == {"kh.officer"}
    [approval] = AuditEvent.objects.filter(action="messaging.consent.approve")
    assert approval.details["already_released"] is True


def test_cutting_off_such_a_request_leaves_the_originators_release_alone(s, item):
    consent = ask(s, item, "TH")
    consent_grant(actor=s.user("vn.supervisor"), consent_id=consent.pk)
    # The originator narrows Cambodia out: the Cambodian request falls, Thailand keeps what the originator gave it.
    item_change(actor=s.user("vn.officer"), item_id=item.pk, countries=["VN", "TH"])
    consent.refresh_from_db()
    assert consent.status == ConsentStatus.REVOKED
    assert ItemCountryGrant.objects.filter(item=item, country_id="TH").exists()
    assert item_read(actor=s.user("th.officer"), item_id=item.pk).title


def consent_countries(page: str, item: Any) -> list[str]:
    form = re.search(rf'<form method="post" action="/items/{item.pk}/consent/">(.*?)</form>', page, re.S)
    assert form, "the page offers to ask consent"
    return re.findall(r'<option value="([A-Z]{2})"', form.group(1))


def test_portal_offers_and_accepts_every_other_country_alike(s, item):
    run_outbox()
    kh = sign_in(Client(), s.user("kh.officer"))
    offered = consent_countries(kh.get(f"/items/{item.pk}/").content.decode(), item)
    assert sorted(offered) == sorted(set(offered) - {"KH", "VN"})
    assert {"TH", "LA"} <= set(offered)
    for country in ("TH", "LA"):
        response = kh.post(f"/items/{item.pk}/consent/", {"target_country": country, "justification": JUSTIFICATION})
        consent = ConsentRequest.objects.get(item=item, target_country_id=country)
        assert (response.status_code, response["Location"]) == (302, f"/consents/{consent.pk}/")
    released = ConsentRequest.objects.get(item=item, target_country_id="TH")
    # The requester's page does not say; the originating agency's decider sees it is released already.
    assert "data-already-released" not in kh.get(f"/consents/{released.pk}/").content.decode()
    supervisor = sign_in(Client(), s.user("vn.supervisor"))
    assert "data-already-released" in supervisor.get(f"/consents/{released.pk}/").content.decode()
    unreleased = ConsentRequest.objects.get(item=item, target_country_id="LA")
    assert "data-already-released" not in supervisor.get(f"/consents/{unreleased.pk}/").content.decode()
