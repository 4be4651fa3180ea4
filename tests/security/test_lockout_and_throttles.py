"""Five failed sign-ins lock a username for fifteen minutes, wherever they come from and whatever X-Forwarded-For
says; the API throttles per key, per person and per address."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import RequestFactory
from django.utils import timezone
from rest_framework.settings import api_settings
from rest_framework.test import APIClient

from agencies.api_keys import api_key_issue
from agencies.models import ApiKeyScope, Membership
from isn.net import client_ip

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def _sign_in(client, password: str, **headers: str):
    return client.post("/accounts/login/", {"username": "vn.officer", "password": password}, **headers)


def _fail_five_times(client, *, forged: bool = False) -> None:
    statuses = []
    for attempt in range(5):
        headers = {"HTTP_X_FORWARDED_FOR": f"203.0.113.{attempt}"} if forged else {}
        statuses.append(_sign_in(client, f"wrong password {attempt}", **headers).status_code)
    assert statuses == [200, 200, 200, 200, 429]  # the fifth failure locks


def test_five_failures_lock_the_username_even_for_the_right_password(client, vn_officer):
    _fail_five_times(client)
    locked = _sign_in(client, PASSWORD)
    assert locked.status_code == 429
    assert b"Too many failed sign-ins" in locked.content
    assert "_auth_user_id" not in client.session


def test_the_lock_holds_from_another_address_and_lifts_after_fifteen_minutes(client, vn_officer):
    _fail_five_times(client)
    assert _sign_in(client, PASSWORD, REMOTE_ADDR="198.51.100.7").status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=14))
    assert _sign_in(client, PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert _sign_in(client, PASSWORD).status_code == 302


def test_forged_forwarded_for_neither_dodges_nor_resets_the_lock(client, vn_officer):
    _fail_five_times(client, forged=True)
    assert _sign_in(client, PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"127.0.0.1"}


def test_four_failures_then_success_resets_the_count(client, vn_officer):
    for attempt in range(4):
        _sign_in(client, f"wrong {attempt}")
    assert _sign_in(client, PASSWORD).status_code == 302
    client.post("/accounts/logout/")
    for attempt in range(4):
        _sign_in(client, f"wrong again {attempt}")
    assert _sign_in(client, PASSWORD).status_code == 302


def test_client_address_believes_forwarded_for_only_from_configured_proxies(settings):
    factory = RequestFactory()
    forged = factory.get("/", REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR="10.0.0.1")
    assert client_ip(forged) == "198.51.100.1"
    settings.ISN_TRUSTED_PROXIES = ["10.0.0.2", "10.0.0.3"]
    via_proxies = factory.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.5, 10.0.0.3")
    assert client_ip(via_proxies) == "203.0.113.5"  # the left-most entry is whatever the caller wrote
    garbage = factory.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="not-an-address")
    assert client_ip(garbage) == "10.0.0.2"
    assert client_ip(factory.get("/", REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR="1.2.3.4")) == "198.51.100.1"


@pytest.fixture
def low_rates(monkeypatch):
    rates = api_settings.DEFAULT_THROTTLE_RATES
    for scope in ("api_key", "person", "anonymous"):
        monkeypatch.setitem(rates, scope, "3/minute")


def _key(admin, name: str) -> str:
    return api_key_issue(
        actor=admin,
        agency=Membership.objects.get(user=admin).agency,
        name=name,
        scopes=[ApiKeyScope.READ],
        expires_at=timezone.now() + timedelta(days=30),
    ).plaintext


def test_api_throttles_each_key_on_its_own(low_rates, vn_admin, bavet):
    first, second = APIClient(), APIClient()
    first.credentials(HTTP_AUTHORIZATION=f"Api-Key {_key(vn_admin, 'one')}")
    second.credentials(HTTP_AUTHORIZATION=f"Api-Key {_key(vn_admin, 'two')}")
    assert [first.get("/api/v1/offices/").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert second.get("/api/v1/offices/").status_code == 200
    # A forged address is no way around a key's limit.
    assert first.get("/api/v1/offices/", HTTP_X_FORWARDED_FOR="192.0.2.1").status_code == 429


def test_api_throttles_anonymous_callers_per_address(low_rates, db):
    api = APIClient()
    statuses = [api.get("/api/v1/offices/", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").status_code for n in range(4)]
    assert statuses == [401, 401, 401, 429]
    assert APIClient(REMOTE_ADDR="198.51.100.9").get("/api/v1/offices/").status_code == 401


def test_refused_keys_are_throttled_per_address(low_rates, db):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Api-Key isn_nosuchkey_guess")
    assert [api.get("/api/v1/offices/").status_code for _ in range(4)] == [401, 401, 401, 429]


def test_api_throttles_each_signed_in_person(low_rates, client, vn_officer, bavet):
    from tests.auth import sign_in

    sign_in(client, vn_officer)
    assert [client.get("/api/v1/offices/").status_code for _ in range(4)] == [200, 200, 200, 429]
