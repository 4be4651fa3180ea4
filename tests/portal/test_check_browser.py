"""Checking identifiers in a real browser on a phone 360 px wide, with JavaScript off: a Cambodian officer checks a
plate, gets a hit on a Viet Nam item, asks BGC from it; the Viet Nam originator sees the hit on the tracking page."""

from __future__ import annotations

import pytest

from messaging.models import Hit, Rfi
from tests.portal.conftest import screenshot, sign_in_through_ui

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PHONE = {"width": 360, "height": 740}
PLATE = {"type": "vehicle", "plate": "51C-123.45", "country": "VN"}


def fits(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} scrolls sideways: {width} px"


def test_check_a_plate_ask_the_holder_and_see_the_hit_on_a_phone_without_javascript(net, post, new_page):
    item = post(net.user("vn.officer"), countries=["VN"], entities=[PLATE], discoverable=True)
    page = new_page(viewport=PHONE, is_mobile=True, has_touch=True, java_script_enabled=False)
    sign_in_through_ui(page, net.user("kh.officer"), next_path="/check/")
    page.wait_for_url("**/check/")
    fits(page)
    page.select_option("select[name=row-0-entity_type]", "vehicle")
    page.fill("input[name=row-0-value]", "51c 123 45")
    page.select_option("select[name=row-0-country]", "VN")
    page.click("button[name=check]")
    answer = page.locator("[data-answers]")
    assert "An agency in Viet Nam (BGC) holds something on this" in answer.inner_text()
    fits(page)
    screenshot(page, "phone-check-identifiers-hit")
    hit = Hit.objects.get()
    page.click(f"[data-ask='{hit.reference}']")
    page.wait_for_url("**/rfis/new/?hit=*")
    page.fill("input[name=subject]", "Plate 51C-123.45")
    page.fill("textarea[name=question]", "Our check of this plate hit an item of yours: can you share it?")
    page.click("form[data-form=rfi] button[type=submit]")
    page.wait_for_url("**/rfis/*-*/")
    rfi = Rfi.objects.get()
    assert (rfi.hit_id, rfi.target_agency_id) == (hit.pk, net.vn.pk)
    assert str(item.pk) not in page.content()

    holder = new_page(viewport=PHONE, is_mobile=True, has_touch=True, java_script_enabled=False)
    sign_in_through_ui(holder, net.user("vn.officer"), next_path=f"/items/{item.pk}/tracking/")
    holder.wait_for_url(f"**/items/{item.pk}/tracking/")
    row = holder.locator(f"[data-hit='{hit.reference}']")
    assert "kh.officer" in row.inner_text()
    fits(holder)
    screenshot(holder, "phone-tracking-hits")
