"""The auditors' workspace in the portal: pages for auditors only, every look recorded, nothing unescaped."""

from __future__ import annotations

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from tests.auth import sign_in

pytestmark = pytest.mark.django_db

PAGES = ["/audit/", "/audit/actors/1/", "/audit/flags/"]


def make_event(**fields):
    fields.setdefault("action", "messaging.item.read")
    return AuditEvent.objects.create(created_at=timezone.now(), **fields)


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("persona", ["vn_officer", "vn_admin", "outsider", "platform_admin"])
def test_pages_refuse_everyone_but_auditors(client, request, path, persona):
    user = request.getfixturevalue(persona)
    make_event(actor_label="secret.reader", actor_country="VN")
    sign_in(client, user)
    response = client.get(path)
    assert response.status_code == 403
    assert b"secret.reader" not in response.content
    assert AuditEvent.objects.get(action="access.denied").actor_user_id == user.pk


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_visitors_are_sent_to_sign_in(client, db, path):
    make_event(actor_label="secret.reader", actor_country="VN")
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert b"secret.reader" not in response.content


def test_auditor_searches_within_scope_and_the_search_is_recorded(client, vn_auditor, vn_officer):
    make_event(actor_user=vn_officer, actor_label="vn.officer", actor_country="VN", target_country="KH")
    make_event(actor_label="kh.only.reader", actor_country="KH", target_country="KH")
    sign_in(client, vn_auditor)
    response = client.get("/audit/", {"action": "messaging."})
    assert response.status_code == 200
    page = response.content.decode()
    assert "vn.officer" in page
    assert "kh.only.reader" not in page
    assert f"/audit/actors/{vn_officer.pk}/" in page
    assert "/api/v1/audit/events/export/?format=csv&amp;action=messaging." in page
    event = AuditEvent.objects.get(action="audit.events.search")
    assert event.details == {"filters": {"action": "messaging."}, "count": 1, "portal": True}


def test_invalid_search_shows_errors_and_records_nothing(client, un_auditor):
    sign_in(client, un_auditor)
    response = client.get("/audit/", {"since": "not a date"})
    assert response.status_code == 200
    assert not AuditEvent.objects.filter(action="audit.events.search").exists()


def test_event_text_is_escaped(client, un_auditor):
    make_event(actor_label="<script>alert(1)</script>", details={"q": "<b>"})
    sign_in(client, un_auditor)
    page = client.get("/audit/").content.decode()
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_timeline_page_is_recorded(client, vn_auditor, kh_officer):
    make_event(actor_user=kh_officer, actor_label="kh.officer", actor_country="KH", target_country="VN")
    make_event(actor_user=kh_officer, actor_label="kh.officer", action="messaging.item.list", actor_country="KH")
    sign_in(client, vn_auditor)
    page = client.get(f"/audit/actors/{kh_officer.pk}/").content.decode()
    assert "messaging.item.read" in page
    assert "messaging.item.list" not in page  # a KH-only event, outside Viet Nam's scope
    event = AuditEvent.objects.get(action="audit.timeline.view")
    assert (event.target_id, event.details) == (str(kh_officer.pk), {"count": 1, "portal": True})


def test_flags_page_is_recorded(client, kh_auditor):
    sign_in(client, kh_auditor)
    response = client.get("/audit/flags/")
    assert response.status_code == 200
    assert "Bulk reads" in response.content.decode()
    assert AuditEvent.objects.filter(action="audit.flags.view", actor_user=kh_auditor).count() == 1


def test_older_events_page_continues_where_the_first_stopped(client, un_auditor, monkeypatch):
    monkeypatch.setattr("audit.views.PAGE_SIZE", 3)
    made = [make_event(actor_label=f"reader{n}") for n in range(5)]
    sign_in(client, un_auditor)
    first = client.get("/audit/", {"action": "messaging.item.read"})
    assert [e.pk for e in first.context["events"]] == [e.pk for e in made[::-1][:3]]
    second = client.get("/audit/", {"action": "messaging.item.read", "before": first.context["next_before"]})
    assert [e.pk for e in second.context["events"]] == [made[1].pk, made[0].pk]
    assert second.context["next_before"] is None


def test_navigation_shows_the_workspace_to_auditors_only(client, vn_auditor, vn_officer):
    sign_in(client, vn_officer)
    assert 'href="/audit/"' not in client.get("/").content.decode()
    sign_in(client, vn_auditor)
    assert 'href="/audit/"' in client.get("/").content.decode()
