from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agencies.api_keys import api_key_issue, api_key_revoke
from agencies.models import ApiKey, ApiKeyScope
from agencies.services import agency_set_active
from audit.models import AuditEvent
from isn.errors import InvalidInput, PermissionDenied
from messaging.models import Item
from tests.messaging.conftest import api_payload

pytestmark = pytest.mark.django_db


def _issue(actor, agency, scopes=("read",), **overrides):
    return api_key_issue(
        actor=actor,
        agency=agency,
        name=overrides.pop("name", "case system"),
        scopes=list(scopes),
        expires_at=overrides.pop("expires_at", timezone.now() + timedelta(days=30)),
    )


def _with_key(api, plaintext):
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {plaintext}")
    return api


def test_agency_admin_issues_a_key_shown_once_and_stored_hashed(vn_admin, vn_agency):
    issued = _issue(vn_admin, vn_agency)
    stored = ApiKey.objects.get(pk=issued.key.pk)
    secret = issued.plaintext.split("_", 2)[2]  # the secret itself may hold "_"
    assert issued.plaintext.startswith(f"isn_{stored.prefix}_")
    assert secret not in stored.key_hash
    assert len(stored.key_hash) == 64
    event = AuditEvent.objects.get(action="agencies.api_key.issue")
    assert (event.actor_label, event.target_id, event.target_country) == ("vn.admin", str(stored.pk), "VN")
    assert secret not in str(event.details)


def test_only_an_admin_of_the_agency_issues_or_revokes(vn_officer, vn_admin, vn_agency, kh_agency):
    with pytest.raises(PermissionDenied):
        _issue(vn_officer, vn_agency)
    with pytest.raises(PermissionDenied):
        _issue(vn_admin, kh_agency)
    issued = _issue(vn_admin, vn_agency)
    with pytest.raises(PermissionDenied):
        api_key_revoke(actor=vn_officer, key=issued.key)


@pytest.mark.parametrize(
    ("scopes", "expires_in"),
    [
        ([], 30),
        (["read", "root"], 30),
        (["admin", "write"], 30),
        (["admin", "audit"], 30),
        (["audit", "read"], 30),
        (["read"], -1),
        (["read"], 400),
    ],
)
def test_bad_key_requests_are_refused_and_store_nothing(vn_admin, vn_agency, scopes, expires_in):
    with pytest.raises(InvalidInput):
        _issue(vn_admin, vn_agency, scopes=scopes, expires_at=timezone.now() + timedelta(days=expires_in))
    assert not ApiKey.objects.exists()


def test_a_key_reads_the_directory_and_its_reads_name_the_key(api, vn_admin, vn_agency, bavet):
    issued = _issue(vn_admin, vn_agency)
    response = _with_key(api, issued.plaintext).get("/api/v1/items/")
    assert response.status_code == 200
    event = AuditEvent.objects.get(action="messaging.item.list")
    assert (event.actor_api_key_id, event.actor_country) == (issued.key.pk, "VN")
    assert _with_key(api, issued.plaintext).get("/api/v1/offices/").status_code == 200
    assert ApiKey.objects.get(pk=issued.key.pk).last_used_at is not None


def test_a_read_key_cannot_post_and_a_write_key_can(api, vn_admin, vn_agency, moc_bai):
    reader = _issue(vn_admin, vn_agency, name="reader")
    writer = _issue(vn_admin, vn_agency, scopes=("read", "write"), name="writer")
    assert _with_key(api, reader.plaintext).post("/api/v1/items/", api_payload(), format="json").status_code == 403
    assert not Item.objects.exists()
    assert _with_key(api, writer.plaintext).post("/api/v1/items/", api_payload(), format="json").status_code == 201


@pytest.mark.parametrize("fault", ["revoked", "expired", "wrong_secret", "agency_suspended"])
def test_a_dead_key_gets_401_and_the_refusal_is_recorded(api, vn_admin, vn_agency, fault):
    issued = _issue(vn_admin, vn_agency)
    presented = issued.plaintext
    if fault == "revoked":
        api_key_revoke(actor=vn_admin, key=issued.key)
    elif fault == "expired":
        ApiKey.objects.filter(pk=issued.key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    elif fault == "wrong_secret":
        presented = presented[:-4] + "AAAA"
    else:
        agency_set_active(actor=None, agency=vn_agency, is_active=False)
    response = _with_key(api, presented).get("/api/v1/offices/")
    assert response.status_code == 401
    event = AuditEvent.objects.get(action="agencies.api_key.denied")
    assert (event.outcome, event.details, event.actor_label) == (
        "denied",
        {"reason": fault},
        f"api-key:{issued.key.prefix}",
    )


@pytest.mark.parametrize("presented", ["", "isn_", "isn_nope_nope", "Bearer x", "isn_a_b_c"])
def test_malformed_or_unknown_keys_get_401(api, db, presented):
    assert _with_key(api, presented).get("/api/v1/offices/").status_code == 401


def test_an_audit_key_reads_the_audit_trail_but_no_content(api, vn_admin, vn_auditor, vn_agency):
    auditor_key = _issue(vn_auditor, vn_agency, scopes=(ApiKeyScope.AUDIT,), name="audit")
    reader_key = _issue(vn_admin, vn_agency, name="reader")
    assert _with_key(api, auditor_key.plaintext).get("/api/v1/audit/events/").status_code == 200
    assert _with_key(api, auditor_key.plaintext).get("/api/v1/items/").status_code == 403  # auditors see no content
    assert _with_key(api, reader_key.plaintext).get("/api/v1/audit/events/").status_code == 403


def test_keys_do_not_manage_keys(api, vn_admin, vn_agency):
    issued = _issue(vn_admin, vn_agency, scopes=("read", "write"))
    assert _with_key(api, issued.plaintext).get("/api/v1/api-keys/").status_code == 403
    assert _with_key(api, issued.plaintext).post(f"/api/v1/api-keys/{issued.key.pk}/revoke/").status_code == 403


def test_admin_manages_keys_through_the_api(api, vn_admin, vn_officer, vn_agency):
    api.force_authenticate(vn_admin)
    expires = (timezone.now() + timedelta(days=90)).isoformat()
    created = api.post("/api/v1/api-keys/", {"name": "CMS", "scopes": ["read"], "expires_at": expires}, format="json")
    assert created.status_code == 201
    body = created.json()
    assert body["key"].startswith(f"isn_{body['prefix']}_")
    listed = api.get("/api/v1/api-keys/").json()
    assert [key["name"] for key in listed] == ["CMS"]
    assert "key" not in listed[0]
    assert "key_hash" not in listed[0]
    assert api.post(f"/api/v1/api-keys/{body['id']}/revoke/").json()["revoked_at"] is not None
    api.force_authenticate(None)
    assert _with_key(api, body["key"]).get("/api/v1/offices/").status_code == 401
    api.credentials()
    api.force_authenticate(vn_officer)
    assert api.get("/api/v1/api-keys/").status_code == 403
    assert (
        api.post(
            "/api/v1/api-keys/", {"name": "x", "scopes": ["read"], "expires_at": expires}, format="json"
        ).status_code
        == 403
    )


# --- the admin scope: an agency's delivery settings, never its keys -------------------------------------------------


def test_only_the_agencys_own_admin_issues_an_admin_key(vn_admin, vn_officer, platform_admin, vn_agency, kh_agency):
    assert _issue(vn_admin, vn_agency, scopes=("admin",), name="hooks").key.scopes == ["admin"]
    assert _issue(vn_admin, vn_agency, scopes=("read", "admin"), name="hooks+read").key.scopes == ["admin", "read"]
    for actor, agency in [
        (None, vn_agency),
        (platform_admin, vn_agency),
        (vn_officer, vn_agency),
        (vn_admin, kh_agency),
    ]:
        with pytest.raises(PermissionDenied):
            _issue(actor, agency, scopes=("admin",), name="refused")
    assert not ApiKey.objects.filter(name="refused").exists()
    # The system itself cannot hand out admin (or any) keys: its account is an officer, not an agency admin.
    system = ApiKey.objects.get(name="hooks").user
    with pytest.raises(PermissionDenied):
        _issue(system, vn_agency, scopes=("admin",), name="refused")
    with pytest.raises(PermissionDenied):
        _issue(system, vn_agency, scopes=("read",), name="refused")


def test_an_admin_key_gets_403_on_the_api_keys(api, vn_admin, vn_agency):
    admin_key = _issue(vn_admin, vn_agency, scopes=("admin", "read"), name="hooks")
    other = _issue(vn_admin, vn_agency, name="reader")
    client = _with_key(api, admin_key.plaintext)
    expires = (timezone.now() + timedelta(days=30)).isoformat()
    assert client.get("/api/v1/api-keys/").status_code == 403
    assert (
        client.post("/api/v1/api-keys/", {"name": "x", "scopes": ["admin"], "expires_at": expires}, format="json")
    ).status_code == 403
    for key in (other, admin_key):
        assert client.post(f"/api/v1/api-keys/{key.key.pk}/revoke/").status_code == 403
        with pytest.raises(PermissionDenied):
            api_key_revoke(actor=admin_key.key.user, key=key.key)
    assert ApiKey.objects.filter(revoked_at__isnull=False).count() == 0
    assert ApiKey.objects.count() == 2


def test_an_admin_only_key_reads_no_items_and_writes_none(api, vn_admin, vn_agency, moc_bai):
    admin_key = _issue(vn_admin, vn_agency, scopes=("admin",), name="hooks")
    client = _with_key(api, admin_key.plaintext)
    assert client.get("/api/v1/items/").status_code == 403
    assert client.get("/api/v1/notifications/").status_code == 403
    assert client.post("/api/v1/items/", api_payload(), format="json").status_code == 403
    assert not Item.objects.exists()


def test_an_agency_admin_issues_an_admin_key_through_the_api(api, vn_admin):
    api.force_authenticate(vn_admin)
    expires = (timezone.now() + timedelta(days=30)).isoformat()
    created = api.post(
        "/api/v1/api-keys/", {"name": "hooks", "scopes": ["admin"], "expires_at": expires}, format="json"
    )
    assert created.status_code == 201, created.content
    assert created.json()["scopes"] == ["admin"]
    mixed = api.post(
        "/api/v1/api-keys/", {"name": "all", "scopes": ["admin", "write"], "expires_at": expires}, format="json"
    )
    assert mixed.status_code == 400
