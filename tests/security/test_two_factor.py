"""Two factors for every person: enrolment at first sign-in, codes that cannot be replayed, one-time recovery codes,
and nothing but the second-factor pages for a password-only session, in the portal and the API alike."""

from __future__ import annotations

import re

import pytest
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from audit.models import AuditEvent
from tests.auth import current_code, sign_in, totp_device

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def _password_step(client, username: str = "vn.officer", next_url: str = ""):
    return client.post(f"/accounts/login/{next_url}", {"username": username, "password": PASSWORD})


def test_first_sign_in_enrols_an_authenticator_and_shows_recovery_codes_once(client, vn_officer, bavet):
    response = _password_step(client, next_url="?next=/directory/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/two-factor/enrol/?next=%2Fdirectory%2F"
    page = client.get(response["Location"])
    assert page.status_code == 200
    body = page.content.decode()
    assert 'src="data:image/svg+xml' in body  # the QR code is made here, never by a third-party service
    device = TOTPDevice.objects.get(user=vn_officer, confirmed=False)
    secret = re.search(r"<code>([A-Z2-7 ]+)</code>", body).group(1)
    assert len(secret.replace(" ", "")) >= 32
    assert client.get("/directory/").status_code == 302  # not yet verified

    wrong = client.post("/accounts/two-factor/enrol/?next=/directory/", {"code": "000000", "next": "/directory/"})
    assert wrong.status_code == 200
    device.refresh_from_db()
    device.throttle_reset()  # a failure makes the next try wait a second (django-otp's throttle): not a test of it
    done = client.post("/accounts/two-factor/enrol/", {"code": current_code(device), "next": "/directory/"})
    assert done.status_code == 200
    codes = re.findall(r"<code>([a-z0-9]+)</code>", done.content.decode())
    assert len(codes) == 10
    assert set(StaticToken.objects.filter(device__user=vn_officer).values_list("token", flat=True)) == set(codes)
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/directory/").status_code == 200
    assert AuditEvent.objects.filter(action="auth.second_factor_enrol", actor_user_id=vn_officer.pk).count() == 1
    # Enrolled: the enrolment page no longer offers a new secret.
    assert client.get("/accounts/two-factor/enrol/").status_code == 302


def test_sign_in_asks_for_the_code_and_a_used_code_cannot_be_replayed(client, vn_officer, bavet):
    device = totp_device(vn_officer)
    assert _password_step(client)["Location"].startswith("/accounts/two-factor/?next=")
    code = current_code(device)
    assert client.post("/accounts/two-factor/", {"code": code}).status_code == 302
    assert client.get("/directory/").status_code == 200
    assert AuditEvent.objects.filter(action="auth.second_factor", actor_user_id=vn_officer.pk).count() == 1

    client.post("/accounts/logout/")
    _password_step(client)
    replay = client.post("/accounts/two-factor/", {"code": code})
    assert replay.status_code == 200
    assert b"not accepted" in replay.content
    assert client.get("/directory/").status_code == 302
    failed = AuditEvent.objects.get(action="auth.second_factor_failed")
    assert (failed.actor_user_id, failed.outcome) == (vn_officer.pk, "denied")


def test_a_recovery_code_signs_in_once(client, vn_officer, bavet):
    totp_device(vn_officer)
    from isn.twofactor import _recovery_codes

    code = _recovery_codes(vn_officer)[0]
    _password_step(client)
    assert client.post("/accounts/two-factor/", {"code": code}).status_code == 302
    assert client.get("/directory/").status_code == 200
    assert not StaticToken.objects.filter(token=code).exists()
    client.post("/accounts/logout/")
    _password_step(client)
    assert client.post("/accounts/two-factor/", {"code": code}).status_code == 200
    assert client.get("/directory/").status_code == 302


@pytest.mark.parametrize(
    "path", ["/", "/directory/", "/audit/", "/accounts/password/", "/admin/", "/admin/agencies/office/"]
)
def test_a_password_only_session_reaches_no_page(client, vn_auditor, path):
    totp_device(vn_auditor)
    _password_step(client, username="vn.auditor")
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/two-factor/?next=")


def test_a_password_only_session_is_anonymous_to_the_api(client, vn_officer, bavet):
    totp_device(vn_officer)
    _password_step(client)
    assert client.get("/api/v1/offices/").status_code == 401
    assert client.get("/api/v1/items/").status_code == 401


def test_api_keys_need_no_second_factor(vn_admin, bavet, client):
    sign_in(client, vn_admin)
    issued = client.post(
        "/api/v1/api-keys/",
        {"name": "case system", "scopes": ["read"], "expires_at": "2099-01-01T00:00:00Z"},
        content_type="application/json",
    )
    assert issued.status_code == 400  # more than 397 days away
    issued = client.post(
        "/api/v1/api-keys/",
        {"name": "case system", "scopes": ["read"], "expires_at": _in_days(30)},
        content_type="application/json",
    )
    assert issued.status_code == 201, issued.content
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {issued.json()['key']}")
    assert api.get("/api/v1/offices/").status_code == 200


def _in_days(days: int) -> str:
    from datetime import timedelta

    from django.utils import timezone

    return (timezone.now() + timedelta(days=days)).isoformat()


def test_admin_sign_in_goes_through_both_factors(client):
    assert client.get("/admin/login/?next=/admin/")["Location"] == "/accounts/login/?next=/admin/"


def test_next_cannot_send_a_verified_person_elsewhere(client, vn_officer, bavet):
    device = totp_device(vn_officer)
    _password_step(client)
    response = client.post("/accounts/two-factor/", {"code": current_code(device), "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_a_failed_code_at_enrolment_is_recorded_without_the_code(client, vn_officer, bavet):
    _password_step(client)
    client.get("/accounts/two-factor/enrol/")
    wrong = client.post("/accounts/two-factor/enrol/", {"code": "012345"})
    assert wrong.status_code == 200
    event = AuditEvent.objects.get(action="auth.second_factor_enrol_failed")
    assert (event.actor_user_id, event.outcome) == (vn_officer.pk, "denied")
    assert "012345" not in str(event.details)
    assert not TOTPDevice.objects.filter(user=vn_officer, confirmed=True).exists()
