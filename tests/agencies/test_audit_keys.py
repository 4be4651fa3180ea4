"""Audit keys reach no further than the auditor who issued them: a national auditor issues one for their country, the
regional auditor one for the whole network, an agency admin none; only auditors of the same reach list or revoke
them, and a key whose issuer is no longer such an auditor is refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agencies.api_keys import api_key_issue, api_key_revoke
from agencies.models import ApiKey, ApiKeyScope, Membership, Role
from agencies.services import membership_change
from audit.models import AuditEvent
from audit.services import record
from isn.errors import PermissionDenied
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def _expiry() -> str:
    return (timezone.now() + timedelta(days=30)).isoformat()


def _issue_through_api(api, person, scopes=("audit",), name="audit mirror"):
    api.force_authenticate(person)
    response = api.post(
        "/api/v1/api-keys/", {"name": name, "scopes": list(scopes), "expires_at": _expiry()}, format="json"
    )
    api.force_authenticate(None)
    return response


def _with_key(api, plaintext):
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {plaintext}")
    return api


def _events_seen(api, plaintext) -> set[str]:
    response = _with_key(api, plaintext).get("/api/v1/audit/events/?page_size=200")
    assert response.status_code == 200
    api.credentials()
    return {event["target_country"] for event in response.json()["results"]}


@pytest.fixture
def kh_admin(kh_agency):
    return MembershipFactory(user=UserFactory(username="kh.admin"), agency=kh_agency, role=Role.AGENCY_ADMIN).user


@pytest.fixture
def events_in_two_countries(db):
    with_country = {"action": "agencies.office.read", "actor": None, "target_type": "agencies.office"}
    record(**with_country, target_id="1", target_country="KH")
    record(**with_country, target_id="2", target_country="VN")


def test_an_agency_admin_cannot_issue_an_audit_key(api, kh_admin, kh_agency):
    api.force_authenticate(kh_admin)
    assert api.get("/api/v1/audit/events/").status_code == 403  # no auditor in person...
    response = _issue_through_api(api, kh_admin)
    assert response.status_code == 403  # ...so no auditor by key either
    assert not ApiKey.objects.exists()
    denial = AuditEvent.objects.filter(action="access.denied", actor_user_id=kh_admin.pk).latest("id")
    assert denial.outcome == "denied"
    with pytest.raises(PermissionDenied):
        api_key_issue(
            actor=kh_admin,
            agency=kh_agency,
            name="mirror",
            scopes=[ApiKeyScope.AUDIT],
            expires_at=timezone.now() + timedelta(days=1),
        )


def test_a_national_auditors_key_reads_their_country_only(api, kh_auditor, events_in_two_countries):
    response = _issue_through_api(api, kh_auditor)
    assert response.status_code == 201
    key = ApiKey.objects.get(pk=response.json()["id"])
    assert (key.agency_id, key.user.membership.role) == (kh_auditor.membership.agency_id, Role.NATIONAL_AUDITOR)
    assert _events_seen(api, response.json()["key"]) <= {"KH", ""}
    assert "VN" not in _events_seen(api, response.json()["key"])
    issued = AuditEvent.objects.get(action="agencies.api_key.issue")
    assert (issued.actor_user_id, issued.details["scopes"]) == (kh_auditor.pk, ["audit"])


def test_the_regional_auditors_key_reads_every_country(api, un_auditor, events_in_two_countries):
    response = _issue_through_api(api, un_auditor)
    assert response.status_code == 201
    assert ApiKey.objects.get(pk=response.json()["id"]).user.membership.role == Role.REGIONAL_AUDITOR
    assert {"KH", "VN"} <= _events_seen(api, response.json()["key"])


@pytest.mark.parametrize("scopes", [("read",), ("read", "write"), ("admin",)])
def test_an_auditor_issues_no_content_or_admin_key(api, kh_auditor, scopes):
    assert _issue_through_api(api, kh_auditor, scopes=scopes).status_code == 403
    assert not ApiKey.objects.exists()


def test_auditors_of_the_same_reach_list_and_revoke_audit_keys_and_admins_do_not(
    api, kh_auditor, kh_admin, kh_agency, vn_auditor, un_auditor
):
    key_id = _issue_through_api(api, kh_auditor).json()["id"]
    colleague = MembershipFactory(
        user=UserFactory(username="kh.auditor2"), agency=kh_agency, role=Role.NATIONAL_AUDITOR
    ).user
    for outsider in (kh_admin, vn_auditor, un_auditor):
        api.force_authenticate(outsider)
        assert key_id not in [key["id"] for key in api.get("/api/v1/api-keys/").json()]
        assert api.post(f"/api/v1/api-keys/{key_id}/revoke/").status_code == 404
    with pytest.raises(PermissionDenied):
        api_key_revoke(actor=kh_admin, key=ApiKey.objects.get(pk=key_id))
    api.force_authenticate(kh_auditor)
    assert [key["id"] for key in api.get("/api/v1/api-keys/").json()] == [key_id]
    api.force_authenticate(colleague)  # another auditor of the country: a departed auditor's key can still be cut off
    assert api.post(f"/api/v1/api-keys/{key_id}/revoke/").status_code == 200
    revoked = AuditEvent.objects.get(action="agencies.api_key.revoke")
    assert revoked.actor_user_id == colleague.pk


def test_an_audit_key_dies_when_its_issuer_is_no_longer_an_auditor(api, kh_auditor, kh_agency):
    plaintext = _issue_through_api(api, kh_auditor).json()["key"]
    assert _with_key(api, plaintext).get("/api/v1/audit/events/").status_code == 200
    membership_change(
        actor=None, membership=Membership.objects.get(user=kh_auditor), role=Role.AGENCY_ADMIN, office=None
    )
    assert _with_key(api, plaintext).get("/api/v1/audit/events/").status_code == 401
    refusal = AuditEvent.objects.filter(action="agencies.api_key.denied").latest("id")
    assert refusal.details == {"reason": "issuer_not_auditor"}


def test_an_audit_key_an_admin_issued_before_the_rule_is_refused(api, kh_admin, kh_agency):
    legacy = api_key_issue(
        actor=None,
        agency=kh_agency,
        name="old mirror",
        scopes=[ApiKeyScope.AUDIT],
        expires_at=timezone.now() + timedelta(days=9),
    )
    ApiKey.objects.filter(pk=legacy.key.pk).update(created_by=kh_admin)
    assert _with_key(api, legacy.plaintext).get("/api/v1/audit/events/").status_code == 401


def test_an_admin_still_issues_admin_and_content_keys(api, kh_admin):
    assert _issue_through_api(api, kh_admin, scopes=("admin", "read"), name="hooks").status_code == 201
    assert _issue_through_api(api, kh_admin, scopes=("read", "write"), name="cms").status_code == 201
    api.force_authenticate(kh_admin)
    assert len(api.get("/api/v1/api-keys/").json()) == 2
