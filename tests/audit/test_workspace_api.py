"""The auditors' workspace API: scope in the query, refusals for everyone else, and every look recorded."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditCheckpoint, AuditEvent, Outcome

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    "/api/v1/audit/events/",
    "/api/v1/audit/events/export/?format=csv",
    "/api/v1/audit/events/export/?format=json",
    "/api/v1/audit/actors/1/timeline/",
    "/api/v1/audit/checkpoints/",
    "/api/v1/audit/status/",
    "/api/v1/audit/flags/",
]


def make_event(action="messaging.item.read", *, minutes_ago=0, **fields):
    fields.setdefault("actor_label", "someone")
    return AuditEvent.objects.create(
        created_at=timezone.now() - timedelta(minutes=minutes_ago), action=action, **fields
    )


@pytest.fixture
def stories(vn_officer, kh_officer, th_officer):
    """A VN officer reading a KH item, a KH officer reading a VN item, and a KH officer reading a KH item."""
    return {
        "vn_reads_kh": make_event(
            actor_user=vn_officer, actor_label="vn.officer", actor_country="VN", target_country="KH"
        ),
        "kh_reads_vn": make_event(
            actor_user=kh_officer, actor_label="kh.officer", actor_country="KH", target_country="VN"
        ),
        "kh_only": make_event(actor_user=kh_officer, actor_label="kh.officer", actor_country="KH", target_country="KH"),
        "th_only": make_event(
            action="messaging.item.create", actor_user=th_officer, actor_label="th.officer", actor_country="TH"
        ),
    }


def ids(response):
    return {row["id"] for row in response.json()["results"]}


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("persona", [None, "vn_officer", "vn_admin", "outsider", "platform_admin"])
def test_everyone_but_auditors_is_refused(api, request, path, persona, stories):
    if persona:
        api.force_authenticate(request.getfixturevalue(persona))
    response = api.get(path)
    assert response.status_code == (403 if persona else 401)
    assert b"kh.officer" not in response.content
    assert AuditEvent.objects.filter(action="access.denied").count() == 1
    assert not AuditEvent.objects.filter(action__startswith="audit.").exists()


def test_national_auditor_sees_own_country_as_actor_or_target_only(api, vn_auditor, stories):
    api.force_authenticate(vn_auditor)
    response = api.get("/api/v1/audit/events/?action=messaging.")
    assert response.status_code == 200
    assert ids(response) == {stories["vn_reads_kh"].pk, stories["kh_reads_vn"].pk}


def test_other_national_auditor_has_a_different_scope(api, kh_auditor, stories):
    api.force_authenticate(kh_auditor)
    response = api.get("/api/v1/audit/events/?action=messaging.")
    assert ids(response) == {stories["vn_reads_kh"].pk, stories["kh_reads_vn"].pk, stories["kh_only"].pk}


def test_regional_auditor_sees_everything(api, un_auditor, stories):
    api.force_authenticate(un_auditor)
    response = api.get("/api/v1/audit/events/?action=messaging.")
    assert ids(response) == {event.pk for event in stories.values()}


def test_filters(api, un_auditor, kh_officer, stories):
    api.force_authenticate(un_auditor)
    kh_ids = {stories["kh_reads_vn"].pk, stories["kh_only"].pk}
    assert ids(api.get(f"/api/v1/audit/events/?actor={kh_officer.pk}")) == kh_ids
    assert ids(api.get("/api/v1/audit/events/?actor=kh.officer")) == kh_ids
    assert ids(api.get("/api/v1/audit/events/?action=messaging.item.create")) == {stories["th_only"].pk}
    assert ids(api.get("/api/v1/audit/events/?action=messaging.item.")) == {e.pk for e in stories.values()}
    assert ids(api.get("/api/v1/audit/events/?action=messaging.item")) == set()  # exact unless it ends in "."
    assert ids(api.get("/api/v1/audit/events/?country=TH")) == {stories["th_only"].pk}
    denied = make_event(actor_label="eve", outcome=Outcome.DENIED, target_type="messaging.item", target_id="42")
    assert ids(api.get("/api/v1/audit/events/?outcome=denied&target_type=messaging.item&target_id=42")) == {denied.pk}
    old = make_event(actor_label="old", minutes_ago=600)
    since = (timezone.now() - timedelta(minutes=700)).isoformat()
    until = (timezone.now() - timedelta(minutes=500)).isoformat()
    assert ids(api.get("/api/v1/audit/events/", {"since": since, "until": until})) == {old.pk}
    assert api.get("/api/v1/audit/events/?outcome=maybe").status_code == 400
    assert api.get("/api/v1/audit/events/?country=XX").status_code == 400


def test_search_is_itself_recorded(api, vn_auditor, stories):
    api.force_authenticate(vn_auditor)
    api.get("/api/v1/audit/events/?action=messaging.&country=KH")
    event = AuditEvent.objects.get(action="audit.events.search")
    assert (event.actor_user_id, event.actor_country) == (vn_auditor.pk, "VN")
    assert event.details == {"filters": {"action": "messaging.", "country": "KH"}, "count": 2}
    # The auditor's own search is within their scope: auditors are audited, by each other too.
    assert event.pk in ids(api.get("/api/v1/audit/events/?action=audit."))


def test_list_pages_with_a_cursor(api, un_auditor):
    for n in range(7):
        make_event(actor_label=f"reader{n}")
    api.force_authenticate(un_auditor)
    first = api.get("/api/v1/audit/events/?action=messaging.item.read&page_size=5").json()
    assert len(first["results"]) == 5
    second = api.get(first["next"]).json()
    assert len(second["results"]) == 2
    assert not {r["id"] for r in first["results"]} & {r["id"] for r in second["results"]}


def test_event_list_query_count_is_bounded(api, un_auditor, django_assert_max_num_queries):
    for n in range(60):
        make_event(actor_label=f"reader{n}", details={"item_ids": [n]})
    api.force_authenticate(type(un_auditor).objects.get(pk=un_auditor.pk))  # nothing cached on the user yet
    # The viewer's membership, one page of events, and the search's own event (with its savepoint).
    with django_assert_max_num_queries(5):
        response = api.get("/api/v1/audit/events/?page_size=50")
    assert len(response.json()["results"]) == 50


def test_timeline_shows_one_actor_within_scope_and_is_recorded(api, vn_auditor, kh_officer, stories):
    api.force_authenticate(vn_auditor)
    response = api.get(f"/api/v1/audit/actors/{kh_officer.pk}/timeline/")
    assert response.status_code == 200
    assert ids(response) == {stories["kh_reads_vn"].pk}  # not the KH-only read
    event = AuditEvent.objects.get(action="audit.timeline.view")
    assert (event.target_type, event.target_id, event.details) == ("auth.user", str(kh_officer.pk), {"count": 1})


def test_checkpoints_are_public_to_every_auditor(api, vn_auditor):
    AuditCheckpoint.objects.create(
        last_event_id=10, chain_hash="ab" * 32, created_at=timezone.now(), public_key="cd" * 32, signature="ef" * 64
    )
    api.force_authenticate(vn_auditor)
    response = api.get("/api/v1/audit/checkpoints/")
    assert [row["last_event_id"] for row in response.json()["results"]] == [10]
    assert response.json()["results"][0]["signature"] == "ef" * 64
    assert AuditEvent.objects.filter(action="audit.checkpoints.view", actor_user=vn_auditor).count() == 1


def test_status_counts_sealed_and_unsealed_events(api, un_auditor):
    sealed = make_event(actor_label="a")
    AuditEvent.objects.filter(pk=sealed.pk).update(hash="1" * 64, prev_hash="0" * 64, sealed_at=timezone.now())
    unsealed = make_event(actor_label="b")
    api.force_authenticate(un_auditor)
    body = api.get("/api/v1/audit/status/").json()
    assert body["last_sealed_id"] == sealed.pk
    assert body["last_event_id"] == unsealed.pk
    assert body["unsealed_count"] == AuditEvent.objects.filter(hash="").count() - 1  # the status view's own event
    assert body["latest_checkpoint"] is None
    assert AuditEvent.objects.filter(action="audit.status.view").count() == 1


def test_csv_export_is_scoped_recorded_and_spreadsheet_safe(api, vn_auditor, stories):
    make_event(
        actor_label='=HYPERLINK("http://evil")',
        actor_country="VN",
        user_agent="Mozilla\r\nINFO forged line",
        details={"note": "+cmd|' /C calc'!A0", "query": "a\nb"},
    )
    make_event(actor_label="@SUM(1)", actor_country="VN", target_id="-2")
    api.force_authenticate(vn_auditor)
    response = api.get("/api/v1/audit/events/export/?format=csv&action=messaging.")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode()
    lines = text.split("\r\n")
    assert lines[-1] == ""
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 4 == len(lines) - 2  # no injected line break made an extra line
    labels = {row["actor_label"] for row in rows}
    assert labels == {"vn.officer", "kh.officer", '\'=HYPERLINK("http://evil")', "'@SUM(1)"}
    forged = next(row for row in rows if row["actor_label"].startswith("'="))
    assert forged["user_agent"] == "Mozilla  INFO forged line"
    # A JSON cell starts with "{" and JSON escapes line breaks itself, so the cell stays on its line.
    assert "\n" not in forged["details"]
    assert json.loads(forged["details"]) == {"note": "+cmd|' /C calc'!A0", "query": "a\nb"}
    assert next(row for row in rows if row["actor_label"] == "'@SUM(1)")["target_id"] == "'-2"
    event = AuditEvent.objects.get(action="audit.events.export")
    assert event.details == {"filters": {"action": "messaging."}, "count": 4, "format": "csv", "limit": 100_000}


def test_json_export(api, un_auditor, stories, settings):
    settings.AUDIT_EXPORT_MAX_ROWS = 3
    api.force_authenticate(un_auditor)
    response = api.get("/api/v1/audit/events/export/?format=json&action=messaging.")
    assert response.status_code == 200
    rows = json.loads(b"".join(response.streaming_content))
    assert [row["id"] for row in rows] == sorted((e.pk for e in stories.values()), reverse=True)[:3]
    assert set(rows[0]) >= {"actor_label", "action", "target_country", "details", "sealed"}
    event = AuditEvent.objects.get(action="audit.events.export")
    assert (event.details["count"], event.details["format"]) == (3, "json")


def test_export_refuses_unknown_formats(api, un_auditor):
    api.force_authenticate(un_auditor)
    assert api.get("/api/v1/audit/events/export/?format=xlsx").status_code == 404
    assert not AuditEvent.objects.filter(action="audit.events.export").exists()
