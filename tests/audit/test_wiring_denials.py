"""Every refused attempt on something protected is an audit event, in the API and in the portal."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent, Outcome
from tests.auth import sign_in

pytestmark = pytest.mark.django_db


def denials():
    return AuditEvent.objects.filter(action="access.denied")


def test_anonymous_api_call_is_recorded(api, bavet):
    assert api.get("/api/v1/offices/").status_code == 401
    event = denials().get()
    assert (event.actor_user_id, event.actor_label, event.outcome) == (None, "anonymous", Outcome.DENIED)
    assert event.details == {
        "reason": "not_authenticated",
        "method": "GET",
        "path": "/api/v1/offices/",
        "view": "office-list",
    }


def test_member_refused_by_a_permission_class_is_recorded(api, vn_officer):
    api.force_authenticate(vn_officer)
    assert api.get("/api/v1/audit/events/").status_code == 403
    event = denials().get()
    assert (event.actor_user_id, event.actor_country) == (vn_officer.pk, "VN")
    assert event.details["reason"] == "permission_denied"
    assert event.details["view"] == "audit-event-list"


def test_detail_outside_scope_or_missing_is_recorded_with_its_target(api, vn_officer):
    api.force_authenticate(vn_officer)
    assert api.get("/api/v1/agencies/999999/").status_code == 404
    event = denials().get()
    assert (event.target_type, event.target_id) == ("agencies.agency", "999999")
    assert event.details["reason"] == "not_found"


def test_path_and_lookup_in_a_denial_are_neutralised(api, vn_officer):
    api.force_authenticate(vn_officer)
    assert api.get("/api/v1/agencies/%0D%0AINFO%20forged/").status_code == 404
    event = denials().get()
    assert event.details["path"] == "/api/v1/agencies/  INFO forged/"
    assert event.details["lookup"] == "  INFO forged"
    assert event.target_id == ""


def test_unknown_urls_and_invalid_pages_are_not_denials(api, client, vn_officer):
    assert client.get("/no-such-page/").status_code == 404
    api.force_authenticate(vn_officer)
    assert api.get("/api/v1/offices/?page=99").status_code == 404
    assert not denials().exists()


def test_refused_portal_page_is_recorded(client, vn_officer):
    sign_in(client, vn_officer)
    assert client.get("/audit/").status_code == 403
    event = denials().get()
    assert (event.actor_user_id, event.outcome) == (vn_officer.pk, Outcome.DENIED)
    assert event.details == {"reason": "permission_denied", "method": "GET", "path": "/audit/", "view": "audit:events"}


def test_refused_directory_for_a_non_member_is_recorded(client, outsider):
    sign_in(client, outsider)
    assert client.get("/directory/").status_code == 403
    assert denials().get().actor_user_id == outsider.pk
