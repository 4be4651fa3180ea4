"""Every answer under /api/ tells its caller where it stands against its rate (draft-ietf-httpapi-ratelimit-headers-11):
``RateLimit-Policy: "<policy>";q=<quota>;w=<window>`` and ``RateLimit: "<policy>";r=<left>;t=<seconds>``, for the
policy that counts the caller: per API key, per signed-in person, per address for anyone else."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.settings import api_settings
from rest_framework.test import APIClient

from agencies.api_keys import api_key_issue
from agencies.models import ApiKeyScope, Membership
from tests.auth import sign_in

pytestmark = pytest.mark.django_db

_ITEM = re.compile(r'^"(?P<policy>[a-z_]+)";(?P<params>[a-z]+=\d+(?:;[a-z]+=\d+)*)$')


def _parse(value: str) -> dict[str, dict[str, int]]:
    """A structured-field list of policies with integer parameters, as the draft writes them."""
    parsed = {}
    for item in value.split(", "):
        match = _ITEM.match(item)
        assert match, value
        params = dict(param.split("=") for param in match["params"].split(";"))
        parsed[match["policy"]] = {name: int(number) for name, number in params.items()}
    return parsed


def _limits(response) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    assert "RateLimit-Policy" in response, (response.status_code, dict(response.items()))
    return _parse(response["RateLimit-Policy"]), _parse(response["RateLimit"])


@pytest.fixture
def rates(monkeypatch):
    rates = api_settings.DEFAULT_THROTTLE_RATES
    for scope, rate in (("api_key", "5/minute"), ("person", "4/minute"), ("anonymous", "3/minute")):
        monkeypatch.setitem(rates, scope, rate)


def _key_client(admin, *scopes: str) -> APIClient:
    plaintext = api_key_issue(
        actor=admin,
        agency=Membership.objects.get(user=admin).agency,
        name="case system",
        scopes=list(scopes) or [ApiKeyScope.READ],
        expires_at=timezone.now() + timedelta(days=30),
    ).plaintext
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {plaintext}")
    return api


def test_a_keys_list_answer_states_its_policy_and_what_is_left(rates, vn_admin, bavet):
    api = _key_client(vn_admin)
    first = api.get("/api/v1/offices/")
    second = api.get("/api/v1/offices/")
    assert first.status_code == second.status_code == 200
    policy, limit = _limits(first)
    assert policy == {"api_key": {"q": 5, "w": 60}}
    assert limit["api_key"]["r"] == 4
    assert 0 < limit["api_key"]["t"] <= 60
    assert _limits(second)[1]["api_key"]["r"] == 3


def test_a_persons_session_call_states_the_persons_policy(rates, client, vn_officer, bavet):
    sign_in(client, vn_officer)
    policy, limit = _limits(client.get("/api/v1/offices/"))
    assert policy == {"person": {"q": 4, "w": 60}}
    assert limit["person"]["r"] == 3
    assert _limits(client.get("/api/v1/offices/"))[1]["person"]["r"] == 2


def test_an_unknown_route_is_counted_and_states_the_callers_policy(rates, vn_admin, bavet):
    api = _key_client(vn_admin)
    response = api.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert _limits(response) == ({"api_key": {"q": 5, "w": 60}}, {"api_key": {"r": 4, "t": 60}})
    anonymous = APIClient().post("/api/v2/", {}, format="json")
    assert anonymous.status_code == 404
    assert _limits(anonymous)[0] == {"anonymous": {"q": 3, "w": 60}}


def test_an_unknown_route_missing_only_its_slash_is_redirected(vn_admin, bavet):
    response = _key_client(vn_admin).get("/api/v1/offices?search=Bavet")
    assert response.status_code == 301
    assert response["Location"] == "/api/v1/offices/?search=Bavet"


def test_too_many_requests_leave_nothing_and_agree_with_retry_after(rates, vn_admin, bavet):
    api = _key_client(vn_admin)
    for _ in range(5):
        assert api.get("/api/v1/offices/").status_code == 200
    refused = api.get("/api/v1/offices/")
    assert refused.status_code == 429
    policy, limit = _limits(refused)
    assert policy == {"api_key": {"q": 5, "w": 60}}
    assert limit["api_key"]["r"] == 0
    assert limit["api_key"]["t"] == int(refused["Retry-After"]) > 0


def test_anonymous_and_refused_key_answers_state_the_address_policies(rates, db):
    anonymous = APIClient().get("/api/v1/offices/")
    assert anonymous.status_code == 401
    assert _limits(anonymous) == ({"anonymous": {"q": 3, "w": 60}}, {"anonymous": {"r": 2, "t": 60}})
    guess = APIClient()
    guess.credentials(HTTP_AUTHORIZATION="Api-Key isn_nosuchkey_guess")
    refused = guess.get("/api/v1/offices/")
    assert refused.status_code == 401
    assert _limits(refused) == ({"refused_key": {"q": 3, "w": 60}}, {"refused_key": {"r": 2, "t": 60}})


def test_an_answer_refused_before_the_throttles_states_the_counter_without_counting(rates, vn_admin, bavet):
    api = _key_client(vn_admin)  # read scope only: the audit API refuses it before DRF's throttles run
    assert _limits(api.get("/api/v1/offices/"))[1]["api_key"]["r"] == 4
    forbidden = api.get("/api/v1/audit/events/")
    assert forbidden.status_code == 403
    assert _limits(forbidden)[1]["api_key"]["r"] == 4
    unacceptable = api.get("/api/v1/offices/", HTTP_ACCEPT="text/csv")
    assert unacceptable.status_code == 406
    assert _limits(unacceptable)[1]["api_key"]["r"] == 4
    assert _limits(api.get("/api/v1/offices/"))[1]["api_key"]["r"] == 3


def test_pages_outside_the_api_carry_no_ratelimit_headers(client, db):
    assert "RateLimit" not in client.get("/accounts/login/")
