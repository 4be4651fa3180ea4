"""The portal in a real browser: Debian's Chromium under Playwright, against the live test server.

Each test signs people in through the sign-in pages (password, then the authenticator's code), and fails if any page
it visits reports a Content-Security-Policy violation or a script error (see ``new_page`` in conftest.py).
Screenshots are kept in test-artifacts/.
"""

from __future__ import annotations

import pytest

from messaging.models import Acknowledgement, Item, ItemCountryGrant
from tests.portal.conftest import route, screenshot, sign_in_through_ui

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PHONE = {"width": 360, "height": 740}


@pytest.fixture
def flash_and_routine(net, post):
    """A FLASH item routed to Cambodia, older than a routine one: the FLASH one must still come first."""
    vn = net.user("vn.officer")
    flash = post(vn, title="FLASH: convoy crossing at Bavet tonight", priority="flash", countries=["VN", "KH"])
    route(flash)
    routine = post(vn, title="Routine: precursor prices at Moc Bai market", countries=["VN", "KH"])
    route(routine)
    return flash, routine


def test_an_officer_signs_in_and_finds_the_flash_item_pinned(net, flash_and_routine, page):
    flash, _routine = flash_and_routine
    sign_in_through_ui(page, net.user("kh.officer"))
    page.click("header nav >> text=Inbox")
    page.wait_for_url("**/items/")
    pinned = page.locator("section.pinned")
    assert pinned.locator("a", has_text="FLASH: convoy crossing at Bavet tonight").count() == 1
    titles = page.locator("ul.items li > a").all_inner_texts()
    assert "convoy crossing at Bavet" in titles[0]
    assert "precursor prices" in titles[1]
    assert all(title.startswith("New") for title in titles)  # unread, said in words
    assert page.locator("ul.items li.unread a").first.evaluate("a => getComputedStyle(a).fontWeight") == "700"
    screenshot(page, "inbox-flash-pinned")
    page.locator("section.pinned a").first.click()
    page.wait_for_url(f"**/items/{flash.pk}/")
    assert page.locator("h1").inner_text() == "FLASH: convoy crossing at Bavet tonight"


def test_reading_and_acknowledging_with_javascript_disabled(net, flash_and_routine, new_page):
    flash, _routine = flash_and_routine
    page = new_page(java_script_enabled=False)
    sign_in_through_ui(page, net.user("kh.officer"))  # signing in needs no JavaScript either
    page.goto(f"/items/{flash.pk}/")
    assert "Two lorries" in page.locator(".body").inner_text()
    page.select_option("select[name=note]", "operation_planned")
    page.fill("textarea[name=note_text]", "Team in place at 05:00")
    page.click("form[action$='/acknowledge/'] button[type=submit]")
    page.wait_for_url(f"**/items/{flash.pk}/")
    assert "Acknowledged for your agency" in page.locator("main").inner_text()
    screenshot(page, "item-acknowledged-without-javascript")
    ack = Acknowledgement.objects.get(item=flash)
    assert (ack.agency_id, ack.note) == (net.kh.pk, "operation_planned")
    page.goto("/items/")
    assert page.locator("section.pinned").count() == 0


def test_composing_a_flash_item_asks_for_its_confirmation(net, page):
    sign_in_through_ui(page, net.user("vn.officer"), next_path="/items/new/")
    page.wait_for_url("**/items/new/")
    confirm = page.locator("[data-flash-confirm]")
    assert confirm.is_hidden()  # shown only while FLASH is chosen (the server checks it either way)
    page.fill("input[name=title]", "Crystal methamphetamine in a tour bus")
    page.fill("textarea[name=body]", "A tour bus with a false floor; the driver is known to us.")
    page.select_option("select[name=category]", "meth_crystal")
    page.select_option("select[name=source_reliability]", "B")
    page.select_option("select[name=info_credibility]", "2")
    page.check("input[name=countries][value=KH]")
    page.check("input[name=priority][value=flash]")
    page.check("input[name=discoverable][value=yes]")
    assert confirm.is_visible()
    screenshot(page, "compose-flash")
    page.click("text=Post the item")
    assert "Tick the confirmation to post a FLASH item" in page.locator("main").inner_text()
    assert not Item.objects.exists()
    page.check("input[name=flash_confirmed]")
    page.click("text=Post the item")
    page.wait_for_url("**/items/*-*/")
    assert "FLASH item posted" in page.locator("main").inner_text()
    item = Item.objects.get()
    assert (item.priority, item.category) == ("flash", "meth_crystal")
    assert set(ItemCountryGrant.objects.filter(item=item).values_list("country_id", flat=True)) == {"VN", "KH"}


def test_pages_fit_a_phone_360_px_wide(net, flash_and_routine, new_page):
    flash, _routine = flash_and_routine
    page = new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    sign_in_through_ui(page, net.user("kh.officer"))
    for path, name in (
        ("/items/", "phone-inbox"),
        (f"/items/{flash.pk}/", "phone-item"),
        ("/items/new/", "phone-compose"),
        ("/notifications/", "phone-notifications"),
        ("/directory/", "phone-directory"),
    ):
        page.goto(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} scrolls sideways: {width} px"
        screenshot(page, name)


def test_a_supervisor_reads_the_statistics(net, flash_and_routine, page):
    sign_in_through_ui(page, net.user("kh.supervisor"))
    page.click("header nav >> text=Statistics")
    page.wait_for_url("**/statistics/")
    assert page.locator("svg.chart rect").count() == 12
    assert "Viet Nam" in page.locator("table").first.inner_text() or page.locator("table").count() > 1
    screenshot(page, "statistics")
