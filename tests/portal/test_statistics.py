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
from messaging.models import (
    ConsentRequest,
    Rfi,
)
from messaging.models.delivery import Delivery
from messaging.selectors.statistics import Period, items_exchanged, statistics_scope
from tests.auth import sign_in
from tests.factories import AgencyFactory, MembershipFactory, UserFactory, country
from tests.portal.conftest import route

pytestmark = pytest.mark.django_db

SECRET_TITLE = "Statistics canary convoy"


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
