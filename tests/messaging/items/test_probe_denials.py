"""A refused look at an item is filed under the item's originating country, so that country's national auditor sees
who probed it, while the prober's answer stays exactly that of an id that names nothing."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from audit.models import AuditEvent, Outcome
from audit.selectors import events_visible_to
from tests.auth import sign_in
from tests.messaging.network import Sharing, build_sharing, post_item

pytestmark = pytest.mark.django_db

ABSENT = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def s(db) -> Sharing:
    return build_sharing()


@pytest.fixture
def hidden(s) -> Any:
    """A Viet Nam item released to Viet Nam and Thailand: Cambodia may not see it."""
    return post_item(s.user("vn.officer"), countries=["VN", "TH"])


def api(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def api_probes(item_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    """(method, path, body) of the API's item endpoints, and asking consent for the item."""
    return [
        ("get", f"/api/v1/items/{item_id}/", None),
        ("get", f"/api/v1/items/{item_id}/attachments/{uuid.uuid4()}/", None),
        ("post", f"/api/v1/items/{item_id}/acknowledge/", {"note": "no_trace"}),
        ("post", f"/api/v1/items/{item_id}/forward/", {"to_agency": 1, "reason": "Bavet checks lorries"}),
        ("get", f"/api/v1/items/{item_id}/forwards/", None),
        ("post", "/api/v1/consents/", {"item": item_id, "target_country": "LA", "justification": "Same lorries"}),
    ]


def portal_probes(item_id: str) -> list[str]:
    return [f"/items/{item_id}/", f"/items/{item_id}/consent/", f"/items/{item_id}/forward/"]


def page(response: Any, item_id: str = ABSENT) -> str:
    """A page's text with the id it was asked for replaced and its CSRF token (new in every response) blanked."""
    text = response.content.decode().replace(item_id, ABSENT)
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', 'name="csrfmiddlewaretoken" value=""', text)


def call(client: APIClient, method: str, path: str, body: dict[str, Any] | None) -> Any:
    return getattr(client, method)(path, body, format="json") if body is not None else getattr(client, method)(path)


def denials(**filters: Any) -> Any:
    return AuditEvent.objects.filter(action="access.denied", **filters).order_by("id")


def test_api_probes_of_a_hidden_item_answer_like_nothing_and_are_filed_under_its_country(s, hidden):
    kh = api(s.user("kh.officer"))
    item_id = str(hidden.pk)
    for (method, path, body), (_m, absent_path, absent_body) in zip(
        api_probes(item_id), api_probes(ABSENT), strict=True
    ):
        probe, nothing = call(kh, method, path, body), call(kh, method, absent_path, absent_body)
        assert probe.status_code == nothing.status_code == 404, path
        assert probe.json() == nothing.json(), path
        assert probe["Content-Type"] == nothing["Content-Type"]

    on_the_item = denials(target_id=item_id)
    assert on_the_item.count() == len(api_probes(item_id))
    assert {(d.actor_country, d.target_type, d.target_country, d.outcome) for d in on_the_item} == {
        ("KH", "messaging.item", "VN", Outcome.DENIED)
    }
    assert {d.details["reason"] for d in on_the_item} == {"not_found"}
    # The probes of an id that names nothing are recorded too, under no country.
    on_nothing = denials(target_id=ABSENT)
    assert on_nothing.count() == len(api_probes(ABSENT))
    assert set(on_nothing.values_list("target_country", flat=True)) == {""}


def test_viet_nams_national_auditor_finds_the_probes_of_its_item(s, hidden):
    kh = api(s.user("kh.officer"))
    assert kh.get(f"/api/v1/items/{hidden.pk}/").status_code == 404
    assert kh.get(f"/api/v1/items/{ABSENT}/").status_code == 404
    [probe] = denials(target_id=str(hidden.pk))

    assert events_visible_to(s.user("vn.auditor")).filter(pk=probe.pk).exists()
    found = api(s.user("vn.auditor")).get(f"/api/v1/audit/events/?action=access.denied&target_id={hidden.pk}")
    assert found.status_code == 200
    assert [row["id"] for row in found.json()["results"]] == [probe.pk]
    by_country = api(s.user("vn.auditor")).get("/api/v1/audit/events/?action=access.denied&country=VN")
    assert probe.pk in {row["id"] for row in by_country.json()["results"]}
    # A probe of nothing touches no country of Viet Nam's.
    [nothing] = denials(target_id=ABSENT)
    assert not events_visible_to(s.user("vn.auditor")).filter(pk=nothing.pk).exists()
    assert events_visible_to(s.user("kh.auditor")).filter(pk__in=[probe.pk, nothing.pk]).count() == 2


def test_portal_probes_of_a_hidden_item_answer_like_nothing_and_are_filed_under_its_country(s, hidden):
    kh = sign_in(Client(), s.user("kh.officer"))
    item_id = str(hidden.pk)
    for path, absent_path in zip(portal_probes(item_id), portal_probes(ABSENT), strict=True):
        probe, nothing = kh.get(path), kh.get(absent_path)
        assert probe.status_code == nothing.status_code == 404, path
        assert page(probe, item_id) == page(nothing), path
    assert kh.post(f"/items/{item_id}/consent/", {"target_country": "LA", "justification": "x"}).status_code == 404

    on_the_item = denials(target_id=item_id)
    assert on_the_item.count() == len(portal_probes(item_id)) + 1
    assert {(d.target_type, d.target_country, d.details["reason"]) for d in on_the_item} == {
        ("messaging.item", "VN", "not_found")
    }
    assert set(denials(target_id=ABSENT).values_list("target_country", flat=True)) == {""}
    assert events_visible_to(s.user("vn.auditor")).filter(pk__in=on_the_item).count() == on_the_item.count()


def test_the_originators_own_reads_are_not_denials(s, hidden):
    assert api(s.user("vn.officer")).get(f"/api/v1/items/{hidden.pk}/").status_code == 200
    assert api(s.user("th.officer")).get(f"/api/v1/items/{hidden.pk}/").status_code == 200
    assert not denials().exists()


def test_probes_of_a_hidden_consent_request_or_rfi_are_filed_under_the_country_they_concern(s):
    """A consent request is about an item: a refused look at it is filed under the item's country, like a look at
    the item. A request for information is filed under the country it asks, whose auditors answer for it."""
    from messaging.rfis.services import rfi_create
    from messaging.sharing.consents import consent_request_create

    item = post_item(s.user("vn.officer"), countries=["VN", "KH"])
    consent = consent_request_create(
        actor=s.user("kh.officer"), item_id=item.pk, target_country="LA", justification="Same lorries"
    ).consent
    rfi = rfi_create(
        actor=s.user("vn.officer"), target_agency=s.net.kh.pk, subject="Lorries", question="Seen at Bavet?"
    ).rfi
    th = api(s.user("th.officer"))
    for path, absent in (
        (f"/api/v1/consents/{consent.pk}/", f"/api/v1/consents/{ABSENT}/"),
        (f"/api/v1/rfis/{rfi.pk}/", f"/api/v1/rfis/{ABSENT}/"),
    ):
        probe, nothing = th.get(path), th.get(absent)
        assert probe.status_code == nothing.status_code == 404, path
        assert probe.json() == nothing.json(), path

    [on_consent] = denials(target_id=str(consent.pk))
    assert (on_consent.actor_country, on_consent.target_country) == ("TH", "VN")
    assert events_visible_to(s.user("vn.auditor")).filter(pk=on_consent.pk).exists()
    [on_rfi] = denials(target_id=str(rfi.pk))
    assert (on_rfi.actor_country, on_rfi.target_type, on_rfi.target_country) == ("TH", "messaging.rfi", "KH")
    assert set(denials(target_id=ABSENT).values_list("target_country", flat=True)) == {""}
