"""Every error under /api/ is problem details (RFC 9457) in application/problem+json, whoever answers it: a service,
DRF, or Django itself (an unknown route, a server error). Never an HTML page."""

from __future__ import annotations

import json

import pytest
from rest_framework.settings import api_settings
from rest_framework.test import APIClient

from isn.problems import PROBLEM_CONTENT_TYPE

pytestmark = pytest.mark.django_db

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


def _problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    body = json.loads(response.content)
    assert set(body) >= PROBLEM_KEYS
    assert (body["type"], body["status"], body["code"]) == ("about:blank", status, code)
    assert body["title"]
    return body


def test_unknown_route_under_api_is_a_problem_not_a_page(api):
    body = _problem(api.get("/api/v1/no-such-thing/"), 404, "not_found")
    assert body["title"] == "Not Found"
    _problem(api.get("/api/nothing-here"), 404, "not_found")


def test_pages_outside_the_api_keep_their_html_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_refusals_are_problems(api, vn_officer):
    body = _problem(api.get("/api/v1/items/"), 401, "not_authenticated")
    assert body["detail"]
    api.force_authenticate(vn_officer)
    _problem(api.delete("/api/v1/items/"), 405, "method_not_allowed")
    _problem(
        api.post("/api/v1/items/", "title=x", content_type="application/x-www-form-urlencoded"),
        415,
        "unsupported_media_type",
    )
    _problem(api.get("/api/v1/items/", HTTP_ACCEPT="application/xml"), 406, "not_acceptable")


def test_bad_input_names_each_field(api, vn_officer):
    api.force_authenticate(vn_officer)
    body = _problem(api.post("/api/v1/items/", {"title": ""}, format="json"), 400, "invalid")
    assert "title" in body["errors"]["fields"]
    filtered = _problem(api.get("/api/v1/items/?priority=urgent-ish"), 400, "invalid")
    assert "priority" in filtered["errors"]["fields"]


def test_problem_json_is_acceptable(api, vn_officer):
    api.force_authenticate(vn_officer)
    ok = api.get("/api/v1/items/", HTTP_ACCEPT=PROBLEM_CONTENT_TYPE)
    assert ok.status_code == 200
    assert ok["Content-Type"] == "application/json"
    _problem(api.get("/api/v1/items/not-an-id/", HTTP_ACCEPT=PROBLEM_CONTENT_TYPE), 404, "not_found")
    _problem(api.get("/api/v1/items/not-an-id/", HTTP_ACCEPT="application/json"), 404, "not_found")


def test_throttled_callers_get_a_problem_with_retry_after(monkeypatch, db):
    monkeypatch.setitem(api_settings.DEFAULT_THROTTLE_RATES, "anonymous", "1/minute")
    api = APIClient()
    api.get("/api/v1/offices/")
    throttled = api.get("/api/v1/offices/")
    _problem(throttled, 429, "throttled")
    assert int(throttled["Retry-After"]) > 0


def test_a_server_error_under_api_is_a_problem_without_the_cause(api, vn_officer, monkeypatch):
    from messaging.api import items

    def broken(*args, **kwargs):
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(items, "item_list", broken)
    api.force_authenticate(vn_officer)
    api.raise_request_exception = False
    response = api.get("/api/v1/items/")
    body = _problem(response, 500, "server_error")
    assert "hunter2" not in response.content.decode()
    assert body["title"] == "Internal Server Error"
    assert response["X-Request-ID"]


def test_a_hidden_item_answers_exactly_like_a_missing_one(api, post, vn_officer, la_officer):
    hidden = post(vn_officer, countries=["VN"]).item
    api.force_authenticate(la_officer)
    seen = api.get(f"/api/v1/items/{hidden.pk}/")
    missing = api.get("/api/v1/items/00000000-0000-0000-0000-000000000000/")
    _problem(seen, 404, "not_found")
    assert seen.content == missing.content
    assert seen["Content-Type"] == missing["Content-Type"]
