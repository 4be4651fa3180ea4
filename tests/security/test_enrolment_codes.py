"""A person's first second factor needs a one-time enrolment code from their agency admin (production's default,
``ISN_ENROLMENT_CODE_REQUIRED``): a stolen password alone enrols nothing. The code is shown once, stored as a hash,
expires, and is used once; its issue, use and every failed try are recorded."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from agencies.enrolment import enrolment_code_issue
from agencies.models import Role
from audit.models import AuditEvent
from isn.errors import NotFound, PermissionDenied
from isn.models import EnrolmentCode
from tests.auth import current_code
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
ENROL = "/accounts/two-factor/enrol/"


@pytest.fixture(autouse=True)
def _codes_required(settings):
    settings.ISN_ENROLMENT_CODE_REQUIRED = True
    settings.ISN_ENROLMENT_CODE_HOURS = 72


def _password_only(username: str = "vn.officer") -> Client:
    client = Client()
    assert client.post("/accounts/login/", {"username": username, "password": PASSWORD}).status_code == 302
    return client


def _issue_through_api(api, admin, username: str = "vn.officer"):
    api.force_authenticate(admin)
    response = api.post("/api/v1/enrolment-codes/", {"username": username}, format="json")
    api.force_authenticate(None)
    return response


def test_a_password_alone_enrols_nothing(vn_officer, bavet):
    client = _password_only()
    page = client.get(ENROL)
    assert page.status_code == 200
    body = page.content.decode()
    assert "data:image/svg+xml" not in body
    assert "<code>" not in body
    assert not TOTPDevice.objects.filter(user=vn_officer).exists()
    refused = client.post(ENROL, {"enrolment_code": "ABCD-EFGH-JKLM", "code": "123456"})
    assert refused.status_code == 200
    assert not TOTPDevice.objects.filter(user=vn_officer).exists()
    assert client.get("/directory/").status_code == 302
    event = AuditEvent.objects.get(action="auth.second_factor_enrol_failed")
    assert (event.actor_user_id, event.outcome, event.details) == (vn_officer.pk, "denied", {"step": "enrolment_code"})


def test_the_admins_code_is_shown_once_stored_hashed_and_recorded(api, vn_admin, vn_officer, bavet):
    response = _issue_through_api(api, vn_admin)
    assert response.status_code == 201
    body = response.json()
    code = body["code"]
    assert body["username"] == "vn.officer"
    stored = EnrolmentCode.objects.get(user=vn_officer)
    assert stored.code_hash == hashlib.sha256(code.encode()).hexdigest()
    assert code not in str(EnrolmentCode.objects.values().get())
    assert timedelta(hours=71) < stored.expires_at - timezone.now() <= timedelta(hours=72)
    event = AuditEvent.objects.get(action="agencies.enrolment_code.issue")
    assert (event.actor_user_id, event.target_id, event.target_country) == (vn_admin.pk, str(vn_officer.pk), "VN")
    assert code not in str(event.details)


def test_the_code_enrols_once_and_then_is_spent(api, vn_admin, vn_officer, bavet):
    code = _issue_through_api(api, vn_admin).json()["code"]
    client = _password_only()
    accepted = client.post(ENROL, {"enrolment_code": code.lower()})
    assert accepted.status_code == 302
    page = client.get(ENROL).content.decode()
    assert "data:image/svg+xml" in page
    assert AuditEvent.objects.filter(action="auth.enrolment_code_used", actor_user_id=vn_officer.pk).count() == 1
    again = _password_only()  # the same code in another session: already spent
    again.post(ENROL, {"enrolment_code": code})
    assert "data:image/svg+xml" not in again.get(ENROL).content.decode()
    device = TOTPDevice.objects.get(user=vn_officer, confirmed=False)
    done = client.post(ENROL, {"code": current_code(device)})
    assert done.status_code == 200
    assert re.findall(r"<code>([a-z0-9]+)</code>", done.content.decode())
    assert client.get("/directory/").status_code == 200
    assert EnrolmentCode.objects.get().used_at is not None


def test_an_expired_or_replaced_code_is_refused(api, vn_admin, vn_officer, bavet):
    first = _issue_through_api(api, vn_admin).json()["code"]
    second = _issue_through_api(api, vn_admin).json()["code"]
    client = _password_only()
    client.post(ENROL, {"enrolment_code": first})
    assert "data:image/svg+xml" not in client.get(ENROL).content.decode()  # replaced by the second
    EnrolmentCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    client.post(ENROL, {"enrolment_code": second})
    assert "data:image/svg+xml" not in client.get(ENROL).content.decode()
    assert AuditEvent.objects.filter(action="auth.second_factor_enrol_failed").count() == 2


def test_only_an_admin_of_the_persons_agency_issues_a_code(api, vn_admin, vn_officer, kh_officer, vn_auditor):
    assert _issue_through_api(api, vn_officer, username="vn.auditor").status_code == 403
    assert _issue_through_api(api, vn_auditor).status_code == 403
    assert _issue_through_api(api, vn_admin, username="kh.officer").status_code == 404  # not theirs: unknown
    assert _issue_through_api(api, vn_admin, username="vn.admin").status_code == 403  # not for themselves
    assert not EnrolmentCode.objects.exists()
    with pytest.raises(NotFound):
        enrolment_code_issue(actor=vn_admin, username="nobody")
    other_admin = MembershipFactory(user=UserFactory(username="kh.admin"), agency=kh_officer.membership.agency)
    other_admin.role = Role.AGENCY_ADMIN
    other_admin.save(update_fields=["role"])
    with pytest.raises(PermissionDenied):
        enrolment_code_issue(actor=vn_admin, username="vn.admin")
    assert enrolment_code_issue(actor=other_admin.user, username="kh.officer").code


def test_keys_issue_no_enrolment_codes(api, vn_admin, vn_officer):
    from agencies.api_keys import api_key_issue

    soon = timezone.now() + timedelta(days=1)
    issued = api_key_issue(
        actor=vn_admin, agency=vn_admin.membership.agency, name="k", scopes=["admin"], expires_at=soon
    )
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {issued.plaintext}")
    assert api.post("/api/v1/enrolment-codes/", {"username": "vn.officer"}, format="json").status_code == 403
    assert not EnrolmentCode.objects.exists()


def test_the_host_issues_a_code_for_an_agencys_first_admin(vn_admin):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("enrolment_code", "vn.admin", stdout=out)
    code = out.getvalue().split()[0]
    assert EnrolmentCode.objects.get(user=vn_admin).code_hash == hashlib.sha256(code.encode()).hexdigest()
    event = AuditEvent.objects.get(action="agencies.enrolment_code.issue")
    assert (event.actor_user_id, event.target_id) == (None, str(vn_admin.pk))
