"""Hostile and careless input to the API: bodies nested past any sensible depth, numbers past the database's range,
moments with no UTC date, bodies too large, and fields the API does not take. Each is refused with a 4xx problem (400,
or 413 for a body too large) naming what was wrong, and nothing is written."""

from __future__ import annotations

import json

import pytest

from agencies.keyring import forget_cached_keys
from audit.models import AuditEvent
from isn.problems import PROBLEM_CONTENT_TYPE
from messaging.items.lifecycle import item_create
from messaging.models import ConsentRequest, Item, Rfi, Subscription
from tests.messaging.conftest import api_payload, item_fields

pytestmark = pytest.mark.django_db

DEPTH = 1200
HUGE = 2**70


@pytest.fixture(autouse=True)
def _no_cached_keys():
    forget_cached_keys()
    yield
    forget_cached_keys()


def nested_object(depth: int = DEPTH) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def nested_list(depth: int = DEPTH) -> str:
    return "[" * depth + "1" + "]" * depth


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    body = json.loads(response.content)
    assert (body["type"], body["status"]) == ("about:blank", status)
    return body


def _fields(response) -> dict:
    body = _problem(response, 400)
    assert body["code"] == "invalid", body
    return body["errors"]["fields"]


def _rows() -> tuple[int, ...]:
    return (Item.objects.count(), Rfi.objects.count(), ConsentRequest.objects.count(), Subscription.objects.count())


@pytest.fixture
def item(vn_officer):
    return item_create(actor=vn_officer, **item_fields()).item


# --- 10. bad input: nesting, range, moments, size ------------------------------------------------------------------


def _writes(item) -> list[tuple[str, str]]:
    return [
        ("post", "/api/v1/items/"),
        ("patch", f"/api/v1/items/{item.pk}/"),
        ("post", "/api/v1/rfis/"),
        ("post", "/api/v1/consents/"),
    ]


@pytest.mark.parametrize("shape", [nested_object, nested_list], ids=["objects", "lists"])
def test_deeply_nested_json_is_bad_input_and_writes_nothing(api, vn_officer, item, shape):
    api.force_authenticate(vn_officer)
    before, stamp = _rows(), (item.updated_at, item.content_version)
    for method, path in _writes(item):
        for body in (shape(), '{"title": ' + shape() + "}"):
            response = getattr(api, method)(path, body, content_type="application/json")
            assert _problem(response, 400)["code"] == "parse_error", (method, path)
    assert _rows() == before
    item.refresh_from_db()
    assert (item.updated_at, item.content_version) == stamp


def test_json_nested_a_little_is_still_judged_field_by_field(api, vn_officer):
    api.force_authenticate(vn_officer)
    response = api.post("/api/v1/items/", '{"title": ' + nested_list(20) + "}", content_type="application/json")
    assert "title" in _fields(response)


def test_an_agency_id_past_the_database_range_is_bad_input(api, vn_officer, item):
    api.force_authenticate(vn_officer)
    before = _rows()
    created = api.post("/api/v1/items/", api_payload(agencies=[HUGE]), format="json")
    assert "agencies" in _fields(created)
    changed = api.patch(f"/api/v1/items/{item.pk}/", {"agencies": [HUGE]}, format="json")
    assert "agencies" in _fields(changed)
    assert _rows() == before


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/rfis/", {"target_agency": HUGE, "subject": "s", "question": "q"}, "target_agency"),
        ("/api/v1/consents/", {"item": "", "target_country": "TH", "target_agency": HUGE}, "target_agency"),
        ("/api/v1/subscriptions/", {"category": "meth_pills", "office": HUGE}, "office"),
    ],
)
def test_other_ids_past_the_database_range_are_bad_input(api, vn_officer, path, body, field):
    api.force_authenticate(vn_officer)
    before = _rows()
    assert field in _fields(api.post(path, body, format="json"))
    assert _rows() == before


@pytest.mark.parametrize("actor", [str(HUGE), "²", "-1"])
def test_audit_actor_filter_past_the_database_range_is_bad_input_or_nobody(api, vn_auditor, actor):
    api.force_authenticate(vn_auditor)
    response = api.get("/api/v1/audit/events/", {"actor": actor})
    if actor == str(HUGE):
        assert "actor" in _fields(response)
    else:  # not an id: a label nobody has
        assert response.status_code == 200
        assert response.json()["results"] == []


def test_office_directory_agency_filter_past_the_database_range_is_bad_input(api, vn_officer):
    api.force_authenticate(vn_officer)
    assert "agency" in _fields(api.get("/api/v1/offices/", {"agency": str(HUGE)}))


def test_audit_agency_filter_past_the_database_range_is_bad_input(api, vn_auditor):
    api.force_authenticate(vn_auditor)
    assert "agency" in _fields(api.get("/api/v1/audit/events/", {"agency": str(HUGE)}))


def test_audit_timeline_of_an_id_past_the_database_range_is_bad_input(api, vn_auditor):
    api.force_authenticate(vn_auditor)
    assert "user_id" in _fields(api.get(f"/api/v1/audit/actors/{HUGE}/timeline/"))


@pytest.mark.parametrize("path", ["/api/v1/audit/flags/", "/api/v1/audit/events/", "/api/v1/audit/events/export/"])
@pytest.mark.parametrize(
    ("name", "moment"), [("until", "0001-01-01T00:00:00Z"), ("since", "0001-01-01T00:00:00+14:00")]
)
def test_audit_moment_with_no_utc_date_is_bad_input(api, vn_auditor, path, name, moment):
    api.force_authenticate(vn_auditor)
    assert name in _fields(api.get(path, {name: moment}))


def test_audit_moments_with_any_offset_are_read_as_utc(api, vn_auditor):
    api.force_authenticate(vn_auditor)
    period = {"since": "2026-01-01T07:00:00+07:00", "until": "2100-01-01T00:00:00-05:00"}
    response = api.get("/api/v1/audit/flags/", period)
    assert response.status_code == 200, response.content


def test_body_too_large_is_413_and_writes_nothing(api, vn_officer, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    api.force_authenticate(vn_officer)
    before = _rows()
    body = json.dumps(api_payload(body="x" * 20_000))
    response = api.post("/api/v1/items/", body, content_type="application/json")
    assert _problem(response, 413)["code"] == "too_large"
    assert _rows() == before


# --- 11. fields the API does not take ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("originator_agency", 1), ("status", "withdrawn"), ("created_at", "2020-01-01T00:00:00Z"), ("surplus", None)],
)
def test_posting_an_item_with_a_field_it_does_not_take_is_refused(api, vn_officer, field, value):
    api.force_authenticate(vn_officer)
    before, events = _rows(), AuditEvent.objects.filter(action="messaging.item.create").count()
    fields = _fields(api.post("/api/v1/items/", {**api_payload(), field: value}, format="json"))
    assert list(fields) == [field]
    assert _rows() == before
    assert AuditEvent.objects.filter(action="messaging.item.create").count() == events


def test_an_item_may_still_come_with_the_id_its_system_chose(api, vn_officer):
    api.force_authenticate(vn_officer)
    chosen = "3f0a5e0c-7d5e-4a8e-9d3c-1b2a3c4d5e6f"
    response = api.post("/api/v1/items/", {**api_payload(), "id": chosen}, format="json")
    assert response.status_code == 201, response.content
    assert str(Item.objects.get().pk) == chosen


def test_changing_an_items_handling_code_is_refused_and_changes_nothing(api, vn_officer, item):
    api.force_authenticate(vn_officer)
    before = (item.handling_code, item.updated_at, item.content_version)
    fields = _fields(api.patch(f"/api/v1/items/{item.pk}/", {"handling_code": "red"}, format="json"))
    assert list(fields) == ["handling_code"]
    item.refresh_from_db()
    assert (item.handling_code, item.updated_at, item.content_version) == before


def test_unknown_fields_are_named_with_the_other_problems(api, vn_officer):
    api.force_authenticate(vn_officer)
    fields = _fields(api.post("/api/v1/items/", {"surplus": 1, "title": ""}, format="json"))
    assert {"surplus", "title", "body"} <= set(fields)


def test_a_body_that_is_not_an_object_is_bad_input(api, vn_officer, item):
    api.force_authenticate(vn_officer)
    before = _rows()
    for body in ("[1, 2]", '"text"', "17"):
        assert _problem(api.post("/api/v1/items/", body, content_type="application/json"), 400)["code"] == "invalid"
        patched = api.patch(f"/api/v1/items/{item.pk}/", body, content_type="application/json")
        assert _problem(patched, 400)["code"] == "invalid"
    assert _rows() == before


def test_an_action_that_takes_no_body_refuses_one_and_changes_nothing(api, vn_officer, kh_officer, item):
    """Withdrawing takes no body: a client sending a reason must not believe it was kept. Refused before the item is
    looked up, so a hidden item answers exactly like its own."""
    api.force_authenticate(vn_officer)
    withdrawn = api.post(f"/api/v1/items/{item.pk}/withdraw/", {"reason": "Source burned"}, format="json")
    assert list(_fields(withdrawn)) == ["reason"]
    item.refresh_from_db()
    assert item.status == "active"
    assert not AuditEvent.objects.filter(action="messaging.item.withdraw").exists()

    api.force_authenticate(kh_officer)
    hidden = api.post(f"/api/v1/items/{item.pk}/withdraw/", {"reason": "x"}, format="json")
    absent = api.post("/api/v1/items/00000000-0000-4000-8000-000000000000/withdraw/", {"reason": "x"}, format="json")
    assert hidden.status_code == absent.status_code == 400
    assert hidden.json() == absent.json()

    api.force_authenticate(vn_officer)
    assert api.post(f"/api/v1/items/{item.pk}/withdraw/", {}, format="json").status_code == 200
    assert api.post("/api/v1/notifications/1/read/", "[1]", content_type="application/json").status_code == 400
