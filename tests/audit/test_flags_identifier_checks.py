"""The auditors' flags on identifier checks (issue 15): many identifiers checked, and hits across many countries.

Events are crafted as ``messaging.matching`` records them: one ``messaging.match.check`` per check with its number of
identifiers, one ``messaging.match.hit`` per hit filed under the holder's country.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from agencies.api_keys import api_key_issue
from audit.flags import HIT_COUNTRIES, MANY_IDENTIFIERS, flags_for
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
PERIOD = {"since": T0 - timedelta(days=2), "until": T0 + timedelta(days=2)}


@pytest.fixture(autouse=True)
def _small_thresholds(settings):
    settings.AUDIT_FLAGS = {"IDENTIFIERS_CHECKED_MORE_THAN": 100, "HIT_COUNTRIES_AT_LEAST": 3}


def check(hours: float, user, identifiers: int, *, country="KH", key=None) -> AuditEvent:
    return AuditEvent.objects.create(
        created_at=T0 + timedelta(hours=hours),
        action="messaging.match.check",
        actor_user=user,
        actor_api_key_id=key.pk if key else None,
        actor_label=user.username,
        actor_country=country,
        target_country=country,
        details={"origin": "check", "identifiers": identifiers, "hits": 0},
    )


def hit(hours: float, user, holder_country: str, *, country="KH") -> AuditEvent:
    return AuditEvent.objects.create(
        created_at=T0 + timedelta(hours=hours),
        action="messaging.match.hit",
        actor_user=user,
        actor_label=user.username,
        actor_country=country,
        target_country=holder_country,
        details={"entity_type": "phone"},
    )


def summary(flags):
    return [(flag.actor_label, flag.count) for flag in flags]


def test_more_identifiers_than_allowed_in_a_day_are_flagged(un_auditor, kh_officer, th_officer):
    for hours in (0, 4, 8):  # 150 identifiers in eight hours
        check(hours, kh_officer, 50)
    for hours in (0, 25, 50):  # 50 a day for three days is not too many in any day
        check(hours, th_officer, 50, country="TH")
    flags = flags_for(un_auditor, **PERIOD)[MANY_IDENTIFIERS]
    assert summary(flags) == [("kh.officer", 150)]
    assert flags[0].window_minutes == 24 * 60
    assert flags[0].actor_user_id == kh_officer.pk


def test_exactly_the_limit_is_not_flagged(un_auditor, kh_officer):
    check(0, kh_officer, 50)
    check(1, kh_officer, 50)
    assert flags_for(un_auditor, **PERIOD)[MANY_IDENTIFIERS] == []


def test_a_key_is_counted_apart_from_the_person_who_issued_it(un_auditor, vn_admin, vn_agency, vn_officer):
    key = api_key_issue(
        actor=vn_admin, agency=vn_agency, name="case system", scopes=["read"], expires_at=timezone.now() + timedelta(1)
    ).key
    for hours in (0, 1, 2):
        check(hours, key.user, 50, country="VN", key=key)
    check(3, vn_officer, 50, country="VN")
    flags = flags_for(un_auditor, **PERIOD)[MANY_IDENTIFIERS]
    assert [(flag.actor_api_key_id, flag.count) for flag in flags] == [(key.pk, 150)]


def test_hits_in_many_countries_in_a_day_are_flagged(un_auditor, kh_officer, th_officer):
    for hours, holder in ((0, "VN"), (2, "TH"), (3, "VN"), (5, "LA")):
        hit(hours, kh_officer, holder)
    for hours, holder in ((0, "VN"), (2, "KH"), (30, "LA")):  # three countries, but not within a day
        hit(hours, th_officer, holder, country="TH")
    flags = flags_for(un_auditor, **PERIOD)[HIT_COUNTRIES]
    assert summary(flags) == [("kh.officer", 3)]


def test_national_auditors_see_the_hits_filed_under_their_country(vn_auditor, kh_auditor, kh_officer):
    for hours, holder in ((0, "VN"), (1, "TH"), (2, "LA")):
        hit(hours, kh_officer, holder)
    # A Cambodian's hits are filed under Cambodia, and each under its holder's country too: Cambodia's auditors see
    # all three countries; Viet Nam's see the one hit on a Vietnamese item, not enough to flag.
    assert summary(flags_for(kh_auditor, **PERIOD)[HIT_COUNTRIES]) == [("kh.officer", 3)]
    assert flags_for(vn_auditor, **PERIOD)[HIT_COUNTRIES] == []


def test_the_flags_page_shows_both_new_flags(un_auditor, kh_officer, client, portal_login):
    for hours in (0, 1, 2):
        check(hours, kh_officer, 50)
    portal_login(un_auditor)
    response = client.get("/audit/flags/", {"since": PERIOD["since"].isoformat(), "until": PERIOD["until"].isoformat()})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Many identifiers checked" in page
    assert "Hits across many countries" in page
    assert "kh.officer" in page
