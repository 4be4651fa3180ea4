"""Entities in compose, in a real browser without JavaScript, on a phone 360 px wide, in Thai: a phone number typed in
Thai digits and a vehicle, an error that keeps everything typed, then the item page listing both."""

from __future__ import annotations

import pytest

from agencies.models import Membership
from messaging.models import Item, ItemEntity, MatchToken
from tests.portal.conftest import screenshot, sign_in_through_ui

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PHONE = {"width": 360, "height": 740}
FORM = "main form[enctype='multipart/form-data']"


def _fits(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} scrolls sideways: {width} px"


def _press(page, selector: str) -> None:
    """A submit button of the compose form: without JavaScript, the form comes back from the server."""
    with page.expect_navigation():
        page.locator(selector).click()
    assert page.locator("html").get_attribute("lang") == "th"


def test_a_thai_officer_adds_a_phone_and_a_vehicle_without_javascript_on_a_phone(net, new_page):
    officer = net.user("th.officer")
    Membership.objects.filter(user=officer).update(language="th")
    page = new_page(java_script_enabled=False, viewport=PHONE, is_mobile=True, has_touch=True)
    sign_in_through_ui(page, officer)
    page.goto("/items/new/")
    assert page.locator("html").get_attribute("lang") == "th"
    page.fill("input[name=title]", "รถกระบะขนยาบ้าผ่านเชียงแสน")
    page.fill("textarea[name=body]", "รถกระบะสีขาว ผู้ขับติดต่อทางโทรศัพท์")
    page.select_option("select[name=category]", "meth_pills")
    page.select_option("select[name=source_reliability]", "B")
    page.select_option("select[name=info_credibility]", "2")
    page.check("input[name=countries][value=LA]")

    # The first row: a phone. Its fields appear once the type is chosen; its country starts as Thailand.
    page.select_option("select[name=entities-0-type]", "phone")
    _press(page, "#entity-1 button[name=entity_action]")
    assert page.locator("select[name=entities-0-phone__country]").input_value() == "TH"
    page.fill("input[name=entities-0-phone__number]", "๑๒")  # a slip: too short to be a number
    _fits(page)

    # One more row: everything typed so far comes back.
    _press(page, "button[name=entity_action][value=add]")
    assert page.locator("input[name=title]").input_value() == "รถกระบะขนยาบ้าผ่านเชียงแสน"
    assert page.locator("input[name=entities-0-phone__number]").input_value() == "๑๒"
    page.select_option("select[name=entities-1-type]", "vehicle")
    _press(page, "#entity-2 button[name=entity_action]")
    page.fill("input[name=entities-1-vehicle__plate]", "กข 1234")
    page.select_option("select[name=entities-1-vehicle__country]", "TH")
    page.fill("input[name=entities-1-vehicle__make]", "Toyota")
    page.fill("input[name=entities-1-vehicle__colour]", "ขาว")
    page.check("input[name=discoverable][value=yes]")
    _fits(page)

    # Posting with the bad number: refused, naming the entity and the field, nothing stored, nothing lost.
    _press(page, f"{FORM} button[type=submit]:not([name=entity_action])")
    problems = page.locator("#entities .message.error").inner_text()
    assert "รายการที่ 1 (หมายเลขโทรศัพท์), หมายเลขโทรศัพท์:" in problems
    assert not Item.objects.exists()
    assert page.locator("input[name=entities-1-vehicle__plate]").input_value() == "กข 1234"
    assert page.locator("input[name=entities-1-vehicle__colour]").input_value() == "ขาว"
    assert page.locator("textarea[name=body]").input_value() == "รถกระบะสีขาว ผู้ขับติดต่อทางโทรศัพท์"
    assert page.locator("input[name=discoverable][value=yes]").is_checked()
    screenshot(page, "phone-compose-entities-error-th")
    _fits(page)

    page.fill("input[name=entities-0-phone__number]", "๐๘๑ ๒๓๔ ๕๖๗๘")
    _press(page, f"{FORM} button[type=submit]:not([name=entity_action])")
    item = Item.objects.get()
    assert page.url.endswith(f"/items/{item.pk}/")
    assert item.discoverable is True
    assert ItemEntity.objects.filter(item=item).count() == 2
    assert sorted(MatchToken.objects.filter(item=item).values_list("kind", flat=True)) == ["phone", "plate"]

    shown = page.locator("section.entities").inner_text()
    for text in ("หมายเลขโทรศัพท์", "๐๘๑ ๒๓๔ ๕๖๗๘", "ไทย", "ยานพาหนะ", "ป้ายทะเบียน", "กข 1234", "ยี่ห้อ", "Toyota"):
        assert text in shown, text
    screenshot(page, "phone-item-entities-th")
    _fits(page)


def test_with_javascript_choosing_a_type_shows_its_fields_at_once(net, new_page):
    page = new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    sign_in_through_ui(page, net.user("vn.officer"), next_path="/items/new/")
    page.wait_for_url("**/items/new/")
    page.fill("input[name=title]", "Biển số xe tải")
    with page.expect_navigation():
        page.select_option("select[name=entities-0-type]", "vehicle")
    assert page.url.endswith("/items/new/#entity-1")
    assert page.locator("input[name=entities-0-vehicle__plate]").is_visible()
    assert page.locator("input[name=title]").input_value() == "Biển số xe tải"
    assert not Item.objects.exists()
