"""The discovery API: ``POST /api/v1/matches/``, ``GET /api/v1/hits/``, and the ``discoverable`` choice in posting,
detail and correction (ISN issue 15)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from messaging.models import Change, ChangeKind, Hit, Item, MatchCheck
from tests.messaging.conftest import api_payload

pytestmark = pytest.mark.django_db

MATCHES = "/api/v1/matches/"
HITS = "/api/v1/hits/"
PLATE = {"type": "vehicle", "plate": "51C-123.45", "country": "VN"}


@pytest.fixture
def vn_plate(post, vn_officer):
    """The issue's case: a plate posted by Viet Nam's BGC, released to Viet Nam only, discoverable."""
    return post(vn_officer, countries=["VN"], entities=[PLATE], discoverable=True).item


def _check(api, user, identifiers):
    api.force_authenticate(user)
    return api.post(MATCHES, {"identifiers": identifiers}, format="json")


# --- POST /api/v1/matches/ ------------------------------------------------------------------------------------------


def test_a_kh_officer_sees_only_viet_nam_bgc_and_a_reference(api, vn_plate, kh_officer):
    response = _check(api, kh_officer, [{"type": "vehicle", "plate": "51c-12345", "country": "VN"}])
    assert response.status_code == 200, response.content
    body = response.json()
    (result,) = body["results"]
    (hit,) = result["hits"]
    assert body["check_id"] == MatchCheck.objects.get(user=kh_officer).pk
    assert result == {"position": 0, "type": "vehicle", "related": [], "hits": [hit]}
    assert hit == {
        "reference": hit["reference"],
        "agency": {"id": vn_plate.originator_agency_id, "code": "BGC", "name": "Viet Nam Border Guard Command"},
        "country": "VN",
    }
    assert str(vn_plate.pk) not in response.content.decode()
    assert "Meth" not in response.content.decode()


def test_related_items_are_listed_by_id_for_a_reader(api, post, vn_officer, kh_officer):
    item = post(vn_officer, countries=["VN", "KH"], entities=[PLATE], discoverable=True).item
    (result,) = _check(api, kh_officer, [PLATE]).json()["results"]
    assert (result["related"], result["hits"]) == ([str(item.pk)], [])


def test_more_than_50_identifiers_are_refused_naming_the_field(api, vn_plate, kh_officer):
    response = _check(api, kh_officer, [PLATE] * 51)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert "At most 50 identifiers" in body["errors"]["fields"]["identifiers"][0]
    assert not MatchCheck.objects.filter(user=kh_officer).exists()


def test_a_bad_identifier_is_refused_naming_it_and_nothing_is_written(api, vn_plate, kh_officer):
    response = _check(api, kh_officer, [PLATE, {"type": "phone", "number": "nope", "country": "TH"}])
    assert response.status_code == 400
    assert list(response.json()["errors"]["fields"]) == ["identifiers[1].number"]
    assert not MatchCheck.objects.filter(user=kh_officer).exists()
    assert not Hit.objects.exists()
    assert _check(api, kh_officer, []).status_code == 400
    assert api.post(MATCHES, {"identifiers": [PLATE], "extra": 1}, format="json").status_code == 400


def test_over_the_quota_the_answer_is_429_saying_which_quota_and_when_it_resets(settings, api, vn_plate, kh_officer):
    settings.ISN_MATCH_DAILY_PER_PERSON = 2
    assert _check(api, kh_officer, [PLATE, PLATE]).status_code == 200
    response = _check(api, kh_officer, [PLATE])
    assert response.status_code == 429
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "quota_exceeded"
    tomorrow = datetime.combine(timezone.now().astimezone(UTC).date() + timedelta(days=1), datetime.min.time(), UTC)
    assert body["errors"]["quota"] == {
        "scope": "person",
        "limit": 2,
        "used": 2,
        "requested": 1,
        "resets_at": tomorrow.isoformat(),
    }
    assert "daily quota of 2" in body["detail"]
    assert 0 < int(response["Retry-After"]) <= 86400 + 1


def test_those_without_content_may_not_check(api, vn_auditor, outsider):
    for person in (vn_auditor, outsider):
        assert _check(api, person, [PLATE]).status_code == 403
    api.force_authenticate(None)
    assert api.post(MATCHES, {"identifiers": [PLATE]}, format="json").status_code == 401
    assert not MatchCheck.objects.exists()


# --- GET /api/v1/hits/ ----------------------------------------------------------------------------------------------


def test_the_originator_sees_the_hit_with_who_asked_and_the_asker_what_they_received(
    api, vn_plate, vn_officer, kh_officer
):
    (hit,) = _check(api, kh_officer, [PLATE]).json()["results"][0]["hits"]

    api.force_authenticate(vn_officer)
    (on_ours,) = api.get(HITS, {"direction": "on_our_items"}).json()["results"]
    assert on_ours["reference"] == hit["reference"]
    assert on_ours["item"] == str(vn_plate.pk)
    assert on_ours["type"] == "vehicle"
    assert on_ours["asker"] == "kh.officer"
    assert (on_ours["asker_agency"]["code"], on_ours["asker_country"]) == ("ADD", "KH")
    assert api.get(HITS, {"direction": "received"}).json()["results"] == []
    listed = AuditEvent.objects.filter(action="messaging.hit.list", actor_user_id=vn_officer.pk).order_by("id")
    assert [(event.details["direction"], event.details["count"]) for event in listed] == [
        ("on_our_items", 1),
        ("received", 0),
    ]

    api.force_authenticate(kh_officer)
    (received,) = api.get(HITS, {"direction": "received"}).json()["results"]
    assert received["reference"] == hit["reference"]
    assert received["item"] is None
    assert (received["holder_agency"]["code"], received["holder_country"]) == ("BGC", "VN")
    assert api.get(HITS, {"direction": "on_our_items"}).json()["results"] == []


def test_hits_need_a_direction_and_a_member(api, vn_officer, vn_auditor):
    api.force_authenticate(vn_officer)
    assert api.get(HITS).status_code == 400
    assert api.get(HITS, {"direction": "sideways"}).status_code == 400
    api.force_authenticate(vn_auditor)
    assert api.get(HITS, {"direction": "on_our_items"}).status_code == 403


def test_another_agency_of_the_holders_country_does_not_see_its_hits(api, vn_plate, kh_officer, vn_police_officer):
    _check(api, kh_officer, [PLATE])
    api.force_authenticate(vn_police_officer)
    assert api.get(HITS, {"direction": "on_our_items"}).json()["results"] == []


def test_the_hit_list_is_paged(api, vn_plate, vn_officer, kh_officer, django_assert_max_num_queries):
    for _ in range(3):
        _check(api, kh_officer, [PLATE])
    api.force_authenticate(vn_officer)
    with django_assert_max_num_queries(12):
        first = api.get(HITS, {"direction": "on_our_items", "page_size": 2}).json()
    assert len(first["results"]) == 2
    rest = api.get(first["next"]).json()
    assert len(rest["results"]) == 1


def test_the_feed_names_hits_by_reference(api, vn_plate, vn_officer, kh_officer):
    (hit,) = _check(api, kh_officer, [PLATE]).json()["results"][0]["hits"]
    api.force_authenticate(vn_officer)
    changes = api.get("/api/v1/changes/").json()["results"]
    (on_item,) = [change for change in changes if change["kind"] == ChangeKind.HIT_ON_ITEM]
    assert (on_item["item"], on_item["hit_reference"]) == (str(vn_plate.pk), hit["reference"])
    api.force_authenticate(kh_officer)
    changes = api.get("/api/v1/changes/").json()["results"]
    (received,) = [change for change in changes if change["kind"] == ChangeKind.HIT_RECEIVED]
    assert (received["item"], received["hit_reference"]) == (None, hit["reference"])


# --- discoverable in posting, detail and correction -----------------------------------------------------------------


def test_posting_requires_an_explicit_discoverable_choice(api, vn_officer):
    api.force_authenticate(vn_officer)
    payload = api_payload()
    del payload["discoverable"]
    response = api.post("/api/v1/items/", payload, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]["fields"]) == ["discoverable"]
    response = api.post("/api/v1/items/", {**payload, "discoverable": None}, format="json")
    assert response.status_code == 400
    assert not Item.objects.exists()


def test_a_tlp_red_item_cannot_be_posted_or_made_discoverable(api, vn_officer):
    api.force_authenticate(vn_officer)
    response = api.post("/api/v1/items/", api_payload(handling_code="red", discoverable=True), format="json")
    assert response.status_code == 400
    assert "TLP:RED" in response.json()["errors"]["fields"]["discoverable"][0]
    assert not Item.objects.exists()
    red = api.post("/api/v1/items/", api_payload(handling_code="red", discoverable=False), format="json").json()
    assert red["discoverable"] is False
    assert (red["hits_checked"], red["hits_not_checked"], red["hits"]) == (False, "not_discoverable", [])
    response = api.patch(f"/api/v1/items/{red['id']}/", {"discoverable": True}, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]["fields"]) == ["discoverable"]


def test_the_detail_shows_discoverable_and_the_originator_may_change_it(api, post, vn_officer, kh_officer):
    item = post(vn_officer, discoverable=False).item
    api.force_authenticate(vn_officer)
    assert api.get(f"/api/v1/items/{item.pk}/").json()["discoverable"] is False
    assert api.patch(f"/api/v1/items/{item.pk}/", {"discoverable": True}, format="json").status_code == 200
    assert api.get(f"/api/v1/items/{item.pk}/").json()["discoverable"] is True
    api.force_authenticate(kh_officer)
    assert api.patch(f"/api/v1/items/{item.pk}/", {"discoverable": False}, format="json").status_code == 403


def test_posting_a_discoverable_item_returns_its_hits(api, vn_plate, kh_officer):
    api.force_authenticate(kh_officer)
    location = {"type": "location", "name": "Bavet market"}
    payload = api_payload(countries=["KH"], entities=[location, PLATE], discoverable=True)
    response = api.post("/api/v1/items/", payload, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["hits_checked"], body["hits_not_checked"]) == (True, "")
    (result,) = body["hits"]
    assert (result["position"], result["type"], result["related"]) == (1, "vehicle", [])
    (hit,) = result["hits"]
    assert (hit["country"], hit["agency"]["code"]) == ("VN", "BGC")
    assert str(vn_plate.pk) not in response.content.decode()
    assert Change.objects.filter(kind=ChangeKind.HIT_ON_ITEM, item_id=vn_plate.pk).exists()


def test_a_post_over_the_quota_is_stored_and_says_it_was_not_checked(settings, api, vn_plate, kh_officer):
    settings.ISN_MATCH_DAILY_PER_PERSON = 1
    assert _check(api, kh_officer, [PLATE]).status_code == 200
    payload = api_payload(countries=["KH"], entities=[PLATE], discoverable=True)
    response = api.post("/api/v1/items/", payload, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["hits_checked"], body["hits_not_checked"], body["hits"]) == (False, "quota_exceeded", [])
    assert Item.objects.filter(pk=body["id"]).exists()
