"""A request for information opened from a hit: only the agency that received the hit may use its reference; the
request goes to the agency holding the item hit; the holder, and only the holder, sees which of its items it names."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from audit.models import AuditEvent
from isn.errors import InvalidInput, NotFound
from messaging.models import Notification, NotificationKind, Rfi
from messaging.rfis.services import HIT_NOT_FOUND_MESSAGE, rfi_create, rfi_read
from tests.auth import sign_in
from tests.messaging.hits import make_hit
from tests.messaging.network import build_network, post_item

pytestmark = pytest.mark.django_db

SUBJECT = "Phone number checked at Bavet"
QUESTION = "Our check of a phone number hit an item of yours. What can you share about it?"


@pytest.fixture
def net():
    return build_network()


@pytest.fixture
def hit(net):
    """A Cambodian ADD check hit a Viet Nam BGC item released to Viet Nam only."""
    item = post_item(net.user("vn.officer"), countries=["VN"])
    return make_hit(net.user("kh.officer"), item)


def ask(net, hit, by="kh.officer", **overrides):
    fields = {"hit_reference": hit.reference, "subject": SUBJECT, "question": QUESTION}
    return rfi_create(actor=net.user(by), **{**fields, **overrides})


def test_an_rfi_from_a_hit_reaches_the_holder_naming_the_item_for_the_holder_only(net, hit):
    content = ask(net, hit)

    rfi = content.rfi
    assert (rfi.target_agency_id, rfi.target_country, rfi.hit_id) == (net.vn.pk, "VN", hit.pk)
    assert rfi.item_id is None  # nothing the asker may read is named
    assert content.hit_item_id is None
    assert content.hit_reference == hit.reference
    # BGC has no supervisor and nobody at its desk: the office that posted the item, and its poster, are told.
    told = Notification.objects.filter(rfi=rfi, kind=NotificationKind.RFI_RECEIVED).values_list("user__username")
    assert {name for (name,) in told} == {"vn.officer"}
    assert rfi.target_office_id is None  # the asker is not told which office holds the item

    holder = rfi_read(actor=net.user("vn.officer"), rfi_id=rfi.pk)
    assert holder.hit_item_id == hit.item_id
    assert holder.hit_reference == hit.reference
    asker = rfi_read(actor=net.user("kh.supervisor"), rfi_id=rfi.pk)
    assert asker.hit_item_id is None
    assert asker.hit_reference == hit.reference

    event = AuditEvent.objects.get(action="messaging.rfi.create", target_id=str(rfi.pk))
    assert event.details["hit_id"] == hit.pk
    assert event.target_country == "VN"


def test_the_reference_is_read_whatever_its_case_and_spaces(net, hit):
    content = ask(net, hit, hit_reference=f"  {hit.reference.lower()} ")
    assert content.rfi.hit_id == hit.pk


@pytest.mark.parametrize("reference", ["HIT-0000000000000000", "not a reference"])
def test_an_unknown_reference_is_not_found_and_changes_nothing(net, hit, reference):
    with pytest.raises(NotFound) as refused:
        ask(net, hit, hit_reference=reference)
    assert refused.value.message == HIT_NOT_FOUND_MESSAGE
    assert not Rfi.objects.exists()


@pytest.mark.parametrize("by", ["th.officer", "kh.customs", "vn.officer"])
def test_another_agencys_reference_is_not_found_exactly_like_an_unknown_one(net, hit, by):
    # Another country, another agency of the asker's own country, and the holder itself: none received this hit.
    with pytest.raises(NotFound) as refused:
        ask(net, hit, by=by)
    assert refused.value.message == HIT_NOT_FOUND_MESSAGE
    assert not Rfi.objects.exists()


def test_a_request_from_a_hit_goes_to_the_holder_and_nobody_else(net, hit):
    with pytest.raises(InvalidInput) as refused:
        ask(net, hit, target_agency=net.th.pk)
    assert "target_agency" in refused.value.extra["fields"]
    assert not Rfi.objects.exists()


def test_a_hit_on_an_item_of_the_askers_own_country_can_be_asked_about(net):
    # Cambodian customs may not read an ADD item released to ADD only: a hit, and a request to ADD, within Cambodia.
    item = post_item(net.user("kh.officer"), countries=["KH"], agencies=[net.kh.pk])
    hit = make_hit(net.user("kh.customs"), item)
    content = ask(net, hit, by="kh.customs")
    assert content.rfi.target_agency_id == net.kh.pk
    assert rfi_read(actor=net.user("kh.supervisor"), rfi_id=content.rfi.pk).hit_item_id == item.pk


# --- the API ---------------------------------------------------------------------------------------------------------


def test_api_rfi_from_a_hit(net, hit, api):
    api.force_authenticate(net.user("kh.officer"))
    response = api.post(
        "/api/v1/rfis/", {"hit_reference": hit.reference, "subject": SUBJECT, "question": QUESTION}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["target_agency"]["id"] == net.vn.pk
    assert body["hit_reference"] == hit.reference
    assert body["hit_item"] is None
    assert str(hit.item_id) not in response.content.decode()

    for name, expected in (("kh.supervisor", None), ("vn.officer", str(hit.item_id))):
        api.force_authenticate(net.user(name))
        detail = api.get(f"/api/v1/rfis/{body['id']}/").json()
        assert (detail["hit_reference"], detail["hit_item"]) == (hit.reference, expected)
    api.force_authenticate(net.user("kh.officer"))
    listed = api.get("/api/v1/rfis/").json()["results"]
    assert [row["hit_reference"] for row in listed] == [hit.reference]
    assert str(hit.item_id) not in str(listed)


def test_api_unknown_or_foreign_reference_is_404(net, hit, api):
    api.force_authenticate(net.user("th.officer"))
    for reference in (hit.reference, "HIT-FFFFFFFFFFFFFFFF"):
        response = api.post(
            "/api/v1/rfis/", {"hit_reference": reference, "subject": SUBJECT, "question": QUESTION}, format="json"
        )
        assert response.status_code == 404
        assert response.json()["detail"] == HIT_NOT_FOUND_MESSAGE
    assert not Rfi.objects.exists()


def test_api_without_an_agency_or_a_hit_names_the_field(net, api):
    api.force_authenticate(net.user("kh.officer"))
    response = api.post("/api/v1/rfis/", {"subject": SUBJECT, "question": QUESTION}, format="json")
    assert response.status_code == 400
    assert "target_agency" in response.json()["errors"]["fields"]


# --- the portal ------------------------------------------------------------------------------------------------------


def _token(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def test_portal_ask_them_opens_the_form_with_the_reference_and_sends_it(net, hit):
    kh = sign_in(Client(enforce_csrf_checks=True), net.user("kh.officer"))
    page = kh.get(f"/rfis/new/?hit={hit.reference}").content.decode()
    assert f'name="hit_reference" value="{hit.reference}"' in page
    assert "BGC" in page
    assert 'name="target"' not in page
    response = kh.post(
        "/rfis/new/",
        {
            "csrfmiddlewaretoken": _token(page),
            "hit_reference": hit.reference,
            "priority": "routine",
            "subject": SUBJECT,
            "question": QUESTION,
        },
    )
    rfi = Rfi.objects.get()
    assert response.status_code == 302
    assert (rfi.hit_id, rfi.target_agency_id) == (hit.pk, net.vn.pk)

    asker_page = kh.get(f"/rfis/{rfi.pk}/").content.decode()
    assert hit.reference in asker_page
    assert str(hit.item_id) not in asker_page
    holder_page = sign_in(Client(), net.user("vn.officer")).get(f"/rfis/{rfi.pk}/").content.decode()
    assert f'href="/items/{hit.item_id}/"' in holder_page


def test_portal_foreign_reference_is_404(net, hit):
    th = sign_in(Client(), net.user("th.officer"))
    assert th.get(f"/rfis/new/?hit={hit.reference}").status_code == 404
    assert th.get("/rfis/new/?hit=HIT-0000000000000000").status_code == 404
