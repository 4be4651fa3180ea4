"""The auditors' workspace services: scoped in the query whatever the caller passes, one audit event each."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.http import QueryDict
from django.utils import timezone

from audit.filters import AuditEventFilter
from audit.models import AuditEvent
from audit.workspace import (
    audit_checkpoints_view,
    audit_events_export,
    audit_events_search,
    audit_flags_view,
    audit_status_view,
    audit_timeline_view,
)
from isn.errors import InvalidInput

pytestmark = pytest.mark.django_db


def _event(**fields):
    return AuditEvent.objects.create(created_at=timezone.now(), action="messaging.item.read", **fields)


def _search(query: str = "", queryset=None) -> AuditEventFilter:
    search = AuditEventFilter(QueryDict(query), queryset=queryset if queryset is not None else AuditEvent.objects.all())
    assert search.is_valid()
    return search


@pytest.fixture
def events(vn_officer, kh_officer):
    return {
        "vn": _event(actor_user=vn_officer, actor_label="vn.officer", actor_country="VN", target_country="VN"),
        "kh": _event(actor_user=kh_officer, actor_label="kh.officer", actor_country="KH", target_country="KH"),
    }


def _recorded(action: str, actor) -> AuditEvent:
    return AuditEvent.objects.get(action=action, actor_user=actor)


def test_search_is_scoped_to_the_actor_even_over_an_unscoped_search(vn_auditor, events):
    # The search was built over every event; the service scopes it to Viet Nam's auditor all the same.
    rows = audit_events_search(actor=vn_auditor, search=_search("action=messaging."), page=list)
    assert [row.pk for row in rows] == [events["vn"].pk]
    assert _recorded("audit.events.search", vn_auditor).details == {"filters": {"action": "messaging."}, "count": 1}


def test_portal_search_says_so_in_its_event(un_auditor, events):
    rows = audit_events_search(actor=un_auditor, search=_search("action=messaging."), page=list, portal=True)
    assert {row.pk for row in rows} == {events["vn"].pk, events["kh"].pk}
    event = _recorded("audit.events.search", un_auditor)
    assert event.details == {"filters": {"action": "messaging."}, "count": 2, "portal": True}


def test_an_invalid_search_is_refused_and_not_recorded(un_auditor):
    search = AuditEventFilter(QueryDict("outcome=maybe"), queryset=AuditEvent.objects.none())
    with pytest.raises(InvalidInput):
        audit_events_search(actor=un_auditor, search=search, page=list)
    assert not AuditEvent.objects.filter(action="audit.events.search").exists()


def test_a_non_auditor_finds_nothing(vn_officer, events):
    assert audit_events_search(actor=vn_officer, search=_search(), page=list) == []
    assert audit_timeline_view(actor=vn_officer, user_id=vn_officer.pk, page=list) == []


def test_timeline_names_the_person_in_its_event(vn_auditor, vn_officer, events):
    rows = audit_timeline_view(actor=vn_auditor, user_id=vn_officer.pk, page=list)
    assert [row.pk for row in rows] == [events["vn"].pk]
    event = _recorded("audit.timeline.view", vn_auditor)
    assert (event.target_type, event.target_id, event.details) == ("auth.user", str(vn_officer.pk), {"count": 1})


def test_checkpoints_status_and_flags_are_each_one_event(vn_auditor):
    before = AuditEvent.objects.count()
    assert audit_checkpoints_view(actor=vn_auditor, page=list) == []
    status = audit_status_view(actor=vn_auditor)
    assert status is not None
    found = audit_flags_view(actor=vn_auditor, since=timezone.now() - timedelta(days=1), until=timezone.now())
    assert all(rows == [] for rows in found.values())
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True)[before:])
    assert actions == ["audit.checkpoints.view", "audit.status.view", "audit.flags.view"]
    assert _recorded("audit.checkpoints.view", vn_auditor).details == {"count": 0}


def test_export_fixes_its_rows_before_recording_their_count(un_auditor, vn_officer, events):
    exported = audit_events_export(actor=un_auditor, search=_search("action=messaging."), export_format="csv", limit=1)
    later = _event(actor_user=vn_officer, actor_label="vn.officer", actor_country="VN")
    assert [row.pk for row in exported] == [events["kh"].pk]  # newest first, at most the limit, not the later one
    assert later.pk not in {row.pk for row in exported}
    event = _recorded("audit.events.export", un_auditor)
    assert event.details == {"filters": {"action": "messaging."}, "count": 1, "format": "csv", "limit": 1}
