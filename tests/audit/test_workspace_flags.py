"""Flags for auditors, each tested with crafted events at chosen times."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from agencies.models import Membership
from audit.flags import (
    BULK_READS,
    HIT_COUNTRIES,
    MANY_COUNTRIES,
    MANY_IDENTIFIERS,
    OFF_HOURS_READS,
    REPEATED_DENIALS,
    flags_for,
)
from audit.models import AuditEvent, Outcome
from tests.factories import OfficeFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # 10:00 in Viet Nam and Cambodia, a Monday
PERIOD = {"since": T0 - timedelta(days=1), "until": T0 + timedelta(days=1)}


@pytest.fixture(autouse=True)
def _small_thresholds(settings):
    settings.AUDIT_FLAGS = {
        "BULK_READS_MORE_THAN": 3,
        "BULK_READS_WINDOW_MINUTES": 10,
        "DENIALS_AT_LEAST": 3,
        "DENIALS_WINDOW_MINUTES": 15,
        "COUNTRIES_AT_LEAST": 3,
        "COUNTRIES_WINDOW_MINUTES": 60,
    }


def at(minutes: float, *, user=None, label="", country="VN", action="messaging.item.read", **fields) -> AuditEvent:
    return AuditEvent.objects.create(
        created_at=T0 + timedelta(minutes=minutes),
        action=action,
        actor_user=user,
        actor_label=label or (user.username if user else "anonymous"),
        actor_country=country,
        **fields,
    )


def summary(flags):
    return [(flag.actor_label, flag.count) for flag in flags]


def test_bulk_reads_flags_more_than_n_reads_in_the_window(un_auditor, vn_officer, kh_officer, th_officer):
    for minute in (0, 2, 4, 6, 8.5):  # five reads within ten minutes: four of them in one window is "more than 3"
        at(minute, user=vn_officer, action="messaging.item.list" if minute == 2 else "messaging.item.read")
    for minute in (0, 15, 30, 45, 60):  # steady reading all morning is not bulk
        at(minute, user=kh_officer, country="KH")
    for minute in (0, 1, 2):  # exactly the threshold is not more than it
        at(minute, user=th_officer, country="TH", action="messaging.attachment.download")
    for minute in (0, 1, 2, 3, 4):  # many writes are not reads
        at(minute, user=th_officer, country="TH", action="messaging.item.create")
    flags = flags_for(un_auditor, **PERIOD)[BULK_READS]
    assert summary(flags) == [("vn.officer", 5)]
    assert flags[0].window_minutes == 10
    assert flags[0].window_end == T0 + timedelta(minutes=8.5)
    assert flags[0].actor_user_id == vn_officer.pk


def test_reads_outside_office_hours_use_the_office_countrys_time(un_auditor, vn_officer, kh_officer):
    # Moc Bai is open 08:00-17:00 in Asia/Ho_Chi_Minh (UTC+7).
    at(-8 * 60, user=vn_officer)  # 19:00 UTC the day before: 02:00 local, outside
    at(-90, user=vn_officer)  # 01:30 UTC: 08:30 local, inside (outside if read as UTC)
    at(7 * 60, user=vn_officer)  # 10:00 UTC: 17:00 local, closing time: outside
    at(8 * 60, user=vn_officer, action="messaging.item.create")  # not a read
    at(6 * 60, user=kh_officer, country="KH")  # 16:00 local in Phnom Penh, inside Bavet's hours
    flags = flags_for(un_auditor, **PERIOD)[OFF_HOURS_READS]
    assert summary(flags) == [("vn.officer", 2)]
    assert (flags[0].window_start, flags[0].window_end) == (T0 - timedelta(hours=8), T0 + timedelta(hours=7))
    assert flags[0].window_minutes is None


def test_an_office_open_overnight(un_auditor, vn_officer):
    night_shift = OfficeFactory(agency=vn_officer.membership.agency, opens_at=time(22), closes_at=time(6))
    Membership.objects.filter(user=vn_officer).update(office=night_shift)
    at(-60, user=vn_officer)  # 09:00 local: outside the night shift
    at(-8 * 60, user=vn_officer)  # 02:00 local: inside
    assert summary(flags_for(un_auditor, **PERIOD)[OFF_HOURS_READS]) == [("vn.officer", 1)]


def test_members_without_an_office_are_not_flagged_for_hours(un_auditor, vn_admin):
    at(-8 * 60, user=vn_admin)
    assert flags_for(un_auditor, **PERIOD)[OFF_HOURS_READS] == []


def test_repeated_denials_by_one_actor(un_auditor, vn_officer, kh_officer):
    for minute in (0, 5, 10):
        at(minute, user=vn_officer, action="access.denied", outcome=Outcome.DENIED)
    for minute in (0, 30, 60):  # spread out: not repeated within the window
        at(minute, user=kh_officer, country="KH", action="access.denied", outcome=Outcome.DENIED)
    for second in (0, 20, 40, 60):  # failed sign-ins have no user, only the username tried
        at(second / 60, label="eve", country="", action="auth.login_failed", outcome=Outcome.DENIED)
    at(1, user=kh_officer, country="KH", action="messaging.item.read")  # allowed: does not count
    flags = flags_for(un_auditor, **PERIOD)[REPEATED_DENIALS]
    assert summary(flags) == [("eve", 4), ("vn.officer", 3)]
    # From the start of the first 15-minute window that held three denials (it ended at minute 10).
    assert (flags[1].window_start, flags[1].window_end) == (T0 - timedelta(minutes=5), T0 + timedelta(minutes=10))


def test_one_person_reading_many_countries(un_auditor, vn_officer, kh_officer):
    for minute, target in ((0, "KH"), (10, "TH"), (20, "KH"), (30, "LA")):
        at(minute, user=vn_officer, target_country=target)
    for minute, target in ((0, "VN"), (50, "TH"), (120, "LA")):  # three countries, but hours apart
        at(minute, user=kh_officer, country="KH", target_country=target)
    flags = flags_for(un_auditor, **PERIOD)[MANY_COUNTRIES]
    assert summary(flags) == [("vn.officer", 3)]
    assert flags[0].window_end == T0 + timedelta(minutes=30)


def test_flags_only_count_events_in_the_auditors_scope(vn_auditor, kh_auditor, kh_officer):
    for minute in range(5):  # a Cambodian reading Cambodian items: Viet Nam's auditor sees none of it
        at(minute, user=kh_officer, country="KH", target_country="KH")
    assert flags_for(vn_auditor, **PERIOD)[BULK_READS] == []
    assert summary(flags_for(kh_auditor, **PERIOD)[BULK_READS]) == [("kh.officer", 5)]


def test_non_auditors_get_no_flags(vn_officer):
    for minute in range(5):
        at(minute, user=vn_officer)
    assert all(rows == [] for rows in flags_for(vn_officer, **PERIOD).values())


def test_flags_api_is_recorded(api, un_auditor, vn_officer):
    for minute in range(5):
        at(minute, user=vn_officer)
    api.force_authenticate(un_auditor)
    response = api.get(
        "/api/v1/audit/flags/", {"since": PERIOD["since"].isoformat(), "until": PERIOD["until"].isoformat()}
    )
    assert response.status_code == 200
    assert [(row["actor_label"], row["count"]) for row in response.json()[BULK_READS]] == [("vn.officer", 5)]
    event = AuditEvent.objects.get(action="audit.flags.view")
    assert event.details["counts"] == {
        BULK_READS: 1,
        OFF_HOURS_READS: 0,
        REPEATED_DENIALS: 0,
        MANY_COUNTRIES: 0,
        MANY_IDENTIFIERS: 0,
        HIT_COUNTRIES: 0,
    }


@pytest.mark.parametrize(
    ("action", "is_read"),
    [
        ("messaging.notification.read", False),  # marks a notification read: a write, whatever its name says
        ("messaging.item.create", False),
        ("messaging.item.deliveries_view", True),
        ("messaging.item.access_view", True),
        ("messaging.item.count", True),
        ("messaging.consent.list", True),
        ("messaging.statistics.export", True),
        ("audit.events.export", True),
    ],
)
def test_what_counts_as_a_read_comes_from_the_codes_registered_kind(un_auditor, vn_officer, action, is_read):
    at(-8 * 60, user=vn_officer, action=action, target_country="VN")  # 02:00 at Moc Bai: out of hours
    for minute, target in ((0, "KH"), (1, "TH"), (2, "LA"), (3, "KH")):
        at(minute, user=vn_officer, action=action, target_country=target)
    found = flags_for(un_auditor, **PERIOD)
    expected = {
        BULK_READS: [("vn.officer", 4)],
        OFF_HOURS_READS: [("vn.officer", 1)],
        MANY_COUNTRIES: [("vn.officer", 3)],
    }
    for kind, flagged in expected.items():
        assert summary(found[kind]) == (flagged if is_read else []), kind
