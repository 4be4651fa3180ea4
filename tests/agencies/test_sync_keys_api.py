"""The sync keys' API: admins declare (/api/v1/api-keys/{id}/sync-declaration/), national auditors of the key's country
list what waits and approve or refuse it (/api/v1/sync-declarations/)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agencies.api_keys import api_key_issue
from agencies.models import ApiKeyScope, SyncDeclaration, SyncDeclarationStatus
from agencies.sync_keys import MAX_DAILY_READS, sync_key_declare
from audit.models import AuditEvent
from isn.problems import PROBLEM_CONTENT_TYPE

pytestmark = pytest.mark.django_db


def issue(admin, agency, *, name="case system", scopes=("read",)):
    return api_key_issue(
        actor=admin, agency=agency, name=name, scopes=list(scopes), expires_at=timezone.now() + timedelta(days=30)
    )


@pytest.fixture
def key(vn_admin, vn_agency):
    return issue(vn_admin, vn_agency).key


@pytest.fixture
def pending(vn_admin, key):
    return sync_key_declare(actor=vn_admin, key=key, daily_reads=5000)


def test_an_admin_declares_through_the_api_and_sees_it_on_the_key(api, vn_admin, key):
    api.force_authenticate(vn_admin)
    response = api.post(f"/api/v1/api-keys/{key.pk}/sync-declaration/", {"daily_reads": 5000}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["api_key"], body["daily_reads"], body["status"], body["declared_by"], body["decided_by"]) == (
        key.pk,
        5000,
        "pending",
        "vn.admin",
        None,
    )
    [listed] = api.get("/api/v1/api-keys/").json()
    assert (listed["sync_daily_reads"], listed["sync_pending_daily_reads"]) == (None, 5000)
    assert AuditEvent.objects.filter(action="agencies.sync_key.declare", target_id=str(body["id"])).count() == 1


@pytest.mark.parametrize(
    "body", [{"daily_reads": 0}, {"daily_reads": MAX_DAILY_READS + 1}, {"daily_reads": "lots"}, {}]
)
def test_a_bad_volume_is_a_problem_and_stores_nothing(api, vn_admin, key, body):
    api.force_authenticate(vn_admin)
    response = api.post(f"/api/v1/api-keys/{key.pk}/sync-declaration/", body, format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    assert "daily_reads" in response.json()["errors"]["fields"]
    assert not SyncDeclaration.objects.exists()


def test_others_cannot_declare(api, vn_officer, vn_auditor, kh_agency, key):
    path = f"/api/v1/api-keys/{key.pk}/sync-declaration/"
    for person in (vn_officer, vn_auditor):  # the key is not theirs to see: as if it did not exist
        api.force_authenticate(person)
        assert api.post(path, {"daily_reads": 9}, format="json").status_code == 404
    api.force_authenticate(None)
    writer = issue(None, key.agency, name="writer", scopes=("read", "write"))
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {writer.plaintext}")  # keys do not manage keys
    assert api.post(path, {"daily_reads": 9}, format="json").status_code == 403
    assert not SyncDeclaration.objects.exists()


def test_a_national_auditor_lists_what_waits_in_their_country_and_approves_it(
    api, vn_admin, vn_auditor, kh_auditor, pending
):
    api.force_authenticate(vn_auditor)
    waiting = api.get("/api/v1/sync-declarations/", {"status": "pending"}).json()["results"]
    assert [(row["id"], row["country"], row["agency"], row["daily_reads"]) for row in waiting] == [
        (pending.pk, "VN", "BGC", 5000)
    ]
    api.force_authenticate(kh_auditor)
    assert api.get("/api/v1/sync-declarations/").json()["results"] == []

    api.force_authenticate(vn_auditor)
    approved = api.post(f"/api/v1/sync-declarations/{pending.pk}/approve/")
    assert approved.status_code == 200
    assert (approved.json()["status"], approved.json()["decided_by"]) == ("approved", "vn.auditor")
    assert api.get("/api/v1/sync-declarations/", {"status": "pending"}).json()["results"] == []
    api.force_authenticate(vn_admin)
    [listed] = api.get("/api/v1/api-keys/").json()
    assert (listed["sync_daily_reads"], listed["sync_pending_daily_reads"]) == (5000, None)


def test_a_national_auditor_refuses_with_a_reason(api, vn_auditor, pending):
    api.force_authenticate(vn_auditor)
    assert api.post(f"/api/v1/sync-declarations/{pending.pk}/refuse/", {}, format="json").status_code == 400
    response = api.post(f"/api/v1/sync-declarations/{pending.pk}/refuse/", {"reason": "Too many."}, format="json")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["refusal_reason"]) == ("refused", "Too many.")
    again = api.post(f"/api/v1/sync-declarations/{pending.pk}/approve/")
    assert (again.status_code, again.json()["code"]) == (409, "conflict")


def test_no_one_else_approves_and_each_refusal_is_recorded(
    api, vn_admin, vn_officer, vn_agency, vn_auditor, kh_auditor, un_auditor, pending
):
    audit_key = issue(vn_auditor, vn_agency, name="audit mirror", scopes=(ApiKeyScope.AUDIT,))
    attempts = [(kh_auditor, 404), (un_auditor, 403), (vn_admin, 403), (vn_officer, 403)]
    for person, status in attempts:
        api.force_authenticate(person)
        response = api.post(f"/api/v1/sync-declarations/{pending.pk}/approve/")
        assert (response.status_code, response["Content-Type"]) == (status, PROBLEM_CONTENT_TYPE), person
    api.force_authenticate(None)
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {audit_key.plaintext}")
    assert api.post(f"/api/v1/sync-declarations/{pending.pk}/approve/").status_code == 403
    assert api.get("/api/v1/sync-declarations/").status_code == 403
    assert SyncDeclaration.objects.get().status == SyncDeclarationStatus.PENDING
    denied = AuditEvent.objects.filter(action="access.denied").values_list("actor_label", flat=True)
    assert {"kh.auditor", "un.auditor", "vn.admin", "vn.officer"} <= set(denied)
    assert not AuditEvent.objects.filter(action="agencies.sync_key.approve").exists()


def test_the_regional_auditor_sees_every_declaration_and_officers_none(api, un_auditor, vn_officer, pending):
    api.force_authenticate(un_auditor)
    assert [row["id"] for row in api.get("/api/v1/sync-declarations/").json()["results"]] == [pending.pk]
    assert api.get(f"/api/v1/sync-declarations/{pending.pk}/").status_code == 200
    api.force_authenticate(vn_officer)
    assert api.get("/api/v1/sync-declarations/").status_code == 403
    assert api.get(f"/api/v1/sync-declarations/{pending.pk}/").status_code == 403


def test_listing_declarations_takes_a_fixed_number_of_queries(
    api, vn_admin, vn_agency, vn_auditor, django_assert_max_num_queries
):
    for number in range(5):
        sync_key_declare(actor=vn_admin, key=issue(vn_admin, vn_agency, name=f"system {number}").key, daily_reads=10)
    api.force_authenticate(vn_auditor)
    with django_assert_max_num_queries(8):
        assert len(api.get("/api/v1/sync-declarations/").json()["results"]) == 5
