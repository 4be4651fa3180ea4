"""The portal's sharing pages through the test client: forwarding, consent requests and requests for information.
Who gets in (anonymous visitors to sign-in, the other side's and third countries' officers 404, auditors 403), that
each act is a plain POST form with its CSRF token whose service effect and audit event happen, and what the item page,
the lists and the navigation show."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from messaging.models import (
    ConsentRequest,
    ConsentStatus,
    Forward,
    ItemCountryGrant,
    Rfi,
    RfiReply,
    RfiStatus,
)
from messaging.rfis.services import rfi_create
from messaging.sharing.consents import consent_request_create
from tests.auth import sign_in
from tests.messaging.network import Sharing, build_sharing, post_item, run_outbox

pytestmark = pytest.mark.django_db

JUSTIFICATION = "Thai ONCB tracks the same lorries 70C-123.45 at Chiang Saen"
REASON = "GDCE inspects lorries at the Bavet checkpoint"
QUESTION = "Who owns the lorry 70C-123.45?"
SUBJECT = "Owner of lorry 70C-123.45"
ABSENT = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def s(db) -> Sharing:
    return build_sharing()


@pytest.fixture
def item(s) -> Any:
    """A Viet Nam item released to Viet Nam and Cambodia, routed (Bavet has it)."""
    posted = post_item(s.user("vn.officer"), countries=["VN", "KH"])
    run_outbox()
    return posted


def client(s: Sharing, name: str, **options: Any) -> Client:
    return sign_in(Client(**options), s.user(name))


def ask(s: Sharing, item: Any, by: str = "kh.officer", country: str = "TH") -> ConsentRequest:
    return consent_request_create(
        actor=s.user(by), item_id=item.pk, target_country=country, justification=JUSTIFICATION
    ).consent


def ask_rfi(s: Sharing, by: str = "vn.officer", **extra: Any) -> Rfi:
    fields = {"target_agency": s.net.kh.pk, "target_office": s.net.bavet.pk, "subject": SUBJECT, "question": QUESTION}
    return rfi_create(actor=s.user(by), **{**fields, **extra}).rfi


def events(action: str, **filters: Any) -> Any:
    return AuditEvent.objects.filter(action=action, **filters)


def token_of(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def pages(item: Any, consent: Any, rfi: Any) -> tuple[list[str], list[str]]:
    """(GET pages, POST endpoints) of this part of the portal for one item, consent request and RFI."""
    gets = [
        f"/items/{item.pk}/forward/",
        f"/items/{item.pk}/consent/",
        "/consents/",
        f"/consents/{consent.pk}/",
        "/rfis/",
        "/rfis/new/",
        f"/rfis/{rfi.pk}/",
    ]
    posts = [
        f"/items/{item.pk}/forward/",
        f"/items/{item.pk}/consent/",
        f"/consents/{consent.pk}/approve/",
        f"/consents/{consent.pk}/decline/",
        f"/consents/{consent.pk}/cancel/",
        "/rfis/new/",
        f"/rfis/{rfi.pk}/reply/",
        f"/rfis/{rfi.pk}/close/",
    ]
    return gets, posts


# --- who gets in ---------------------------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in_and_nothing_changes(s, item):
    consent, rfi = ask(s, item), ask_rfi(s)
    gets, posts = pages(item, consent, rfi)
    for path in gets:
        response = Client().get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/accounts/login/"), path
    for path in posts:
        response = Client().post(path, {"reason": "x", "body": "x", "justification": "x", "target_country": "LA"})
        assert response.status_code == 302, path
        assert response["Location"].startswith("/accounts/login/"), path
    consent.refresh_from_db()
    rfi.refresh_from_db()
    assert (consent.status, rfi.status) == (ConsentStatus.PENDING, RfiStatus.OPEN)
    assert not Forward.objects.exists()
    assert RfiReply.objects.count() == 0


def test_a_third_countrys_officer_gets_404_for_a_consent_request_or_rfi_not_theirs(s, item):
    consent, rfi = ask(s, item), ask_rfi(s)
    for name in ("th.officer", "la.officer"):
        third = client(s, name)
        for path in (f"/consents/{consent.pk}/", f"/rfis/{rfi.pk}/", f"/consents/{ABSENT}/", f"/rfis/{ABSENT}/"):
            response = third.get(path)
            assert response.status_code == 404, (name, path)
            assert JUSTIFICATION not in response.content.decode()
            assert SUBJECT not in response.content.decode()
        for path in (f"/consents/{consent.pk}/approve/", f"/consents/{consent.pk}/decline/",
                     f"/consents/{consent.pk}/cancel/", f"/rfis/{rfi.pk}/reply/", f"/rfis/{rfi.pk}/close/",
                     f"/items/{item.pk}/forward/", f"/items/{item.pk}/consent/"):  # fmt: skip
            assert third.post(path, {"reason": "no", "body": "hello"}).status_code == 404, (name, path)
        listed = third.get("/consents/").content.decode() + third.get("/rfis/").content.decode()
        assert str(consent.pk) not in listed
        assert str(rfi.pk) not in listed
    consent.refresh_from_db()
    rfi.refresh_from_db()
    assert (consent.status, rfi.status) == (ConsentStatus.PENDING, RfiStatus.OPEN)
    assert not RfiReply.objects.exists()
    assert events("access.denied", actor_user=s.user("th.officer"), details__reason="not_found").count() >= 11


def test_auditors_are_refused_these_pages(s, item):
    consent, rfi = ask(s, item), ask_rfi(s)
    gets, _posts = pages(item, consent, rfi)
    auditor = client(s, "vn.auditor")
    for path in gets:
        response = auditor.get(path)
        assert response.status_code == 403, path  # the role is refused before anything is looked up
        assert JUSTIFICATION not in response.content.decode()
        assert SUBJECT not in response.content.decode()
    assert auditor.get("/consents/").status_code == 403
    assert auditor.get("/rfis/").status_code == 403


def test_an_item_the_viewer_cannot_see_cannot_be_forwarded_or_shared(s):
    hidden = post_item(s.user("vn.officer"), countries=["VN", "KH"])
    th = client(s, "th.officer")
    assert th.get(f"/items/{hidden.pk}/forward/").status_code == 404
    assert th.post(f"/items/{hidden.pk}/consent/", {"target_country": "LA", "justification": "x"}).status_code == 404
    assert not ConsentRequest.objects.exists()


# --- forwarding ----------------------------------------------------------------------------------------------------


def test_forwarding_inside_ones_country_without_javascript(s, item):
    kh = client(s, "kh.officer", enforce_csrf_checks=True)
    page = kh.get(f"/items/{item.pk}/").content.decode()
    form = re.search(rf'<form method="post" action="(/items/{item.pk}/forward/)">(.*?)</form>', page, re.S)
    assert form, "the item page offers the forward form"
    # Only Cambodia's agencies and offices: never another country's, never the originating agency.
    options = dict(re.findall(r'<option value="([ao]\d+)"[^>]*>([^<]+)</option>', form.group(2)))
    customs_desk = f"o{s.net.kh_customs_desk.pk}"
    assert f"a{s.net.kh_customs.pk}" in options
    assert customs_desk in options
    assert f"a{s.net.th.pk}" not in options
    assert f"a{s.net.vn.pk}" not in options
    assert f"a{s.net.kh.pk}" not in options  # Cambodia's ADD has it: only one of its offices can be chosen
    assert "amber" in page
    assert "TLP:AMBER" in page

    refused = kh.post(form.group(1), {"recipient": customs_desk, "reason": REASON})
    assert refused.status_code == 403  # no CSRF token
    response = kh.post(form.group(1), {"csrfmiddlewaretoken": token_of(page), "recipient": customs_desk,
                                       "reason": REASON})  # fmt: skip
    assert response.status_code == 302
    assert response["Location"] == f"/items/{item.pk}/"
    forward = Forward.objects.get(item=item)
    assert (forward.to_agency_id, forward.to_office_id) == (s.net.kh_customs.pk, s.net.kh_customs_desk.pk)
    assert events("messaging.item.forward", target_id=str(item.pk), actor_user=s.user("kh.officer")).count() == 1
    assert REASON.encode() not in bytes(forward.reason_sealed)

    run_outbox()
    assert client(s, "kh.customs").get(f"/items/{item.pk}/").status_code == 200
    # The originator sees the forward and its reason on the item page (a recorded read of the reason).
    originator_page = client(s, "vn.officer").get(f"/items/{item.pk}/").content.decode()
    assert f'data-forward="{forward.pk}"' in originator_page
    assert REASON in originator_page
    assert events("messaging.forward.read", actor_user=s.user("vn.officer")).exists()


def test_a_forward_the_handling_code_forbids_is_refused_clearly(s):
    red = post_item(s.user("vn.officer"), countries=["VN", "KH"], handling_code="red")
    strict = post_item(s.user("vn.officer"), countries=["VN", "KH"], handling_code="amber_strict")
    run_outbox()
    kh = client(s, "kh.officer")
    page = kh.get(f"/items/{red.pk}/").content.decode()
    assert 'data-rule="red"' in page
    assert f'/items/{red.pk}/forward/"' not in page.replace("action=", "")
    response = kh.post(f"/items/{red.pk}/forward/", {"recipient": f"a{s.net.kh_customs.pk}", "reason": REASON})
    assert response.status_code == 302
    assert "never forwarded" in kh.get(response["Location"]).content.decode()
    # AMBER+STRICT: only offices of one's own agency are offered; another agency is refused on the form.
    form = kh.get(f"/items/{strict.pk}/forward/").content.decode()
    assert f'value="o{s.net.kh_desk.pk}"' in form
    assert f'value="a{s.net.kh_customs.pk}"' not in form
    response = kh.post(f"/items/{strict.pk}/forward/", {"recipient": f"a{s.net.kh_customs.pk}", "reason": REASON})
    assert response.status_code == 400
    assert "recipient" in response.context["form"].errors
    # Another country's agency cannot even be chosen.
    response = kh.post(f"/items/{strict.pk}/forward/", {"recipient": f"a{s.net.th.pk}", "reason": REASON})
    assert response.status_code == 400
    assert not Forward.objects.exists()
    assert not events("messaging.item.forward").exists()


def test_a_repeated_forward_is_explained_on_the_form(s, item):
    kh = client(s, "kh.officer")
    data = {"recipient": f"a{s.net.kh_customs.pk}", "reason": REASON}
    assert kh.post(f"/items/{item.pk}/forward/", data).status_code == 302
    again = kh.post(f"/items/{item.pk}/forward/", data)
    assert again.status_code == 400
    assert "already been forwarded" in again.content.decode()
    assert Forward.objects.count() == 1


# --- consent requests ----------------------------------------------------------------------------------------------


def test_asking_consent_and_the_supervisor_approving_without_javascript(s, item):
    kh = client(s, "kh.officer", enforce_csrf_checks=True)
    page = kh.get(f"/items/{item.pk}/").content.decode()
    form = re.search(rf'<form method="post" action="(/items/{item.pk}/consent/)">(.*?)</form>', page, re.S)
    assert form, "the item page offers to ask consent"
    countries = re.findall(r'<option value="([A-Z]{2})"', form.group(2))
    assert "TH" in countries
    assert "LA" in countries
    assert "KH" not in countries
    assert "VN" not in countries
    response = kh.post(form.group(1), {"csrfmiddlewaretoken": token_of(page), "target_country": "TH",
                                       "target_agency": "", "justification": JUSTIFICATION})  # fmt: skip
    consent = ConsentRequest.objects.get(item=item)
    assert response.status_code == 302
    assert response["Location"] == f"/consents/{consent.pk}/"
    assert (consent.status, consent.target_country_id, consent.requester_agency_id) == ("pending", "TH", s.net.kh.pk)
    assert events("messaging.consent.request", target_id=str(consent.pk)).count() == 1

    supervisor = client(s, "vn.supervisor", enforce_csrf_checks=True)
    listing = supervisor.get("/consents/").content.decode()
    waiting = re.search(r'data-section="waiting">(.*?)</section>', listing, re.S).group(1)
    assert f'data-consent="{consent.pk}"' in waiting
    assert re.search(r'data-nav="consents">[^<]*<span class="count">1<', listing)
    detail = supervisor.get(f"/consents/{consent.pk}/").content.decode()
    assert JUSTIFICATION in detail
    assert 'data-act="approve"' in detail
    assert 'data-act="cancel"' not in detail
    assert events("messaging.consent.read", actor_user=s.user("vn.supervisor")).count() == 1
    assert supervisor.post(f"/consents/{consent.pk}/approve/").status_code == 403  # no CSRF token
    response = supervisor.post(f"/consents/{consent.pk}/approve/", {"csrfmiddlewaretoken": token_of(detail)})
    assert response.status_code == 302
    assert response["Location"] == f"/consents/{consent.pk}/"
    consent.refresh_from_db()
    assert consent.status == ConsentStatus.APPROVED
    assert consent.decided_by == s.user("vn.supervisor")
    assert ItemCountryGrant.objects.filter(item=item, country_id="TH").exists()
    assert events("messaging.consent.approve", target_id=str(consent.pk)).count() == 1

    run_outbox()
    th = client(s, "th.officer")
    assert th.get(f"/items/{item.pk}/").status_code == 200
    assert f"/items/{item.pk}/" in th.get("/items/").content.decode()  # routed there once approved
    # The requester sees the outcome; the originator's item page lists the request.
    assert 'data-status="approved"' in kh.get(f"/consents/{consent.pk}/").content.decode()
    assert f'data-consent="{consent.pk}"' in client(s, "vn.officer").get(f"/items/{item.pk}/").content.decode()


def test_only_a_supervisor_of_the_originating_agency_decides(s, item):
    consent = ask(s, item)
    officer = client(s, "vn.officer")
    detail = officer.get(f"/consents/{consent.pk}/").content.decode()
    assert JUSTIFICATION in detail
    assert 'data-act="approve"' not in detail
    assert officer.post(f"/consents/{consent.pk}/approve/").status_code == 403
    # The requesting side cannot approve its own request either.
    assert client(s, "kh.officer").post(f"/consents/{consent.pk}/approve/").status_code == 403
    consent.refresh_from_db()
    assert consent.status == ConsentStatus.PENDING
    assert not ItemCountryGrant.objects.filter(item=item, country_id="TH").exists()


def test_declining_needs_a_reason_that_the_requester_reads(s, item):
    consent = ask(s, item)
    supervisor = client(s, "vn.supervisor")
    empty = supervisor.post(f"/consents/{consent.pk}/decline/", {"reason": ""})
    assert empty.status_code == 400
    assert "reason" in empty.context["decline_form"].errors
    consent.refresh_from_db()
    assert consent.status == ConsentStatus.PENDING
    response = supervisor.post(f"/consents/{consent.pk}/decline/", {"reason": "Source protection"})
    assert response.status_code == 302
    consent.refresh_from_db()
    assert consent.status == ConsentStatus.DECLINED
    assert events("messaging.consent.decline", target_id=str(consent.pk)).count() == 1
    assert "Source protection" in client(s, "kh.officer").get(f"/consents/{consent.pk}/").content.decode()
    # Decided: no more buttons, and another decision is refused with the reason why.
    again = supervisor.post(f"/consents/{consent.pk}/approve/", follow=True)
    assert "declined" in again.content.decode()
    consent.refresh_from_db()
    assert consent.status == ConsentStatus.DECLINED


def test_the_requesting_agency_cancels_its_request(s, item):
    consent = ask(s, item)
    assert client(s, "vn.supervisor").post(f"/consents/{consent.pk}/cancel/").status_code == 403
    kh = client(s, "kh.officer")
    assert 'data-act="cancel"' in kh.get(f"/consents/{consent.pk}/").content.decode()
    assert kh.post(f"/consents/{consent.pk}/cancel/").status_code == 302
    consent.refresh_from_db()
    assert consent.status == ConsentStatus.CANCELLED
    assert events("messaging.consent.cancel", target_id=str(consent.pk)).count() == 1


def test_asking_consent_for_a_country_already_released_is_explained(s, item):
    kh = client(s, "kh.officer")
    ask(s, item, country="TH")
    response = kh.post(f"/items/{item.pk}/consent/", {"target_country": "TH", "justification": JUSTIFICATION})
    assert response.status_code == 400
    assert "already waiting" in response.content.decode()
    wrong = kh.post(f"/items/{item.pk}/consent/", {"target_country": "LA", "target_agency": s.net.th.pk,
                                                   "justification": JUSTIFICATION})  # fmt: skip
    assert wrong.status_code == 400
    assert "target_agency" in wrong.context["form"].errors
    assert ConsentRequest.objects.count() == 1


def test_the_consents_page_lists_each_side_and_is_recorded(s, item):
    consent = ask(s, item)
    kh_page = client(s, "kh.officer").get("/consents/").content.decode()
    asked = re.search(r'data-section="asked">(.*?)</section>', kh_page, re.S).group(1)
    assert f'data-consent="{consent.pk}"' in asked
    assert 'data-section="waiting"' not in kh_page
    vn_page = client(s, "vn.officer").get("/consents/?status=pending").content.decode()
    ours = re.search(r'data-section="about-ours">(.*?)</section>', vn_page, re.S).group(1)
    assert f'data-consent="{consent.pk}"' in ours
    listed = events("messaging.consent.list", actor_user=s.user("kh.officer")).get()
    assert listed.details["consent_ids"] == [str(consent.pk)]
    assert JUSTIFICATION not in kh_page  # lists show no sealed text
    empty = client(s, "vn.officer").get("/consents/?status=approved").content.decode()
    assert f'data-consent="{consent.pk}"' not in empty


# --- requests for information --------------------------------------------------------------------------------------


def test_a_new_rfi_preselects_the_counterpart_office_and_is_sent_without_javascript(s, item):
    vn = client(s, "vn.officer", enforce_csrf_checks=True)
    page = vn.get(f"/rfis/new/?item={item.pk}").content.decode()
    assert re.search(rf'<option value="o{s.net.bavet.pk}" selected>', page)
    assert f'value="a{s.net.vn.pk}"' not in page  # one's own country is not asked
    assert f'name="item" value="{item.pk}"' in page
    due = (timezone.localdate() + timedelta(days=3)).isoformat()
    response = vn.post("/rfis/new/", {"csrfmiddlewaretoken": token_of(page), "target": f"o{s.net.bavet.pk}",
                                      "priority": "priority", "due_date": due, "subject": SUBJECT,
                                      "question": QUESTION, "item": str(item.pk)})  # fmt: skip
    rfi = Rfi.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/rfis/{rfi.pk}/"
    assert (rfi.target_agency_id, rfi.target_office_id, rfi.item_id) == (s.net.kh.pk, s.net.bavet.pk, item.pk)
    assert rfi.priority == "priority"
    assert rfi.due_at.date().isoformat() == due
    assert events("messaging.rfi.create", target_id=str(rfi.pk)).count() == 1
    assert SUBJECT.encode() not in bytes(rfi.subject_sealed)


def test_a_new_rfi_shows_the_services_problems_on_the_form(s):
    vn = client(s, "vn.officer")
    far = (timezone.localdate() + timedelta(days=400)).isoformat()
    response = vn.post("/rfis/new/", {"target": f"a{s.net.kh.pk}", "priority": "routine", "due_date": far,
                                      "subject": SUBJECT, "question": QUESTION})  # fmt: skip
    assert response.status_code == 400
    assert "due_date" in response.context["form"].errors
    foreign = vn.post("/rfis/new/", {"target": f"a{s.net.vn.pk}", "priority": "routine", "subject": SUBJECT,
                                     "question": QUESTION})  # fmt: skip
    assert foreign.status_code == 400
    assert "target" in foreign.context["form"].errors
    assert not Rfi.objects.exists()


def test_the_asked_side_replies_with_an_item_and_the_asker_closes(s):
    rfi = ask_rfi(s)
    answer = post_item(s.user("kh.officer"), countries=["KH", "VN"], title="Lorry owner: Sok Dara")
    kh = client(s, "kh.officer", enforce_csrf_checks=True)
    received = kh.get("/rfis/?direction=received").content.decode()
    assert f'data-rfi="{rfi.pk}"' in received
    assert SUBJECT in received
    assert re.search(r'data-nav="rfis">[^<]*<span class="count">1<', received)
    assert events("messaging.rfi.list", actor_user=s.user("kh.officer")).exists()
    page = kh.get(f"/rfis/{rfi.pk}/").content.decode()
    assert QUESTION in page
    assert f'<option value="{answer.pk}">Lorry owner: Sok Dara</option>' in page
    assert 'data-act="close"' not in page  # only the asker closes
    response = kh.post(f"/rfis/{rfi.pk}/reply/", {"csrfmiddlewaretoken": token_of(page), "body": "Sok Dara, Svay Rieng",
                                                   "item": str(answer.pk)})  # fmt: skip
    assert response.status_code == 302
    assert response["Location"] == f"/rfis/{rfi.pk}/"
    rfi.refresh_from_db()
    reply = RfiReply.objects.get(rfi=rfi)
    assert rfi.status == RfiStatus.ANSWERED
    assert reply.item_id == answer.pk
    assert events("messaging.rfi.reply", target_id=str(rfi.pk)).count() == 1
    assert kh.post(f"/rfis/{rfi.pk}/close/", {"csrfmiddlewaretoken": token_of(page)}).status_code == 403

    vn = client(s, "vn.officer")
    thread = vn.get(f"/rfis/{rfi.pk}/").content.decode()
    assert "Sok Dara, Svay Rieng" in thread
    assert f"/items/{answer.pk}/" in thread
    assert vn.post(f"/rfis/{rfi.pk}/close/").status_code == 302
    rfi.refresh_from_db()
    assert rfi.status == RfiStatus.CLOSED
    assert events("messaging.rfi.close", target_id=str(rfi.pk)).count() == 1
    closed = kh.get(f"/rfis/{rfi.pk}/").content.decode()
    assert 'data-act="reply"' not in closed
    assert f'data-rfi="{rfi.pk}"' in vn.get("/rfis/?status=closed&direction=sent").content.decode()
    assert f'data-rfi="{rfi.pk}"' not in vn.get("/rfis/?status=open").content.decode()


def test_a_reply_that_is_refused_keeps_what_was_typed(s):
    rfi = ask_rfi(s)
    unreleased = post_item(s.user("kh.officer"), countries=["KH"])
    response = client(s, "kh.officer").post(
        f"/rfis/{rfi.pk}/reply/", {"body": "Typed answer", "item": str(unreleased.pk)}
    )
    assert response.status_code == 400
    assert "Typed answer" in response.content.decode()
    assert "item" in response.context["reply_form"].errors
    assert not RfiReply.objects.exists()


def test_a_closed_rfi_takes_no_more_replies(s):
    rfi = ask_rfi(s)
    vn = client(s, "vn.officer")
    vn.post(f"/rfis/{rfi.pk}/close/")
    response = client(s, "kh.officer").post(f"/rfis/{rfi.pk}/reply/", {"body": "Late"}, follow=True)
    assert "closed" in response.content.decode()
    assert not RfiReply.objects.exists()


# --- the pages themselves ------------------------------------------------------------------------------------------


def test_no_sharing_page_has_inline_script_or_style_and_every_post_form_has_its_token(s, item):
    consent, rfi = ask(s, item), ask_rfi(s)
    gets, _posts = pages(item, consent, rfi)
    views = {"kh.officer": [*gets, f"/items/{item.pk}/"], "vn.supervisor": [f"/consents/{consent.pk}/", "/consents/"]}
    for name, paths in views.items():
        who = client(s, name)
        for path in paths:
            response = who.get(path)
            assert response.status_code == 200, (name, path)
            html = response.content.decode()
            assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
            assert not re.search(r"\sstyle=", html), path
            assert not re.search(r"\son[a-z]+=", html), path
            for form in re.findall(r"<form[^>]*method=\"post\".*?</form>", html, flags=re.S):
                assert "csrfmiddlewaretoken" in form, (path, form[:200])


def test_output_is_escaped(s, item):
    hostile = "<script>alert(1)</script>"
    rfi = ask_rfi(s, subject=hostile, question=hostile)
    consent = consent_request_create(
        actor=s.user("kh.officer"), item_id=item.pk, target_country="TH", justification=hostile
    ).consent
    for path in (f"/rfis/{rfi.pk}/", "/rfis/"):
        assert hostile not in client(s, "kh.officer").get(path).content.decode()
    assert hostile not in client(s, "vn.supervisor").get(f"/consents/{consent.pk}/").content.decode()


def test_a_malformed_or_random_id_is_not_found(s):
    kh = client(s, "kh.officer")
    for path in (f"/consents/{uuid.uuid4()}/", f"/rfis/{uuid.uuid4()}/", f"/items/{uuid.uuid4()}/forward/"):
        assert kh.get(path).status_code == 404
    assert kh.get("/rfis/?before=garbage").status_code == 200


def test_the_item_page_records_the_consent_requests_it_lists(s, item):
    consent = ask(s, item)
    page = client(s, "vn.supervisor").get(f"/items/{item.pk}/")
    assert page.status_code == 200
    assert f"/consents/{consent.pk}/" in page.content.decode()
    [listed] = events("messaging.consent.list", actor_user=s.user("vn.supervisor"))
    assert listed.details["consent_ids"] == [str(consent.pk)]
    # A reader whose agency has no side in any request sees none listed, and no list is recorded for them.
    assert client(s, "kh.customs").get(f"/items/{item.pk}/").status_code == 200
    assert not events("messaging.consent.list", actor_user=s.user("kh.customs")).exists()
