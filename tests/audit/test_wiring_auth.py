"""Sign-ins, failed sign-ins, sign-outs and password changes are audit events."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent, Outcome
from tests.auth import sign_in

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def test_successful_sign_in_is_recorded(client, vn_officer):
    response = client.post("/accounts/login/", {"username": "vn.officer", "password": PASSWORD})
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="auth.login")
    assert (event.actor_user_id, event.actor_label, event.outcome) == (vn_officer.pk, "vn.officer", Outcome.OK)
    assert (event.actor_country, event.target_country) == ("VN", "VN")
    assert event.ip_address == "127.0.0.1"
    assert event.request_id


def test_failed_sign_in_records_the_username_tried_never_the_password(client, vn_officer):
    response = client.post("/accounts/login/", {"username": "vn.officer", "password": "wrong-password-123"})
    assert response.status_code == 200
    event = AuditEvent.objects.get(action="auth.login_failed")
    assert (event.actor_user_id, event.actor_label, event.outcome) == (None, "vn.officer", Outcome.DENIED)
    # The account tried is the target, so Viet Nam's auditor sees attacks on Viet Nam's people.
    assert (event.target_type, event.target_id, event.target_country) == ("auth.user", str(vn_officer.pk), "VN")
    stored = str(AuditEvent.objects.filter(pk=event.pk).values().get())
    assert "wrong-password-123" not in stored
    assert not AuditEvent.objects.filter(action="auth.login").exists()


def test_failed_sign_in_with_an_unknown_username_is_neutralised(client, db):
    client.post("/accounts/login/", {"username": "eve\r\nINFO admin logged in", "password": "x" * 12})
    event = AuditEvent.objects.get(action="auth.login_failed")
    assert event.actor_label == "eve  INFO admin logged in"
    assert (event.target_id, event.target_country) == ("", "")


def test_sign_out_is_recorded(client, kh_officer):
    sign_in(client, kh_officer)
    assert client.post("/accounts/logout/").status_code == 302
    event = AuditEvent.objects.get(action="auth.logout")
    assert (event.actor_user_id, event.actor_country) == (kh_officer.pk, "KH")


def test_password_change_is_recorded(client, vn_officer):
    sign_in(client, vn_officer)
    new_password = "a brand new passphrase 42"
    response = client.post(
        "/accounts/password/",
        {"old_password": PASSWORD, "new_password1": new_password, "new_password2": new_password},
    )
    assert response.status_code == 302
    vn_officer.refresh_from_db()
    assert vn_officer.check_password(new_password)
    event = AuditEvent.objects.get(action="auth.password_change")
    assert (event.actor_user_id, event.target_id, event.outcome) == (vn_officer.pk, str(vn_officer.pk), Outcome.OK)
    assert new_password not in str(event.details)


def test_refused_password_change_records_nothing(client, vn_officer):
    sign_in(client, vn_officer)
    response = client.post(
        "/accounts/password/", {"old_password": "not it", "new_password1": "x", "new_password2": "x"}
    )
    assert response.status_code == 200
    assert not AuditEvent.objects.filter(action="auth.password_change").exists()


def test_password_change_page_needs_sign_in(client, db):
    response = client.get("/accounts/password/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
