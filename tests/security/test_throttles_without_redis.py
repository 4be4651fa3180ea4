"""While the cache (Redis) cannot be reached, the API throttles count per process at the same rates instead of failing
the request; the RateLimit headers keep telling where the caller stands, one WARNING marks entering and leaving that
mode, and /healthz reports it (issue 17, point 0). The outage with a real worker is in
tests/messaging/delivery/test_redis_outage.py."""

from __future__ import annotations

import copy
import logging
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.settings import api_settings
from rest_framework.test import APIClient

from agencies.api_keys import api_key_issue
from agencies.models import ApiKeyScope, Membership
from isn.throttling import throttle_cache

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttle_cache():
    throttle_cache.reset()
    yield
    throttle_cache.reset()


@pytest.fixture
def low_rates(monkeypatch):
    rates = api_settings.DEFAULT_THROTTLE_RATES
    for scope in ("api_key", "person", "anonymous"):
        monkeypatch.setitem(rates, scope, "3/minute")


@pytest.fixture
def redis_away(settings):
    """The cache pointed at a Redis that is not there (nothing listens on port 1): every call is refused."""
    reachable = settings.CACHES
    away = copy.deepcopy(reachable)
    away["default"] |= {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
    settings.CACHES = away

    def come_back() -> None:
        settings.CACHES = reachable

    return come_back


def _key_client(admin) -> APIClient:
    plaintext = api_key_issue(
        actor=admin,
        agency=Membership.objects.get(user=admin).agency,
        name="case system",
        scopes=[ApiKeyScope.READ],
        expires_at=timezone.now() + timedelta(days=30),
    ).plaintext
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {plaintext}")
    return api


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "isn.throttling" and r.levelno == logging.WARNING]


def test_throttles_count_per_process_while_the_cache_is_away(low_rates, redis_away, vn_admin, client, caplog):
    api = _key_client(vn_admin)
    with caplog.at_level(logging.WARNING, logger="isn.throttling"):
        answers = [api.get("/api/v1/offices/") for _ in range(4)]
        assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
        assert answers[0]["RateLimit-Policy"] == '"api_key";q=3;w=60'
        assert [answer["RateLimit"].split(";")[1] for answer in answers] == ["r=2", "r=1", "r=0", "r=0"]
        anonymous = [APIClient().get("/api/v1/offices/").status_code for _ in range(4)]
        assert anonymous == [401, 401, 401, 429]

        health = client.get("/healthz")
        assert health.status_code == 200  # the broker is reachable here: throttling alone fails nothing
        assert health.json()["throttling"] == "per-process (cache unreachable)"
        assert _warnings(caplog) == [
            "throttling: the shared cache is unreachable (ConnectionError); counting per process"
        ]

        redis_away()  # Redis answers again
        assert client.get("/healthz").json()["throttling"] == "shared"
        assert api.get("/api/v1/offices/").status_code == 200  # the shared counter never saw the outage's requests
    assert _warnings(caplog)[1:] == ["throttling: the shared cache is reachable again; counting in it"]


def test_healthz_says_the_throttles_count_in_the_shared_cache(client):
    assert client.get("/healthz").json()["throttling"] == "shared"
