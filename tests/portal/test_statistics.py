"""The MOU's indicators: counts and durations only, each viewer's numbers only within their scope, CSV like the page,
and every look recorded."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from agencies.models import AgencyKind, Role
from audit.models import AuditEvent
from messaging.items.acknowledgement import item_acknowledge
from messaging.items.changes import item_change, item_withdraw, items_expire
from messaging.models import (
    ConsentRequest,
    Item,
    ItemStatus,
    Rfi,
)
from messaging.models.delivery import Delivery
from messaging.selectors.statistics import Period, items_exchanged, statistics_scope
from tests.auth import sign_in
from tests.factories import AgencyFactory, MembershipFactory, UserFactory, country
from tests.portal.conftest import route

pytestmark = pytest.mark.django_db

SECRET_TITLE = "Statistics canary convoy"
AGENCY_NOTE = (
    "Counted: items your agency posted or was released at the time, withdrawn and expired ones included; never an "
    "item restricted away from your agency."
)
NETWORK_NOTE = (
    "Counted: every item released from one member to another at the time, withdrawn and expired ones included."
)


@pytest.fixture
def traffic(net, post):
    """VN->KH three times (once also to LA, once FLASH), TH->LA once, TH alone once; two RFIs; a consent request."""
    vn, th = net.user("vn.officer"), net.user("th.officer")
    post(vn, title=SECRET_TITLE, countries=["VN", "KH"])
    post(vn, countries=["VN", "KH", "LA"])
    post(th, countries=["TH", "LA"])
    post(th, countries=["TH"])
    flash = post(vn, priority="flash", countries=["VN", "KH"])
    route(flash)
    # Cambodia's Anti-Drug Department acknowledges ten minutes after routing; its customs agency has not yet.
    Delivery.objects.filter(item=flash).update(routed_at=timezone.now() - timedelta(minutes=10))
    item_acknowledge(actor=net.user("kh.officer"), item_id=flash.pk)
    now = timezone.now()
    Rfi.objects.create(
        requester_agency=net.vn, requester_user=vn, target_agency=net.kh, requester_country="VN", target_country="KH",
        subject_sealed=b"sealed", question_sealed=b"sealed", due_at=now + timedelta(days=1),
        created_at=now - timedelta(hours=3), answered_at=now - timedelta(hours=1), status="answered",
    )  # fmt: skip
    Rfi.objects.create(
        requester_agency=net.la, requester_user=net.user("la.supervisor"), target_agency=net.th,
        requester_country="LA", target_country="TH", subject_sealed=b"sealed", question_sealed=b"sealed",
        due_at=now + timedelta(days=1),
    )  # fmt: skip
    ConsentRequest.objects.create(
        item=flash, requester_agency=net.kh, requester_user=net.user("kh.officer"), target_country=country("TH"),
        justification_sealed=b"sealed", status="declined", due_at=now + timedelta(days=2),
    )  # fmt: skip
    return flash


def _member(username: str, code: str, role: str):
    agency = AgencyFactory(country=country(code), name=f"{username} agency", short_name=username[:32],
                           kind=AgencyKind.UNODC if code == "UN" else AgencyKind.POLICE)  # fmt: skip
    return MembershipFactory(user=UserFactory(username=username), agency=agency, role=role).user


def _pairs(client: Client) -> dict[tuple[str, str], int]:
    response = client.get("/statistics/", {"format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    return {(r["from_country"], r["to_country"]): int(r["count"]) for r in rows if r["indicator"] == "items_exchanged"}


def test_who_may_see_statistics(net, outsider):
    un_supervisor = _member("un.supervisor", "UN", Role.SUPERVISOR)
    un_officer = _member("un.officer", "UN", Role.OFFICER)
    regional = _member("un.regional", "UN", Role.REGIONAL_AUDITOR)
    assert statistics_scope(net.user("la.supervisor")) == "LA"
    assert statistics_scope(net.user("kh.focal")) == "KH"
    assert statistics_scope(un_supervisor) == ""
    assert statistics_scope(regional) == ""
    for user in (net.user("kh.officer"), net.user("kh.auditor"), net.user("kh.admin"), un_officer, outsider):
        assert statistics_scope(user) is None
        client = sign_in(Client(), user)
        assert client.get("/statistics/").status_code == 403, user
        assert client.get("/statistics/", {"format": "csv"}).status_code == 403, user
    assert AuditEvent.objects.filter(action="access.denied", details__view="portal:statistics").count() == 10
    assert not AuditEvent.objects.filter(action__startswith="messaging.statistics").exists()


def test_a_lao_supervisor_sees_only_what_touches_lao_pdr(net, traffic):
    client = sign_in(Client(), net.user("la.supervisor"))
    assert _pairs(client) == {("VN", "LA"): 1, ("TH", "LA"): 1}
    page = client.get("/statistics/").content.decode()
    assert "Viet Nam" in page
    assert "Lao PDR" in page
    assert "Cambodia" not in page  # no VN<->KH traffic, no KH acknowledgement times, no consent about VN's item
    assert SECRET_TITLE not in page


def test_a_cambodian_focal_point_and_unodc_see_their_scopes(net, traffic):
    kh = sign_in(Client(), net.user("kh.focal"))
    assert _pairs(kh) == {("VN", "KH"): 3}
    un = sign_in(Client(), _member("un.supervisor", "UN", Role.SUPERVISOR))
    assert _pairs(un) == {("VN", "KH"): 3, ("VN", "LA"): 1, ("TH", "LA"): 1}
    regional = sign_in(Client(), _member("un.regional", "UN", Role.REGIONAL_AUDITOR))
    assert _pairs(regional) == _pairs(un)


def test_flash_rfi_and_consent_indicators(net, traffic):
    response = sign_in(Client(), net.user("kh.focal")).get("/statistics/", {"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    flash = [r for r in rows if r["indicator"] == "flash_acknowledgement"]
    assert [(r["to_country"], r["count"], r["waiting"]) for r in flash] == [("KH", "1", "1")]  # ADD acked, GDCE not
    assert 9.5 <= float(flash[0]["median"]) <= 11
    assert flash[0]["unit"] == "minutes"
    rfis = [r for r in rows if r["indicator"] == "rfi_response"]
    assert [(r["to_country"], r["count"], r["waiting"], r["median"]) for r in rfis] == [("KH", "1", "0", "2.0")]
    consents = [r for r in rows if r["indicator"] == "consent_decision"]
    assert [(r["from_country"], r["status"], r["count"]) for r in consents] == [("VN", "declined", "1")]
    assert SECRET_TITLE not in response.content.decode()


def test_viewing_and_exporting_are_recorded(net, traffic):
    user = net.user("la.supervisor")
    client = sign_in(Client(), user)
    assert client.get("/statistics/").status_code == 200
    client.get("/statistics/", {"format": "csv", "since": "2020-01", "until": "2020-12"})
    view = AuditEvent.objects.get(action="messaging.statistics.view")
    assert view.actor_user_id == user.pk
    assert view.details["scope"] == "LA"
    export = AuditEvent.objects.get(action="messaging.statistics.export")
    assert export.details == {"scope": "LA", "since": "2020-01-01", "until": "2020-12-01", "rows": 0, "format": "csv"}


def test_the_page_draws_its_charts_without_any_outside_service(net, traffic):
    page = sign_in(Client(), _member("un.supervisor", "UN", Role.SUPERVISOR)).get("/statistics/").content.decode()
    assert page.count("<svg") >= 5
    assert "<rect" in page
    assert "http://" not in page.split("<main>")[1]
    assert "https://" not in page.split("<main>")[1]
    assert "?format=csv" in page


def test_a_period_out_of_order_is_refused_with_a_message(net):
    client = sign_in(Client(), net.user("la.supervisor"))
    response = client.get("/statistics/", {"since": "2026-05", "until": "2026-01"})
    assert response.status_code == 400
    assert "The first month must not be after the last." in response.content.decode()
    assert client.get("/statistics/", {"since": "May"}).status_code == 400


def test_period_months_and_bounds():
    period = Period(since=timezone.datetime(2025, 11, 1).date(), until=timezone.datetime(2026, 2, 1).date())
    assert [m.isoformat() for m in period.months()] == ["2025-11-01", "2025-12-01", "2026-01-01", "2026-02-01"]
    assert period.end.isoformat() == "2026-03-01T00:00:00+00:00"


def test_items_exchanged_refuses_an_officer(net):
    from isn.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        items_exchanged(net.user("kh.officer"), period=Period(since=timezone.now().date(), until=timezone.now().date()))


# --- what counts for an agency: what it posted or was released at the time (issue 14, points 7 and 17) ---------


def _red_to_customs(net, post):
    """A TLP:RED Vietnamese item released to Cambodia's customs (GDCE) alone, routed: never Cambodia's ADD's."""
    item = post(net.user("vn.officer"), countries=["VN", "KH"], agencies=[net.kh_customs.pk], handling_code="red")
    route(item)
    return item


def test_a_cambodian_supervisor_never_counts_an_item_restricted_to_another_cambodian_agency(net, post):
    _red_to_customs(net, post)
    customs_supervisor = MembershipFactory(
        user=UserFactory(username="kh.customs.supervisor"), agency=net.kh_customs, role=Role.SUPERVISOR
    ).user
    add = sign_in(Client(), net.user("kh.supervisor"))
    assert _pairs(add) == {}
    page = add.get("/statistics/").content.decode()
    assert "0 items released from one member to another in this period." in page
    assert _pairs(sign_in(Client(), customs_supervisor)) == {("VN", "KH"): 1}
    assert _pairs(sign_in(Client(), net.user("vn.focal"))) == {("VN", "KH"): 1}


def test_an_item_restricted_away_from_the_agency_stays_uncounted_once_withdrawn_or_expired(net, post):
    """Ending an item deletes its agency restriction with its grants: what remains must not count it for ADD."""
    withdrawn, expired = _red_to_customs(net, post), _red_to_customs(net, post)
    item_withdraw(actor=net.user("vn.officer"), item_id=withdrawn.pk)
    Item.objects.filter(pk=expired.pk).update(review_date=timezone.now().date() - timedelta(days=1))
    assert items_expire() == 1
    assert _pairs(sign_in(Client(), net.user("kh.supervisor"))) == {}
    assert _pairs(sign_in(Client(), net.user("kh.focal"))) == {}
    assert _pairs(sign_in(Client(), net.user("vn.focal"))) == {("VN", "KH"): 2}


def test_withdrawn_and_expired_items_that_reached_the_agency_still_count(net, post):
    vn = net.user("vn.officer")
    withdrawn, expired = post(vn, countries=["VN", "KH"]), post(vn, countries=["VN", "KH", "LA"])
    route(withdrawn)
    route(expired)
    item_withdraw(actor=vn, item_id=withdrawn.pk)
    Item.objects.filter(pk=expired.pk).update(review_date=timezone.now().date() - timedelta(days=1))
    assert items_expire() == 1
    assert not Item.objects.filter(status=ItemStatus.ACTIVE).exists()
    assert _pairs(sign_in(Client(), net.user("kh.supervisor"))) == {("VN", "KH"): 2}
    assert _pairs(sign_in(Client(), net.user("vn.focal"))) == {("VN", "KH"): 2, ("VN", "LA"): 1}
    assert _pairs(sign_in(Client(), net.user("la.supervisor"))) == {("VN", "LA"): 1}
    un = _pairs(sign_in(Client(), _member("un.supervisor", "UN", Role.SUPERVISOR)))
    assert un == {("VN", "KH"): 2, ("VN", "LA"): 1}


def test_a_narrowing_keeps_what_was_released_at_the_time(net, post):
    """Released to every Cambodian agency and routed, then narrowed to customs: ADD was released it at the time and
    keeps counting it; narrowed before any routing, ADD never held it and never counts it."""
    vn = net.user("vn.officer")
    held = post(vn, countries=["VN", "KH"])
    route(held)
    item_change(actor=vn, item_id=held.pk, agencies=[net.kh_customs.pk])
    never = post(vn, countries=["VN", "KH"])
    item_change(actor=vn, item_id=never.pk, agencies=[net.kh_customs.pk])
    route(never)
    assert _pairs(sign_in(Client(), net.user("kh.supervisor"))) == {("VN", "KH"): 1}
    assert _pairs(sign_in(Client(), net.user("vn.focal"))) == {("VN", "KH"): 2}


def _indicators(client: Client, indicator: str) -> list[dict[str, str]]:
    rows = csv.DictReader(io.StringIO(client.get("/statistics/", {"format": "csv"}).content.decode()))
    return [row for row in rows if row["indicator"] == indicator]


def test_flash_rfi_and_consent_counts_leave_out_another_cambodian_agencys_items(net, post):
    """The other indicators follow the same rule: ADD's supervisor does not learn of a FLASH item, a request or a
    consent request that only customs (GDCE) had."""
    vn = net.user("vn.officer")
    flash = post(vn, countries=["VN", "KH"], agencies=[net.kh_customs.pk], handling_code="red", priority="flash")
    route(flash)
    now = timezone.now()
    Rfi.objects.create(
        requester_agency=net.vn, requester_user=vn, target_agency=net.kh_customs, requester_country="VN",
        target_country="KH", subject_sealed=b"sealed", question_sealed=b"sealed", due_at=now + timedelta(days=1),
    )  # fmt: skip
    ConsentRequest.objects.create(
        item=flash, requester_agency=net.kh_customs, requester_user=net.user("kh.customs"),
        target_country=country("TH"), justification_sealed=b"sealed", status="pending", due_at=now + timedelta(days=2),
    )  # fmt: skip
    add = sign_in(Client(), net.user("kh.supervisor"))
    for indicator in ("items_exchanged", "flash_acknowledgement", "rfi_response", "consent_decision"):
        assert _indicators(add, indicator) == [], indicator
    customs = sign_in(
        Client(),
        MembershipFactory(
            user=UserFactory(username="kh.customs.supervisor"), agency=net.kh_customs, role=Role.SUPERVISOR
        ).user,
    )
    assert [(r["to_country"], r["waiting"]) for r in _indicators(customs, "flash_acknowledgement")] == [("KH", "1")]
    assert [(r["to_country"], r["waiting"]) for r in _indicators(customs, "rfi_response")] == [("KH", "1")]
    assert [(r["from_country"], r["status"]) for r in _indicators(customs, "consent_decision")] == [("VN", "pending")]


def test_the_page_says_what_is_counted(net, traffic):
    kh = sign_in(Client(), net.user("kh.supervisor")).get("/statistics/").content.decode()
    assert AGENCY_NOTE in kh
    un = sign_in(Client(), _member("un.supervisor", "UN", Role.SUPERVISOR)).get("/statistics/").content.decode()
    assert NETWORK_NOTE in un
    assert AGENCY_NOTE not in un
