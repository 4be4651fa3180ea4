"""The "Check identifiers" page, through the test client with the real discovery service: related items with links,
hits with their holder and an "Ask them" link, bad values named on their row, the quota's refusal with its reset."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from agencies.models import Membership
from audit.models import AuditEvent
from messaging.models import CheckOrigin, Hit, MatchCheck, Notification, NotificationKind
from tests.auth import sign_in
from tests.messaging.network import post_item

pytestmark = pytest.mark.django_db

PLATE = {"type": "vehicle", "plate": "51C-123.45", "country": "VN"}


def rows(*identifiers: tuple[str, str, str, str], more: bool = False, total: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"row-TOTAL_FORMS": str(total or max(len(identifiers), 1)), "row-INITIAL_FORMS": "0"}
    for index, (entity_type, value, country, detail) in enumerate(identifiers):
        data |= {
            f"row-{index}-entity_type": entity_type,
            f"row-{index}-value": value,
            f"row-{index}-country": country,
            f"row-{index}-detail": detail,
        }
    data["more" if more else "check"] = "1"
    return data


@pytest.fixture
def held(net):
    """Viet Nam BGC holds the plate in a FLASH item released to Viet Nam only, discoverable."""
    return post_item(net.user("vn.officer"), countries=["VN"], priority="flash", entities=[PLATE], discoverable=True)


def test_the_page_offers_rows_with_the_viewers_country_and_a_nav_link(net):
    kh = sign_in(Client(), net.user("kh.officer"))
    page = kh.get("/check/").content.decode()
    assert page.count('data-row="') == 5
    assert re.search(r'<option value="KH" selected>', page)
    assert 'href="/check/"' in page
    assert 'data-nav="check"' in page


def test_a_hit_shows_only_the_holders_agency_country_and_reference_with_ask_them(net, held):
    kh = sign_in(Client(), net.user("kh.officer"))
    response = kh.post("/check/", rows(("vehicle", "51c 12345", "VN", "")))
    page = response.content.decode()
    assert response.status_code == 200
    hit = Hit.objects.get()
    assert f'data-hit="{hit.reference}"' in page
    assert "An agency in Viet Nam (BGC) holds something on this" in page
    assert f'href="/rfis/new/?hit={hit.reference}"' in page
    assert str(held.pk) not in page
    assert "Meth pills" not in page
    assert AuditEvent.objects.filter(action="messaging.match.check", actor_user=net.user("kh.officer")).exists()
    # FLASH: Viet Nam's officers are told at once.
    told = Notification.objects.filter(hit=hit, kind=NotificationKind.HIT_ON_ITEM).values_list("user__username")
    assert {name for (name,) in told} == {"vn.officer", "vn.focal"}
    # And "Ask them" opens the request form for BGC, with the reference.
    ask = kh.get(f"/rfis/new/?hit={hit.reference}").content.decode()
    assert f'name="hit_reference" value="{hit.reference}"' in ask


def test_related_items_the_viewer_can_read_are_linked(net, held):
    mine = post_item(net.user("vn.officer"), countries=["VN", "KH"], entities=[PLATE], discoverable=False)
    vn = sign_in(Client(), net.user("vn.officer"))
    page = vn.post("/check/", rows(("vehicle", "51C12345", "VN", ""))).content.decode()
    assert 'data-related="2"' in page
    assert f'href="/items/{mine.pk}/"' in page
    assert f'href="/items/{held.pk}/"' in page
    assert "data-hit=" not in page  # one's own agency's items are related, never hits
    # The item page says it too.
    item_page = vn.get(f"/items/{mine.pk}/").content.decode()
    assert 'data-related="1"' in item_page
    assert f'href="/items/{held.pk}/"' in item_page


def test_no_match_says_so(net, held):
    kh = sign_in(Client(), net.user("kh.officer"))
    page = kh.post("/check/", rows(("phone", "012 345 678", "KH", ""))).content.decode()
    assert "No match" in page
    assert not Hit.objects.exists()


def test_a_bad_value_is_named_on_its_row_and_nothing_is_checked(net, held):
    kh = sign_in(Client(), net.user("kh.officer"))
    response = kh.post("/check/", rows(("vehicle", "51C12345", "VN", ""), ("precursor", "50-00-1", "", "")))
    page = response.content.decode()
    assert response.status_code == 400
    row = page.split('data-row="1"')[1].split("</fieldset>")[0]
    assert page.split('data-row="1"')[0].endswith('<fieldset class="grid invalid" ')
    assert "check digit" in row.split('name="row-1-value"')[1]  # on the value's own input
    assert "errorlist" not in page.split('data-row="1"')[0].split('data-row="0"')[1]  # the good row is untouched
    assert not MatchCheck.objects.filter(origin=CheckOrigin.CHECK).exists()
    assert not Hit.objects.exists()


def test_a_row_without_a_type_is_refused_on_that_row(net):
    kh = sign_in(Client(), net.user("kh.officer"))
    response = kh.post("/check/", rows(("", "51C12345", "VN", "")))
    assert response.status_code == 400
    assert "Choose what type of identifier this is" in response.content.decode()
    assert not MatchCheck.objects.filter(origin=CheckOrigin.CHECK).exists()


def test_over_the_quota_the_page_says_when_it_resets(net, held, settings):
    settings.ISN_MATCH_DAILY_PER_PERSON = 1
    kh = sign_in(Client(), net.user("kh.officer"))
    response = kh.post("/check/", rows(("vehicle", "51C12345", "VN", ""), ("phone", "012 345 678", "KH", "")))
    page = response.content.decode()
    assert response.status_code == 429
    assert "daily quota of 1 identifiers" in page
    assert re.search(r"resets at \d{4}-\d\d-\d\d 00:00 UTC", page)
    assert not Hit.objects.exists()


def test_more_rows_keep_what_was_typed_without_checking(net):
    kh = sign_in(Client(), net.user("kh.officer"))
    page = kh.post("/check/", rows(("vehicle", "51C12345", "VN", ""), more=True, total=5)).content.decode()
    assert page.count('data-row="') == 10
    assert 'value="51C12345"' in page
    assert not MatchCheck.objects.filter(origin=CheckOrigin.CHECK).exists()


def test_at_most_fifty_identifiers(net):
    kh = sign_in(Client(), net.user("kh.officer"))
    many = [("phone", f"012 345 {n:03d}", "KH", "") for n in range(51)]
    response = kh.post("/check/", rows(*many))
    assert response.status_code == 400
    assert not MatchCheck.objects.filter(origin=CheckOrigin.CHECK).exists()
    page = kh.post("/check/", rows(("phone", "012", "KH", ""), more=True, total=50)).content.decode()
    assert page.count('data-row="') == 50
    assert 'name="more"' not in page


def test_auditors_may_not_check(net):
    response = sign_in(Client(), net.user("kh.auditor")).get("/check/")
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("language", "heading", "hit_line"),
    [
        ("th", "ตรวจสอบตัวระบุ", "หน่วยงานใน"),
        ("km", "ពិនិត្យអត្តសញ្ញាណសម្គាល់", "ស្ថាប័នមួយនៅ"),
        ("vi", "Kiểm tra định danh", "Một cơ quan ở"),
    ],
)
def test_the_page_and_its_answers_in_the_members_language(net, held, language, heading, hit_line):
    Membership.objects.filter(user=net.user("kh.officer")).update(language=language)
    kh = sign_in(Client(), net.user("kh.officer"))
    page = kh.post("/check/", rows(("vehicle", "51C12345", "VN", ""))).content.decode()
    assert f"<h1>{heading}</h1>" in page
    assert hit_line in page
    assert "holds something on this" not in page
