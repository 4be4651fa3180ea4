"""The portal's item pages through the test client: who gets in, what they see, and that every act is a plain form
(CSRF, redirect back) recorded by its service."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from messaging.items.attachments import attachment_add
from messaging.models import Acknowledgement, Attachment, Item, ItemCountryGrant, ItemStatus, Notification
from tests.auth import sign_in
from tests.messaging.items.office import OLE, ooxml
from tests.portal.conftest import route

pytestmark = pytest.mark.django_db

TITLE = "Meth pills shipment expected at Moc Bai"
ABSENT = "00000000-0000-4000-8000-000000000000"


def _item_pages(item_id: object, attachment_id: object = ABSENT) -> list[str]:
    return [
        f"/items/{item_id}/",
        f"/items/{item_id}/tracking/",
        f"/items/{item_id}/narrow/",
        f"/items/{item_id}/withdraw/",
        f"/items/{item_id}/attachments/{attachment_id}/",
    ]


PAGES = ["/items/", "/items/new/", "/notifications/", "/statistics/", "/account/", "/directory/", "/"]


def _client(user) -> Client:
    return sign_in(Client(), user)


def test_every_page_sends_anonymous_visitors_to_sign_in(net, post):
    item = post(net.user("vn.officer"))
    for path in [*PAGES, *_item_pages(item.pk)]:
        response = Client().get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/accounts/login/"), path
    for path in (f"/items/{item.pk}/acknowledge/", f"/items/{item.pk}/withdraw/", "/items/new/"):
        response = Client().post(path, {"confirm": "on"})
        assert response.status_code == 302, path
        assert response["Location"].startswith("/accounts/login/"), path
    assert Item.objects.get(pk=item.pk).status == ItemStatus.ACTIVE


def test_an_item_outside_the_release_answers_exactly_like_one_that_does_not_exist(net, post):
    item = post(net.user("vn.officer"), countries=["VN", "KH"])
    attachment = attachment_add(actor=net.user("vn.officer"), item_id=item.pk, filename="a.txt", content=b"plain")
    th = _client(net.user("th.officer"))
    for hidden, absent in zip(_item_pages(item.pk, attachment.id), _item_pages(ABSENT), strict=True):
        got, missing = th.get(hidden), th.get(absent)
        assert (got.status_code, missing.status_code) == (404, 404), hidden
        assert TITLE not in got.content.decode()
    assert th.post(f"/items/{item.pk}/acknowledge/").status_code == 404
    assert th.post(f"/items/{item.pk}/withdraw/", {"confirm": "on"}).status_code == 404
    denials = AuditEvent.objects.filter(action="access.denied", actor_user=net.user("th.officer"))
    assert denials.filter(details__reason="not_found").count() >= 10
    assert Item.objects.get(pk=item.pk).status == ItemStatus.ACTIVE


def test_auditors_and_outsiders_are_refused_the_item_pages(net, post, outsider):
    item = post(net.user("vn.officer"))
    for user in (net.user("kh.auditor"), outsider):
        client = _client(user)
        for path in ("/items/", "/items/new/"):
            assert client.get(path).status_code == 403, (user, path)
        assert client.get(f"/items/{item.pk}/").status_code == 403  # the role is refused before any item is looked up
        assert TITLE not in client.get(f"/items/{item.pk}/").content.decode()
    assert _client(outsider).get("/notifications/").status_code == 403
    assert _client(outsider).get("/account/").status_code == 403


def test_recipients_cannot_use_the_originators_pages(net, post):
    item = post(net.user("vn.officer"))
    kh = _client(net.user("kh.officer"))
    for path in (f"/items/{item.pk}/tracking/", f"/items/{item.pk}/narrow/", f"/items/{item.pk}/withdraw/"):
        assert kh.get(path).status_code == 403, path
    assert kh.post(f"/items/{item.pk}/withdraw/", {"confirm": "on"}).status_code == 403
    assert Item.objects.get(pk=item.pk).status == ItemStatus.ACTIVE


def test_inbox_pins_flash_awaiting_acknowledgement_and_marks_unread(net, post):
    vn = net.user("vn.officer")
    flash = post(vn, title="FLASH convoy at Bavet tonight", priority="flash", countries=["VN", "KH"])
    route(flash)
    later = post(vn, title="Routine note on precursor prices", countries=["VN", "KH"])
    kh = _client(net.user("kh.officer"))
    page = kh.get("/items/").content.decode()
    pinned = page.index('class="pinned"')
    assert pinned < page.index("FLASH convoy at Bavet tonight") < page.index("Routine note on precursor prices")
    assert page.count("FLASH convoy at Bavet tonight") == 1  # pinned, not listed twice
    assert page.count('<span class="tag new">') == 2  # unread: a text marker, not colour alone
    listed = AuditEvent.objects.filter(action="messaging.item.list", actor_user=net.user("kh.officer")).get()
    assert listed.details["item_ids"] == [str(flash.pk), str(later.pk)]

    kh.get(f"/items/{flash.pk}/")
    kh.post(f"/items/{flash.pk}/acknowledge/", {"note": "actioned"})
    page = kh.get("/items/").content.decode()
    assert 'class="pinned"' not in page  # acknowledged: back in its place in the list
    assert page.count('<span class="tag new">') == 1


def test_inbox_filters_use_the_apis_filters_and_the_border_crossing(net, post):
    vn = net.user("vn.officer")
    post(vn, title="Heroin at Moc Bai", category="heroin_opium", border_crossing="Moc Bai - Bavet")
    post(vn, title="Timber at Chiang Saen", category="timber", border_crossing="Chiang Saen - Ton Pheung")
    post(vn, title="Flash timber", category="timber", priority="flash", border_crossing="Chiang Saen - Ton Pheung")
    kh = _client(net.user("kh.officer"))

    def titles(**query: str) -> list[str]:
        page = kh.get("/items/", query).content.decode()
        return re.findall(r"(Heroin at Moc Bai|Timber at Chiang Saen|Flash timber)</a>", page)

    assert titles() == ["Flash timber", "Timber at Chiang Saen", "Heroin at Moc Bai"]
    assert titles(category="timber") == ["Flash timber", "Timber at Chiang Saen"]
    assert titles(category="timber", priority="routine") == ["Timber at Chiang Saen"]
    assert titles(border_crossing="moc bai") == ["Heroin at Moc Bai"]
    assert titles(originator_country="TH") == []
    assert titles(unread="false") == []
    response = kh.get("/items/", {"priority": "loud"})
    assert response.status_code == 200
    assert "Check the filters." in response.content.decode()


def test_inbox_pages_with_a_cursor(net, post):
    vn = net.user("vn.officer")
    for number in range(53):
        post(vn, title=f"Item number {number:02d}", countries=["VN"])
    client = _client(vn)
    first = client.get("/items/").content.decode()
    assert "Item number 52" in first
    assert "Item number 03" in first
    assert "Item number 02" not in first
    older = re.search(r'href="\?before=([^"]+)"', first)
    assert older is not None
    second = client.get("/items/", {"before": older.group(1)}).content.decode()
    assert re.findall(r"Item number (\d\d)", second) == ["02", "01", "00"]
    assert client.get("/items/", {"before": "garbage"}).status_code == 200


def test_reading_and_acknowledging_without_javascript(net, post):
    vn = net.user("vn.officer")
    item = post(vn, priority="flash", countries=["VN", "KH"], body="Two lorries.\nPlates 70C-123.45.")
    attachment_add(actor=vn, item_id=item.pk, filename="route.txt", content=b"route notes")
    route(item)
    kh_user = net.user("kh.officer")
    kh = Client(enforce_csrf_checks=True)
    sign_in(kh, kh_user)
    page = kh.get(f"/items/{item.pk}/").content.decode()
    assert TITLE in page
    assert "Plates 70C-123.45." in page
    assert "route.txt" in page
    assert "TLP:AMBER" in page
    assert "B: usually reliable" in page
    assert "2: probably true" in page
    form = re.search(r'<form method="post" action="(/items/[^"]+/acknowledge/)">', page)
    assert form is not None
    assert kh.post(form.group(1), {"note": "actioned"}).status_code == 403  # no CSRF token: refused
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = kh.post(form.group(1), {"csrfmiddlewaretoken": token, "note": "operation_planned", "note_text": "05:00"})
    assert response.status_code == 302
    assert response["Location"] == f"/items/{item.pk}/"
    ack = Acknowledgement.objects.get(item=item)
    assert (ack.agency_id, ack.user_id, ack.note) == (net.kh.pk, kh_user.pk, "operation_planned")
    assert AuditEvent.objects.filter(action="messaging.item.acknowledge", target_id=str(item.pk)).count() == 1
    page = kh.get(f"/items/{item.pk}/").content.decode()
    assert "Acknowledged for your agency" in page
    assert "Your agency acknowledged this item on" in page
    assert '/acknowledge/"' not in page.split("<main>")[1]  # the form is gone
    again = kh.post(form.group(1), {"csrfmiddlewaretoken": token})
    assert again.status_code == 302
    assert "already acknowledged" in kh.get(again["Location"]).content.decode()


def test_attachment_download_is_recorded_and_never_inline(net, post):
    vn = net.user("vn.officer")
    item = post(vn, countries=["VN", "KH"])
    attachment = attachment_add(actor=vn, item_id=item.pk, filename="route.txt", content=b"route notes")
    response = _client(net.user("kh.officer")).get(f"/items/{item.pk}/attachments/{attachment.id}/")
    assert response.status_code == 200
    assert response.content == b"route notes"
    assert response["Content-Disposition"].startswith("attachment")
    assert response["Cache-Control"] == "no-store"
    assert AuditEvent.objects.filter(action="messaging.attachment.download", actor_user=net.user("kh.officer")).exists()


def test_the_originator_sees_the_release_who_read_and_who_acknowledged(net, post):
    vn = net.user("vn.officer")
    item = post(vn, priority="flash", countries=["VN", "KH", "TH"])
    route(item)
    kh = _client(net.user("kh.officer"))
    kh.get(f"/items/{item.pk}/")
    kh.post(f"/items/{item.pk}/acknowledge/", {"note": "no_trace"})
    client = _client(vn)
    page = client.get(f"/items/{item.pk}/").content.decode()
    assert "Cambodia" in page
    assert "Thailand" in page
    assert f"/items/{item.pk}/tracking/" in page
    assert f"/items/{item.pk}/withdraw/" in page
    assert 'action="/items/' + str(item.pk) + '/acknowledge/"' not in page  # the originator does not acknowledge
    tracking = client.get(f"/items/{item.pk}/tracking/").content.decode()
    assert "kh.officer" in tracking
    assert "No trace" in tracking
    assert "ONCB" in tracking
    assert "not yet" in tracking
    for action in ("messaging.item.deliveries_view", "messaging.item.access_view"):
        assert AuditEvent.objects.filter(action=action, actor_user=vn).count() == 1


def test_withdrawing_needs_a_confirmation_that_works_without_javascript(net, post):
    vn = net.user("vn.officer")
    item = post(vn, countries=["VN", "KH"])
    client = _client(vn)
    assert 'name="confirm"' in client.get(f"/items/{item.pk}/withdraw/").content.decode()
    refused = client.post(f"/items/{item.pk}/withdraw/")
    assert refused.status_code == 200
    assert "Tick the confirmation to withdraw the item." in refused.content.decode()
    assert Item.objects.get(pk=item.pk).status == ItemStatus.ACTIVE
    response = client.post(f"/items/{item.pk}/withdraw/", {"confirm": "on"})
    assert response.status_code == 302
    assert Item.objects.get(pk=item.pk).status == ItemStatus.WITHDRAWN
    assert _client(net.user("kh.officer")).get(f"/items/{item.pk}/").status_code == 404
    assert "Withdrawn by the originator" in client.get(f"/items/{item.pk}/").content.decode()
    # A second time is a conflict, shown as a page that says so, not an error.
    again = client.post(f"/items/{item.pk}/withdraw/", {"confirm": "on"})
    assert again.status_code == 409
    assert "it changed in the meantime" in again.content.decode()


def test_narrowing_removes_a_country_at_once(net, post):
    vn = net.user("vn.officer")
    item = post(vn, countries=["VN", "KH", "TH"])
    client = _client(vn)
    page = client.get(f"/items/{item.pk}/narrow/").content.decode()
    assert 'value="TH"' in page
    assert "checked" in page
    unchanged = client.post(f"/items/{item.pk}/narrow/", {"countries": ["VN", "KH", "TH"]})
    assert unchanged.status_code == 302
    assert "Nothing changed." in client.get(unchanged["Location"]).content.decode()
    keep_own = client.post(f"/items/{item.pk}/narrow/", {"countries": ["KH"]})
    assert keep_own.status_code == 200
    assert "Your own country stays" in keep_own.content.decode()
    response = client.post(f"/items/{item.pk}/narrow/", {"countries": ["VN", "KH"]})
    assert response.status_code == 302
    assert set(ItemCountryGrant.objects.filter(item=item).values_list("country_id", flat=True)) == {"VN", "KH"}
    assert _client(net.user("th.officer")).get(f"/items/{item.pk}/").status_code == 404
    assert _client(net.user("kh.officer")).get(f"/items/{item.pk}/").status_code == 200
    assert AuditEvent.objects.filter(action="messaging.item.release_narrow", target_id=str(item.pk)).exists()


def _compose_data(**overrides):
    data = {
        "title": "Ketamine in tyres",
        "body": "A lorry with ketamine hidden in its spare tyres.",
        "language": "en",
        "category": "ketamine",
        "priority": "routine",
        "source_reliability": "C",
        "info_credibility": "3",
        "handling_code": "green",
        "border_crossing": "Moc Bai - Bavet",
        "review_date": (timezone.now().date() + timedelta(days=30)).isoformat(),
        "countries": ["VN", "KH"],
        "discoverable": "no",
    }
    data.update(overrides)
    return data


def test_composing_an_item_with_an_attachment(net):
    vn = net.user("vn.officer")
    client = _client(vn)
    page = client.get("/items/new/").content.decode()
    assert 'enctype="multipart/form-data"' in page
    assert 'value="VN"' in page
    assert "Moc Bai - Bavet" in page
    upload = SimpleUploadedFile("tyres.txt", b"spare tyre serials")
    response = client.post("/items/new/", {**_compose_data(agencies=[net.kh.pk]), "attachments": [upload]})
    assert response.status_code == 302, response.content.decode()[:2000]
    item = Item.objects.get()
    assert response["Location"] == f"/items/{item.pk}/"
    assert (item.category, item.priority, item.handling_code, item.info_credibility) == (
        "ketamine",
        "routine",
        "green",
        3,
    )
    assert set(ItemCountryGrant.objects.filter(item=item).values_list("country_id", flat=True)) == {"VN", "KH"}
    assert Attachment.objects.filter(item=item).count() == 1
    assert "Item posted." in client.get(response["Location"]).content.decode()
    create = AuditEvent.objects.get(action="messaging.item.create")
    assert create.details["agencies"] == [net.kh.pk]


def test_flash_needs_its_confirmation(net):
    client = _client(net.user("vn.officer"))
    refused = client.post("/items/new/", _compose_data(priority="flash"))
    assert refused.status_code == 200
    assert "Tick the confirmation to post a FLASH item" in refused.content.decode()
    assert not Item.objects.exists()
    posted = client.post("/items/new/", _compose_data(priority="flash", flash_confirmed="on"))
    assert posted.status_code == 302
    assert Item.objects.get().priority == "flash"
    assert "FLASH item posted" in client.get(posted["Location"]).content.decode()


def test_a_refused_attachment_stores_nothing_and_says_why(net):
    client = _client(net.user("vn.officer"))
    upload = SimpleUploadedFile("program.exe", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff")
    response = client.post("/items/new/", {**_compose_data(), "attachments": [upload]})
    assert response.status_code == 200
    assert "program.exe: This kind of file is not accepted" in response.content.decode()
    assert not Item.objects.exists()
    assert not AuditEvent.objects.filter(action="messaging.item.create").exists()


def test_a_docx_carrying_macros_is_refused_on_the_form_with_the_reason(net):
    client = _client(net.user("vn.officer"))
    upload = SimpleUploadedFile("Báo cáo.docx", ooxml(parts={"word/vbaProject.bin": OLE}))
    response = client.post("/items/new/", {**_compose_data(), "attachments": [upload]})
    assert response.status_code == 200
    assert "Báo cáo.docx: This document is refused: it contains macros (&#x27;word/vbaProject.bin&#x27;)" in (
        response.content.decode()
    )
    assert not Item.objects.exists()
    assert not Attachment.objects.exists()


def test_the_service_checks_are_shown_on_the_form(net):
    client = _client(net.user("vn.officer"))
    response = client.post("/items/new/", _compose_data(named_users="nobody.at.all", countries=["VN"]))
    assert response.status_code == 200
    assert "Not active members of the network: nobody.at.all." in response.content.decode()
    assert not Item.objects.exists()


def test_output_is_escaped(net, post):
    vn = net.user("vn.officer")
    item = post(vn, title="<script>alert(1)</script>", body="<img src=x onerror=alert(2)>", countries=["VN", "KH"])
    kh = _client(net.user("kh.officer"))
    for path in ("/items/", f"/items/{item.pk}/"):
        page = kh.get(path).content.decode()
        assert "<script>alert(1)" not in page, path
        assert "<img src=x" not in page, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path


def test_notifications_list_and_open(net, post):
    item = post(net.user("vn.officer"), countries=["VN", "KH"])
    route(item)
    kh_user = net.user("kh.officer")
    notification = Notification.objects.get(user=kh_user, item=item)
    client = _client(kh_user)
    page = client.get("/notifications/").content.decode()
    assert "An item was routed to you" in page
    assert 'class="tag new"' in page
    assert TITLE not in page  # a notification never carries content
    assert AuditEvent.objects.filter(action="messaging.notification.list", actor_user=kh_user).exists()
    response = client.post(f"/notifications/{notification.pk}/read/")
    assert response.status_code == 302
    assert response["Location"] == f"/items/{item.pk}/"
    notification.refresh_from_db()
    assert notification.read_at is not None
    other = _client(net.user("th.officer"))
    assert other.post(f"/notifications/{notification.pk}/read/").status_code == 404


def test_a_page_refused_to_an_officer_is_recorded(net):
    client = _client(net.user("kh.officer"))
    assert client.get("/statistics/").status_code == 403
    event = AuditEvent.objects.get(action="access.denied", actor_user=net.user("kh.officer"))
    assert event.details["view"] == "portal:statistics"


def test_no_page_has_inline_script_or_style(net, post):
    vn = net.user("vn.officer")
    item = post(vn, priority="flash", countries=["VN", "KH"])
    route(item)
    client = _client(vn)
    paths = [*PAGES, f"/items/{item.pk}/", f"/items/{item.pk}/tracking/", f"/items/{item.pk}/narrow/"]
    paths += [f"/items/{item.pk}/withdraw/"]
    pages = {path: client.get(path) for path in paths}
    pages["/statistics/ (supervisor)"] = _client(net.user("kh.supervisor")).get("/statistics/")
    pages["/accounts/login/"] = Client().get("/accounts/login/")
    for path, response in pages.items():
        if path == "/statistics/":
            assert response.status_code == 403
            continue
        assert response.status_code == 200, path
        html = response.content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert not re.search(r"\sstyle=", html), path
        assert not re.search(r"\son[a-z]+=", html), path
        for form in re.findall(r"<form[^>]*method=\"post\".*?</form>", html, flags=re.S):
            assert "csrfmiddlewaretoken" in form, (path, form[:200])


def test_a_random_id_is_not_found(net):
    client = _client(net.user("kh.officer"))
    assert client.get(f"/items/{uuid.uuid4()}/").status_code == 404


def test_inbox_costs_the_same_for_one_item_or_a_full_page(net, post):
    vn = net.user("vn.officer")
    kh = _client(net.user("kh.officer"))

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            page = kh.get("/items/")
        assert page.status_code == 200
        return len(captured.captured_queries)

    route(post(vn, title="Convoy first", priority="flash"))
    route(post(vn, title="Convoy second"))
    queries()  # the session's first request of the minute also writes its last activity
    few = queries()
    for number in range(30):
        route(post(vn, title=f"Convoy {number}", priority="flash" if number % 5 == 0 else "routine"))
    assert queries() == few
    assert kh.get("/items/").content.decode().count("Convoy ") >= 30


def test_a_flash_item_not_routed_yet_can_be_acknowledged_from_its_page(net, post):
    flash = post(
        net.user("vn.officer"), title="FLASH convoy at Bavet tonight", priority="flash", countries=["VN", "KH"]
    )
    kh = _client(net.user("kh.officer"))
    page = kh.get(f"/items/{flash.pk}/").content.decode()
    assert f'action="/items/{flash.pk}/acknowledge/"' in page
    assert kh.post(f"/items/{flash.pk}/acknowledge/", {"note": "actioned"}).status_code == 302
    assert Acknowledgement.objects.filter(item=flash, agency=net.kh).exists()
