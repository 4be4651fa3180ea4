"""The bulk-read flag judges an approved sync key by its approved daily volume, and people by their window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from agencies.api_keys import api_key_issue
from agencies.models import SyncDeclaration
from agencies.sync_keys import sync_declaration_approve, sync_declaration_refuse, sync_key_declare
from audit.flags import BULK_READS, flags_for
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # 10:00 in Viet Nam, a Monday
VN_DAY = (datetime(2026, 3, 1, 17, 0, tzinfo=UTC), datetime(2026, 3, 2, 17, 0, tzinfo=UTC))  # 2 March, Viet Nam time
PERIOD = {"since": T0 - timedelta(days=2), "until": T0 + timedelta(days=2)}


@pytest.fixture(autouse=True)
def _small_thresholds(settings):
    settings.AUDIT_FLAGS = {"BULK_READS_MORE_THAN": 3, "BULK_READS_WINDOW_MINUTES": 10}  # tolerance: 150 %


@pytest.fixture
def key(vn_admin, vn_agency):
    return api_key_issue(
        actor=vn_admin,
        agency=vn_agency,
        name="case system",
        scopes=["read"],
        expires_at=timezone.now() + timedelta(days=30),
    ).key


def approve(key, daily_reads, *, admin, auditor, since=T0 - timedelta(days=7)) -> SyncDeclaration:
    """Declare and approve through the services, then date the approval ``since`` (the events below are dated)."""
    declaration = sync_declaration_approve(
        actor=auditor, declaration=sync_key_declare(actor=admin, key=key, daily_reads=daily_reads)
    )
    SyncDeclaration.objects.filter(pk=declaration.pk).update(decided_at=since)
    return declaration


def reads(minutes, *, user, key=None, country="VN"):
    for minute in minutes:
        AuditEvent.objects.create(
            created_at=T0 + timedelta(minutes=minute),
            action="messaging.item.read",
            actor_user=user,
            actor_api_key_id=key.pk if key else None,
            actor_label=user.username,
            actor_country=country,
        )


def bulk(viewer):
    found = flags_for(viewer, **PERIOD)[BULK_READS]
    return [(flag.actor_label, flag.count, flag.declared_daily_reads) for flag in found]


def test_a_sync_key_within_its_approved_volume_is_not_flagged_where_a_person_would_be(
    un_auditor, vn_admin, vn_auditor, vn_officer, key
):
    approve(key, 100, admin=vn_admin, auditor=vn_auditor)
    reads(range(20), user=key.user, key=key)  # twenty reads in twenty minutes: bulk for a person
    reads(range(20), user=vn_officer)
    assert bulk(un_auditor) == [("vn.officer", 10, None)]  # ten of the officer's reads within ten minutes
    assert bulk(vn_auditor) == [("vn.officer", 10, None)]


def test_a_sync_key_far_above_its_approved_volume_is_flagged_for_that_day(un_auditor, vn_admin, vn_auditor, key):
    approve(key, 10, admin=vn_admin, auditor=vn_auditor)
    reads([minute * 30 for minute in range(16)], user=key.user, key=key)  # 16 in the day, steady: 160 % of 10
    [flag] = flags_for(un_auditor, **PERIOD)[BULK_READS]
    assert (flag.actor_label, flag.actor_user_id, flag.actor_api_key_id) == (key.user.username, key.user.pk, key.pk)
    assert (flag.count, flag.declared_daily_reads, flag.window_minutes) == (16, 10, None)
    assert (flag.window_start, flag.window_end) == VN_DAY


def test_the_tolerance_is_a_day_in_the_keys_country_and_a_setting(un_auditor, vn_admin, vn_auditor, key, settings):
    approve(key, 10, admin=vn_admin, auditor=vn_auditor)
    # Fifteen reads on 2 March, Viet Nam time (150 %: not above it), and fifteen more from 00:00 on 3 March.
    reads(range(15), user=key.user, key=key)
    reads([14 * 60 + minute for minute in range(15)], user=key.user, key=key)  # 17:00 UTC is midnight at Moc Bai
    assert bulk(un_auditor) == []
    settings.AUDIT_FLAGS = {**settings.AUDIT_FLAGS, "SYNC_READS_TOLERANCE_PERCENT": 120}
    flags = flags_for(un_auditor, **PERIOD)[BULK_READS]
    assert [(flag.count, flag.declared_daily_reads) for flag in flags] == [(15, 10)]
    assert (flags[0].window_start, flags[0].window_end) == (VN_DAY[0], VN_DAY[1] + timedelta(days=1))


def test_a_declaration_awaiting_approval_changes_nothing(un_auditor, vn_admin, key):
    sync_key_declare(actor=vn_admin, key=key, daily_reads=100_000)
    reads(range(5), user=key.user, key=key)
    [flag] = flags_for(un_auditor, **PERIOD)[BULK_READS]
    assert (flag.actor_label, flag.count, flag.window_minutes, flag.declared_daily_reads) == (
        key.user.username,
        5,
        10,
        None,
    )


def test_a_refused_declaration_changes_nothing(un_auditor, vn_admin, vn_auditor, key):
    asked = sync_key_declare(actor=vn_admin, key=key, daily_reads=100_000)
    sync_declaration_refuse(actor=vn_auditor, declaration=asked, reason="Too much for one system.")
    SyncDeclaration.objects.filter(pk=asked.pk).update(decided_at=T0 - timedelta(days=7))  # long before the reads
    reads(range(5), user=key.user, key=key)
    assert bulk(un_auditor) == [(key.user.username, 5, None)]


def test_a_new_declaration_awaiting_approval_leaves_the_approved_volume_in_force(un_auditor, vn_admin, vn_auditor, key):
    approve(key, 10, admin=vn_admin, auditor=vn_auditor)
    sync_key_declare(actor=vn_admin, key=key, daily_reads=100_000)  # the admin may not raise it alone
    reads(range(16), user=key.user, key=key)
    assert bulk(un_auditor) == [(key.user.username, 16, 10)]


def test_reads_before_the_approval_are_judged_like_a_persons(un_auditor, vn_admin, vn_auditor, key):
    approve(key, 100, admin=vn_admin, auditor=vn_auditor, since=T0 + timedelta(minutes=30))
    reads(range(5), user=key.user, key=key)  # before: bulk by a person's window
    reads(range(30, 60), user=key.user, key=key)  # after: 30 of the 100 approved
    [flag] = flags_for(un_auditor, **PERIOD)[BULK_READS]
    assert (flag.count, flag.window_minutes, flag.window_end) == (5, 10, T0 + timedelta(minutes=4))


def test_a_later_approval_replaces_the_volume_from_its_own_time(un_auditor, vn_admin, vn_auditor, key):
    approve(key, 20, admin=vn_admin, auditor=vn_auditor)
    lower = approve(key, 4, admin=vn_admin, auditor=vn_auditor, since=T0 + timedelta(minutes=30))
    SyncDeclaration.objects.exclude(pk=lower.pk).update(replaced_at=T0 + timedelta(minutes=30))
    reads(range(25), user=key.user, key=key)  # 25 under the first volume: 125 % of 20
    reads(range(30, 37), user=key.user, key=key)  # 7 under the second: 175 % of 4 (and not counted under the first)
    assert bulk(un_auditor) == [(key.user.username, 7, 4)]


def test_sync_flags_stay_in_the_auditors_scope(vn_admin, vn_auditor, kh_auditor, key):
    approve(key, 10, admin=vn_admin, auditor=vn_auditor)
    reads(range(16), user=key.user, key=key)
    assert bulk(vn_auditor) == [(key.user.username, 16, 10)]
    assert bulk(kh_auditor) == []


def test_the_flags_api_gives_the_approved_volume(api, un_auditor, vn_admin, vn_auditor, vn_officer, key):
    approve(key, 10, admin=vn_admin, auditor=vn_auditor)
    reads(range(16), user=key.user, key=key)
    reads(range(5), user=vn_officer)
    api.force_authenticate(un_auditor)
    period = {name: moment.isoformat() for name, moment in PERIOD.items()}
    body = api.get("/api/v1/audit/flags/", period).json()
    assert [(row["actor_label"], row["count"], row["declared_daily_reads"]) for row in body[BULK_READS]] == [
        ("vn.officer", 5, None),
        (key.user.username, 16, 10),
    ]


def test_the_flags_page_says_how_sync_keys_are_judged(client, portal_login, un_auditor, vn_admin, vn_auditor, key):
    approve(key, 10, admin=vn_admin, auditor=vn_auditor)
    reads(range(16), user=key.user, key=key)
    portal_login(un_auditor)
    response = client.get("/audit/flags/", {name: moment.isoformat() for name, moment in PERIOD.items()})
    page = response.content.decode()
    assert "more than 150% of its approved daily volume in one day" in page
    assert "16 (approved: 10 a day)" in page


def test_a_sync_key_within_its_volume_reading_items_of_many_countries_raises_no_flag(
    un_auditor, vn_admin, vn_auditor, vn_officer, key
):
    """A sync reads whatever its agency holds, from every country that shares with it; a person reading as widely
    in a day is flagged."""
    from audit.flags import MANY_COUNTRIES

    approve(key, 100, admin=vn_admin, auditor=vn_auditor)
    for reader, api_key in ((key.user, key), (vn_officer, None)):
        for hour, country in enumerate(["VN", "KH", "LA", "TH", "CN"]):
            AuditEvent.objects.create(
                created_at=T0 + timedelta(hours=hour),
                action="messaging.item.read",
                actor_user=reader,
                actor_api_key_id=api_key.pk if api_key else None,
                actor_label=reader.username,
                actor_country="VN",
                target_country=country,
            )
    flags = flags_for(un_auditor, **PERIOD)
    assert [flag.actor_label for flag in flags[MANY_COUNTRIES]] == ["vn.officer"]
    assert not [flag for found in flags.values() for flag in found if flag.actor_user_id == key.user.pk]
