"""Argon2 passwords; a new session key at sign-in and after the second factor; idle and absolute timeouts; a
disabled person, membership or agency loses its sessions and keys at the next request."""

from __future__ import annotations

import importlib
import time
from datetime import timedelta

import pytest
from django.contrib.auth.hashers import make_password
from django.utils import timezone
from rest_framework.test import APIClient

from agencies.api_keys import api_key_issue
from agencies.models import ApiKeyScope, Membership
from audit.models import AuditEvent
from isn.sessions import SEEN_KEY, STARTED_KEY
from tests.auth import current_code, sign_in, totp_device

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def test_argon2_hashes_new_passwords_and_pbkdf2_is_kept_for_upgrade():
    configured = importlib.import_module("isn.settings").PASSWORD_HASHERS  # as deployed, before the test override
    assert configured == [
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]


def test_an_old_pbkdf2_password_is_rehashed_with_argon2_at_sign_in(client, settings, vn_officer):
    settings.PASSWORD_HASHERS = importlib.import_module("isn.settings").PASSWORD_HASHERS
    vn_officer.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    vn_officer.save(update_fields=["password"])
    response = client.post("/accounts/login/", {"username": "vn.officer", "password": PASSWORD})
    assert response.status_code == 302
    vn_officer.refresh_from_db()
    assert vn_officer.password.startswith("argon2$argon2id$")


def test_session_key_is_renewed_at_sign_in_and_after_the_second_factor(client, vn_officer):
    device = totp_device(vn_officer)
    client.get("/accounts/login/")
    client.session.save()
    anonymous_key = client.session.session_key
    response = client.post("/accounts/login/", {"username": "vn.officer", "password": PASSWORD})
    assert response["Location"].startswith("/accounts/two-factor/")
    password_only_key = client.session.session_key
    assert password_only_key != anonymous_key
    response = client.post("/accounts/two-factor/", {"code": current_code(device)})
    assert response.status_code == 302
    assert client.session.session_key not in (anonymous_key, password_only_key)
    assert client.get("/").status_code == 200


def _age_session(client, *, started_ago: int, seen_ago: int) -> None:
    session = client.session
    now = int(time.time())
    session[STARTED_KEY] = now - started_ago
    session[SEEN_KEY] = now - seen_ago
    session.save()


@pytest.mark.parametrize(
    ("started_ago", "seen_ago", "reason"),
    [(31 * 60, 31 * 60, "idle_timeout"), (12 * 3600 + 1, 60, "absolute_timeout")],
)
def test_session_ends_after_idle_or_absolute_timeout_and_is_recorded(
    client, vn_officer, bavet, started_ago, seen_ago, reason
):
    sign_in(client, vn_officer)
    _age_session(client, started_ago=started_ago, seen_ago=seen_ago)
    response = client.get("/directory/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    event = AuditEvent.objects.get(action="auth.session_expired")
    assert (event.actor_user_id, event.details) == (vn_officer.pk, {"reason": reason})
    assert client.get("/directory/").status_code == 302  # the session is gone, not just refused once


def test_an_active_session_is_kept_and_its_idle_clock_moves(client, vn_officer, bavet):
    sign_in(client, vn_officer)
    _age_session(client, started_ago=11 * 3600, seen_ago=29 * 60)
    assert client.get("/directory/").status_code == 200
    assert int(time.time()) - client.session[SEEN_KEY] < 5
    assert not AuditEvent.objects.filter(action="auth.session_expired").exists()


def test_timeouts_are_configurable(client, settings, vn_officer, bavet):
    settings.ISN_SESSION_IDLE_SECONDS = 120
    sign_in(client, vn_officer)
    _age_session(client, started_ago=200, seen_ago=130)
    assert client.get("/directory/").status_code == 302


def test_api_session_ends_on_idle_timeout_too(client, vn_officer, bavet):
    sign_in(client, vn_officer)
    assert client.get("/api/v1/offices/").status_code == 200
    _age_session(client, started_ago=40 * 60, seen_ago=40 * 60)
    assert client.get("/api/v1/offices/").status_code == 401


def test_disabled_user_is_refused_at_the_next_request_on_portal_and_api(client, vn_officer, bavet):
    sign_in(client, vn_officer)
    assert client.get("/directory/").status_code == 200
    assert client.get("/api/v1/offices/").status_code == 200
    vn_officer.is_active = False
    vn_officer.save(update_fields=["is_active"])
    assert client.get("/directory/").status_code == 302
    assert client.get("/api/v1/offices/").status_code == 401


@pytest.mark.parametrize("disable", ["membership", "agency"])
def test_disabled_membership_or_agency_ends_the_session(client, vn_officer, bavet, disable):
    sign_in(client, vn_officer)
    assert client.get("/api/v1/offices/").status_code == 200
    membership = Membership.objects.get(user=vn_officer)
    target = membership if disable == "membership" else membership.agency
    target.is_active = False
    target.save(update_fields=["is_active"])
    assert client.get("/api/v1/offices/").status_code == 401
    assert client.get("/").status_code == 302
    event = AuditEvent.objects.get(action="auth.session_expired")
    assert event.details == {"reason": "membership_disabled"}


def test_disabled_agency_loses_its_api_keys_at_the_next_request(vn_admin, bavet):
    issued = api_key_issue(
        actor=vn_admin,
        agency=Membership.objects.get(user=vn_admin).agency,
        name="case system",
        scopes=[ApiKeyScope.READ],
        expires_at=timezone.now() + timedelta(days=30),
    )
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {issued.plaintext}")
    assert api.get("/api/v1/offices/").status_code == 200
    agency = issued.key.agency
    agency.is_active = False
    agency.save(update_fields=["is_active"])
    assert api.get("/api/v1/offices/").status_code == 401
