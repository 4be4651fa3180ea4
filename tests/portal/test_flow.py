"""Issue 7's story end to end, in Debian's Chromium under Playwright against the live test server, every step through
the portal's own pages (people sign in with their password and their authenticator's code):

a Viet Nam BLO officer at Moc Bai posts a FLASH item released to Cambodia; the Cambodian counterpart at Bavet finds it
pinned, opens it and acknowledges; the Vietnamese officer sees the read and the acknowledgement; a Lao officer sees
nothing of it (its address answers 404); the Cambodian officer asks consent to share it with Thailand and a supervisor
of the originating agency approves; the Thai officer can then open it; Viet Nam's national auditor finds every step.

The flow runs in English and once more with the portal in Khmer (the Vietnamese officer picks Khmer with the language
picker, the others have it saved as their language): every page is then asserted to be in Khmer, and nothing is
selected by its words, only by roles, addresses, form names and data attributes. Translations are written later, so
no assertion reads translated text.

Routing runs in this process: between steps the test drains the outbox with the same consumers a worker runs
(``tests.messaging.sharing.run_outbox``), so each step sees exactly what the previous one caused. The real-worker
path is covered by tests/messaging (``test_routing_worker``, ``test_forwarding``'s worker test).
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from django.conf import settings

from agencies.models import Membership
from messaging.models import (
    Acknowledgement,
    ConsentRequest,
    ConsentStatus,
    Forward,
    Item,
    ItemCountryGrant,
    Rfi,
)
from messaging.models.delivery import Delivery
from tests.messaging.network import Sharing, build_sharing, post_item, run_outbox
from tests.portal.conftest import screenshot, sign_in_through_ui

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PHONE = {"width": 360, "height": 740}
TITLE = "FLASH: 40,000 pills in a tour bus crossing Moc Bai tonight"
BODY = "Tour bus 51B-765.43 with a false floor; the driver is known to us. Crossing expected 02:00."
JUSTIFICATION = "Thai ONCB tracks the same network at Chiang Saen: the pills are bound for Thailand."
ACK_NOTE = "Team in place at the Bavet checkpoint from 01:30."
ITEM_PAGE = re.compile(r"/items/[0-9a-f-]{36}/$")
CONSENT_PAGE = re.compile(r"/consents/[0-9a-f-]{36}/$")


@pytest.fixture
def s(transactional_db) -> Sharing:
    return build_sharing()


class Portal:
    """One person's browser, signed in, checking on every page that it is in the language of the run."""

    def __init__(self, page: Any, language: str) -> None:
        self.page = page
        self.language = language

    def check_language(self) -> None:
        lang = self.page.locator("html").get_attribute("lang")
        assert lang == self.language, f"{self.page.url} is in {lang!r}, not {self.language!r}"

    def go(self, path: str) -> Any:
        response = self.page.goto(path)
        self.check_language()
        return response

    def status_of(self, path: str) -> tuple[int, str]:
        """The answer to this person's request for ``path`` (their cookies, not the page: a 404 page in the browser
        would count as a page error), and its text."""
        response = self.page.request.get(path)
        return response.status, response.text()

    def submit(self, form: str, url: re.Pattern[str] | str) -> None:
        """Press the submit button of the form matching ``form`` and wait for the page it leads to."""
        # Not the compose form's entity buttons ("Show the fields", "Add another entity"): they re-render the form.
        self.page.locator(f"{form} button[type=submit]:not([name=entity_action])").first.click()
        self.page.wait_for_url(url)
        self.check_language()


def person(new_page: Any, s: Sharing, username: str, language: str, *, picker: bool = False) -> Portal:
    """``username`` signed in through the sign-in pages, the portal in ``language``: with the language picker
    (``picker``), or as the language saved on their membership."""
    user = s.user(username)
    if language != "en" and not picker:
        Membership.objects.filter(user=user).update(language=language)
    page = new_page()
    sign_in_through_ui(page, user)
    if picker and language != "en":
        with page.expect_navigation():
            page.select_option("#language-picker", language)  # changes at once (isn.js); a button without JS
        assert Membership.objects.get(user=user).language == language
    portal = Portal(page, language)
    portal.check_language()
    return portal


def compose_flash(vn: Portal, s: Sharing) -> Item:
    vn.go("/items/new/")
    page = vn.page
    page.fill("input[name=title]", TITLE)
    page.fill("textarea[name=body]", BODY)
    page.select_option("select[name=category]", "meth_pills")
    page.select_option("select[name=source_reliability]", "B")
    page.select_option("select[name=info_credibility]", "2")
    page.check("input[name=countries][value=KH]")
    page.check("input[name=priority][value=flash]")
    page.check("input[name=flash_confirmed]")  # shown once FLASH is chosen
    page.check("input[name=discoverable][value=no]")
    vn.submit("main form[enctype='multipart/form-data']", ITEM_PAGE)
    item = Item.objects.get()
    assert page.url.endswith(f"/items/{item.pk}/")
    assert (item.priority, item.originator_office_id) == ("flash", s.net.moc_bai.pk)
    assert set(ItemCountryGrant.objects.filter(item=item).values_list("country_id", flat=True)) == {"VN", "KH"}
    return item


@pytest.mark.parametrize("language", ["en", "km"])
def test_flash_item_from_moc_bai_to_bavet_then_shared_with_thailand_with_consent(s, new_page, language):
    started = time.monotonic()

    # Viet Nam's officer at Moc Bai posts a FLASH item released to Cambodia (confirming FLASH).
    vn = person(new_page, s, "vn.officer", language, picker=True)
    item = compose_flash(vn, s)

    # Routing, drained in this process: Bavet (Moc Bai's counterpart) gets it.
    run_outbox()
    assert Delivery.objects.filter(item=item, office=s.net.bavet, revoked_at__isnull=True).exists()

    # Cambodia's counterpart officer finds it pinned on top, opens it and acknowledges with a note.
    kh = person(new_page, s, "kh.officer", language)
    kh.go("/items/")
    pinned = kh.page.locator("section.pinned ul.items li a")
    assert pinned.first.get_attribute("href") == f"/items/{item.pk}/"
    pinned.first.click()
    kh.page.wait_for_url(f"**/items/{item.pk}/")
    kh.check_language()
    assert kh.page.locator("h1").inner_text() == TITLE
    screenshot(kh.page, f"flow-{language}-item")
    kh.page.select_option("select[name=note]", "operation_planned")
    kh.page.fill("textarea[name=note_text]", ACK_NOTE)
    kh.submit("form[action$='/acknowledge/']", f"**/items/{item.pk}/")
    assert kh.page.locator("form[action$='/acknowledge/']").count() == 0
    acknowledgement = Acknowledgement.objects.get(item=item)
    assert (acknowledgement.agency_id, acknowledgement.user_id) == (s.net.kh.pk, s.user("kh.officer").pk)
    kh.go("/items/")
    assert kh.page.locator("section.pinned").count() == 0  # acknowledged: no longer pinned
    assert kh.page.locator(f"ul.items a[href='/items/{item.pk}/']").count() == 1

    # The Vietnamese officer sees Cambodia's read and acknowledgement, with the note.
    vn.go(f"/items/{item.pk}/tracking/")
    row = vn.page.locator("table tbody tr", has_text="ADD").first
    assert "kh.officer" in row.inner_text()
    assert ACK_NOTE in row.inner_text()
    assert row.locator("strong").count() == 0  # "not yet" is bold: neither read nor acknowledgement is missing
    reads = vn.page.locator("table:not([data-hits])").nth(1).locator("tbody tr", has_text="kh.officer")
    assert reads.count() >= 1

    # A Lao officer sees nothing of it: not in the inbox, and its address answers like one that does not exist.
    la = person(new_page, s, "la.officer", language)
    la.go("/items/")
    assert la.page.locator(f"a[href='/items/{item.pk}/']").count() == 0
    assert TITLE not in la.page.content()
    status, text = la.status_of(f"/items/{item.pk}/")
    assert status == 404
    assert TITLE not in text

    # The Cambodian officer asks consent to share it with Thailand.
    kh.go(f"/items/{item.pk}/")
    kh.page.click("details[data-share=consent] > summary")
    kh.page.select_option("select[name=target_country]", "TH")
    kh.page.fill("textarea[name=justification]", JUSTIFICATION)
    kh.submit("form[action$='/consent/']", CONSENT_PAGE)
    consent = ConsentRequest.objects.get(item=item)
    assert kh.page.locator(f"article[data-consent='{consent.pk}'][data-status=pending]").count() == 1
    assert (consent.requester_agency_id, consent.target_country_id) == (s.net.kh.pk, "TH")

    # Thailand cannot open it yet.
    th = person(new_page, s, "th.officer", language)
    assert th.status_of(f"/items/{item.pk}/")[0] == 404

    # A supervisor of the originating agency sees it waiting (the header says how many), reads why, approves.
    supervisor = person(new_page, s, "vn.supervisor", language)
    badge = supervisor.page.locator("header a[data-nav=consents] .count")
    assert badge.inner_text().split()[0] == "1"
    supervisor.page.click("header a[data-nav=consents]")
    supervisor.page.wait_for_url("**/consents/")
    supervisor.check_language()
    supervisor.page.locator(f"[data-section=waiting] li[data-consent='{consent.pk}'] a").first.click()
    supervisor.page.wait_for_url(f"**/consents/{consent.pk}/")
    supervisor.check_language()
    assert JUSTIFICATION in supervisor.page.locator("[data-text=justification]").inner_text()
    screenshot(supervisor.page, f"flow-{language}-consent")
    supervisor.submit("form[data-act=approve]", f"**/consents/{consent.pk}/")
    assert supervisor.page.locator("article[data-status=approved]").count() == 1
    consent.refresh_from_db()
    assert (consent.status, consent.decided_by_id) == (ConsentStatus.APPROVED, s.user("vn.supervisor").pk)

    # The approval's routing, drained here too: Thailand's officer now has it in the inbox and can open it.
    run_outbox()
    th.go("/items/")
    assert th.page.locator(f"ul.items a[href='/items/{item.pk}/']").count() == 1
    assert th.go(f"/items/{item.pk}/").status == 200
    assert th.page.locator("h1").inner_text() == TITLE

    # Viet Nam's national auditor finds every step in the audit workspace, by the item's and the request's ids.
    auditor = person(new_page, s, "vn.auditor", language)
    auditor.go("/audit/")
    found = {}
    for target in (item.pk, consent.pk):
        auditor.page.fill("main form input[name=target_id]", str(target))
        auditor.submit("main form.grid", re.compile(r"/audit/\?"))
        found[target] = auditor.page.locator("main table").first.inner_text()
    for action in (
        "messaging.item.create",
        "messaging.item.route",
        "messaging.item.read",
        "messaging.item.acknowledge",
    ):
        assert action in found[item.pk], action
    for action in ("messaging.consent.request", "messaging.consent.read", "messaging.consent.approve"):
        assert action in found[consent.pk], action
    assert "kh.officer" in found[item.pk]
    assert "vn.supervisor" in found[consent.pk]
    # Content never reaches the auditor.
    assert TITLE not in auditor.page.content()
    assert JUSTIFICATION not in auditor.page.content()
    screenshot(auditor.page, f"flow-{language}-audit")

    print(
        f"\nissue 7 flow in {language}: {time.monotonic() - started:.1f} s"
    )  # shown with -s; the duration is in the report


def test_the_inbox_at_phone_width_in_every_language(s, new_page):
    vn = s.user("vn.officer")
    post_item(vn, title=TITLE, priority="flash", countries=["VN", "KH"])
    post_item(vn, title="Precursor prices at the Moc Bai market", countries=["VN", "KH"])
    run_outbox()
    page = new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    sign_in_through_ui(page, s.user("kh.officer"), next_path="/items/")
    page.wait_for_url("**/items/")
    for language, _name in settings.LANGUAGES:
        if page.locator("html").get_attribute("lang") != language:
            with page.expect_navigation():
                page.select_option("#language-picker", language)
        page.wait_for_url("**/items/")
        assert page.locator("html").get_attribute("lang") == language
        assert page.locator("section.pinned ul.items li").count() == 1
        assert page.locator("ul.items li a[href^='/items/']").count() == 2
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the inbox in {language} scrolls sideways: {width} px"
        path = screenshot(page, f"inbox-{language}")
        assert path.stat().st_size > 1000


def test_forwarding_and_asking_at_phone_width_without_javascript(s, new_page):
    """The sharing forms are plain forms: with JavaScript off, on a phone, Cambodia's officer forwards an item to
    Cambodia's customs and asks Moc Bai (the preselected counterpart) about it; no page scrolls sideways."""
    item = post_item(s.user("vn.officer"), countries=["VN", "KH"])
    run_outbox()
    page = new_page(viewport=PHONE, is_mobile=True, has_touch=True, java_script_enabled=False)
    sign_in_through_ui(page, s.user("kh.officer"), next_path=f"/items/{item.pk}/")
    page.wait_for_url(f"**/items/{item.pk}/")
    page.click("details[data-share=forward] > summary")
    page.select_option("form[action$='/forward/'] select[name=recipient]", f"o{s.net.kh_customs_desk.pk}")
    page.fill("form[action$='/forward/'] textarea[name=reason]", "GDCE inspects lorries at the Bavet checkpoint")
    page.click("form[action$='/forward/'] button[type=submit]")
    page.wait_for_url(f"**/items/{item.pk}/")
    forward = Forward.objects.get(item=item)
    assert (forward.to_agency_id, forward.to_office_id) == (s.net.kh_customs.pk, s.net.kh_customs_desk.pk)
    assert page.locator(f"[data-forward='{forward.pk}']").count() == 1

    page.click("a[data-share=rfi]")
    page.wait_for_url(f"**/rfis/new/?item={item.pk}")
    assert page.locator("select[name=target]").input_value() == f"o{s.net.moc_bai.pk}"
    page.fill("input[name=subject]", "Driver of the tour bus 51B-765.43")
    page.fill("textarea[name=question]", "Is the driver known to you? We hold him at Bavet.")
    page.click("form[data-form=rfi] button[type=submit]")
    page.wait_for_url(re.compile(r"/rfis/[0-9a-f-]{36}/$"))
    rfi = Rfi.objects.get()
    assert (rfi.target_office_id, rfi.item_id) == (s.net.moc_bai.pk, item.pk)
    assert page.locator(f"article[data-rfi='{rfi.pk}'][data-status=open]").count() == 1

    for path, name in (
        (f"/items/{item.pk}/", "phone-item-sharing"),
        (f"/items/{item.pk}/forward/", "phone-forward"),
        (f"/items/{item.pk}/consent/", "phone-consent-ask"),
        ("/consents/", "phone-consents"),
        ("/rfis/", "phone-rfis"),
        ("/rfis/new/", "phone-rfi-new"),
        (f"/rfis/{rfi.pk}/", "phone-rfi"),
    ):
        page.goto(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} scrolls sideways: {width} px"
        screenshot(page, name)
