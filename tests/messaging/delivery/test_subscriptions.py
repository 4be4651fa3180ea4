"""Subscriptions through /api/v1/subscriptions/: who manages which, what criteria are accepted, what is recorded,
and that a subscription made here changes where routing delivers an item."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditEvent
from isn.errors import InvalidInput, PermissionDenied
from messaging.delivery.routing import item_route
from messaging.delivery.subscriptions import subscription_create, subscriptions_visible_to
from messaging.models import (
    OutboxKind,
    OutboxMessage,
    Subscription,
)
from messaging.models.delivery import Delivery
from tests.messaging.network import Network, build_network, post_item

pytestmark = pytest.mark.django_db

URL = "/api/v1/subscriptions/"


@pytest.fixture
def net() -> Network:
    return build_network()


def as_user(api: Any, net: Network, username: str) -> Any:
    api.force_authenticate(net.user(username))
    return api


def create(api: Any, net: Network, username: str, **body: Any) -> Any:
    return as_user(api, net, username).post(URL, body, format="json")


def route(item: Any) -> None:
    item_route(outbox_id=OutboxMessage.objects.get(item=item, kind=OutboxKind.ITEM_ROUTE).pk)


def subscribed_deliveries(item: Any) -> set[tuple[str, str | None, str | None]]:
    return {
        (d.agency.short_name, d.office.name if d.office else None, d.user.username if d.user else None)
        for d in Delivery.objects.filter(item=item, reason="subscription").select_related("agency", "office", "user")
    }


# --- creating ----------------------------------------------------------------------------------------------------


def test_an_officer_subscribes_themselves_and_it_is_recorded_without_free_text(api, net):
    response = create(
        api, net, "kh.officer", category="heroin_opium", originator_country="VN", border_crossing="Bavet - Moc Bai"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["user"], body["office"], body["agency"]) == ("kh.officer", None, net.kh.pk)
    assert (body["category"], body["priority"], body["originator_country"]) == ("heroin_opium", "", "VN")
    assert (body["border_crossing"], body["province"], body["is_active"]) == ("Bavet - Moc Bai", "", True)
    subscription = Subscription.objects.get(pk=body["id"])
    assert (subscription.agency_id, subscription.user_id, subscription.office_id) == (
        net.kh.pk,
        net.user("kh.officer").pk,
        None,
    )
    event = AuditEvent.objects.get(action="messaging.subscription.create")
    assert (event.actor_label, event.target_type, event.target_id, event.target_country) == (
        "kh.officer",
        "messaging.subscription",
        str(subscription.pk),
        "KH",
    )
    assert event.details == {
        "subscription_id": subscription.pk,
        "agency_id": net.kh.pk,
        "office_id": None,
        "user_id": net.user("kh.officer").pk,
        "category": "heroin_opium",
        "priority": "",
        "originator_country": "VN",
        "border_crossing_set": True,
        "province_set": False,
        "is_active": True,
    }
    assert "Bavet" not in str(event.details)


def test_an_officer_may_subscribe_neither_an_office_nor_a_colleague(api, net):
    response = create(api, net, "kh.officer", office=net.bavet.pk, category="ketamine")
    assert response.status_code == 403
    response = create(api, net, "kh.officer", user="kh.desk", category="ketamine")
    assert response.status_code == 403
    # Naming oneself is the same as naming no one.
    response = create(api, net, "kh.supervisor", user="kh.supervisor", priority="flash")
    assert response.status_code == 201
    assert response.json()["user"] == "kh.supervisor"
    assert Subscription.objects.filter(agency=net.kh).count() == 1
    assert AuditEvent.objects.filter(action="messaging.subscription.create").count() == 1


def test_an_agency_admin_subscribes_the_agencys_offices_and_people_only(api, net):
    office = create(api, net, "kh.admin", office=net.kh_desk.pk, priority="flash")
    assert office.status_code == 201, office.content
    assert office.json()["office"] == {"id": net.kh_desk.pk, "name": "ADD duty desk"}
    assert office.json()["user"] is None
    person = create(api, net, "kh.admin", user="kh.desk", category="cannabis")
    assert person.status_code == 201, person.content
    assert person.json()["user"] == "kh.desk"

    # Not of this agency (another Cambodian agency's office and officer), or someone who reads no content.
    for body in (
        {"office": net.kh_customs_desk.pk},
        {"office": net.chiang_saen.pk},
        {"user": "kh.customs"},
        {"user": "kh.auditor"},
        {"user": "nobody-at-all"},
    ):
        response = create(api, net, "kh.admin", category="cannabis", **body)
        assert response.status_code == 400, (body, response.content)
    both = create(api, net, "kh.admin", office=net.bavet.pk, user="kh.desk", category="cannabis")
    assert both.status_code == 400
    assert Subscription.objects.filter(agency=net.kh).count() == 2


def test_auditors_have_no_subscriptions(api, net):
    response = create(api, net, "kh.auditor", category="cannabis")
    assert response.status_code == 403
    with pytest.raises(PermissionDenied):
        subscription_create(actor=net.user("kh.auditor"), category="cannabis")
    assert not Subscription.objects.filter(agency=net.kh).exists()


def test_a_subscription_without_any_criterion_is_refused_clearly(api, net):
    response = create(api, net, "kh.officer")
    assert response.status_code == 400
    assert "at least one criterion" in response.json()["detail"]
    assert "every item" in response.json()["detail"]
    blank = create(api, net, "kh.officer", category="", priority="", border_crossing="   ")
    assert blank.status_code == 400
    assert not Subscription.objects.filter(agency=net.kh).exists()
    assert not AuditEvent.objects.filter(action="messaging.subscription.create").exists()


@pytest.mark.parametrize(
    "body",
    [
        {"category": "diamonds"},
        {"priority": "urgent"},
        {"originator_country": "XX"},
        {"originator_country": "vn"},
        {"border_crossing": "Bavet\nMoc Bai"},
        {"province": "Svay\u2028Rieng"},
        {"border_crossing": "B" * 201},
        {"province": "P" * 101},
    ],
)
def test_criteria_are_validated(api, net, body):
    response = create(api, net, "kh.officer", **body)
    assert response.status_code == 400, response.content
    assert not Subscription.objects.filter(agency=net.kh).exists()


def test_the_service_validates_criteria_too(net):
    with pytest.raises(InvalidInput) as raised:
        subscription_create(actor=net.user("kh.officer"), originator_country="ZZ", province="A\tB")
    assert set(raised.value.extra["fields"]) == {"originator_country", "province"}


def test_an_identical_active_subscription_is_a_conflict(api, net):
    assert create(api, net, "kh.officer", category="ketamine", province="Svay Rieng").status_code == 201
    assert create(api, net, "kh.officer", category="ketamine", province="svay rieng").status_code == 409
    assert create(api, net, "kh.officer", category="ketamine", province="Kandal").status_code == 201


# --- seeing ------------------------------------------------------------------------------------------------------


def test_each_sees_only_what_they_manage(api, net, django_assert_max_num_queries):
    own = create(api, net, "kh.officer", category="ketamine").json()["id"]
    colleague = create(api, net, "kh.supervisor", category="cannabis").json()["id"]
    office = create(api, net, "kh.admin", office=net.bavet.pk, priority="flash").json()["id"]
    th_office = Subscription.objects.get(agency=net.th).pk  # the network's own: Chiang Saen, meth pills

    def listed(username: str) -> set[int]:
        response = as_user(api, net, username).get(URL)
        assert response.status_code == 200
        return {row["id"] for row in response.json()["results"]}

    assert listed("kh.officer") == {own}
    assert listed("kh.supervisor") == {colleague}
    with django_assert_max_num_queries(8):
        assert listed("kh.admin") == {own, colleague, office}
    assert listed("kh.auditor") == set()
    assert listed("kh.customs") == set()  # same country, another agency
    assert listed("th.officer") == set()  # Chiang Saen's office subscription is its admin's to manage
    event = AuditEvent.objects.filter(action="messaging.subscription.list", actor_label="kh.admin").get()
    assert sorted(event.details["ids"]) == sorted([own, colleague, office])

    assert as_user(api, net, "kh.officer").get(f"{URL}{own}/").status_code == 200
    assert AuditEvent.objects.filter(action="messaging.subscription.read", target_id=str(own)).exists()
    nonexistent = as_user(api, net, "kh.officer").get(f"{URL}999999/")
    assert nonexistent.status_code == 404
    for username, pk in [
        ("kh.officer", colleague),
        ("kh.officer", office),
        ("kh.auditor", own),
        ("kh.customs", own),
        ("th.officer", th_office),
        ("kh.admin", th_office),
    ]:
        response = as_user(api, net, username).get(f"{URL}{pk}/")
        assert response.status_code == 404, (username, pk)
        assert response.json() == nonexistent.json()
    assert as_user(api, net, "kh.officer").get(f"{URL}not-an-id/").json() == nonexistent.json()


def test_the_selector_scopes_in_sql(net):
    subscription_create(actor=net.user("kh.officer"), category="ketamine")
    subscription_create(actor=net.user("kh.admin"), office=net.bavet.pk, category="nps")
    assert subscriptions_visible_to(net.user("kh.officer")).count() == 1
    assert subscriptions_visible_to(net.user("kh.admin")).count() == 2
    assert subscriptions_visible_to(net.user("kh.auditor")).count() == 0
    assert subscriptions_visible_to(net.user("la.supervisor")).count() == 0


# --- changing and deleting -------------------------------------------------------------------------------------------


def test_changing_a_subscription(api, net):
    pk = create(api, net, "kh.officer", category="ketamine", province="Svay Rieng").json()["id"]
    client = as_user(api, net, "kh.officer")

    patched = client.patch(f"{URL}{pk}/", {"priority": "flash", "is_active": False}, format="json")
    assert patched.status_code == 200, patched.content
    assert (patched.json()["category"], patched.json()["priority"], patched.json()["is_active"]) == (
        "ketamine",
        "flash",
        False,
    )
    event = AuditEvent.objects.get(action="messaging.subscription.change")
    assert event.details["changed"] == ["is_active", "priority"]
    assert event.target_id == str(pk)

    # PUT replaces the whole set: what is left out matches anything again.
    put = client.put(f"{URL}{pk}/", {"originator_country": "TH"}, format="json")
    assert put.status_code == 200, put.content
    subscription = Subscription.objects.get(pk=pk)
    assert (subscription.category, subscription.priority, subscription.province) == ("", "", "")
    assert (subscription.originator_country, subscription.is_active) == ("TH", True)

    # Clearing the last criterion is refused like creating one without any.
    cleared = client.patch(f"{URL}{pk}/", {"originator_country": ""}, format="json")
    assert cleared.status_code == 400
    assert Subscription.objects.get(pk=pk).originator_country == "TH"
    assert client.patch(f"{URL}{pk}/", {"category": "gold"}, format="json").status_code == 400

    # Nobody else changes it: the same 404 as for no subscription at all.
    for username in ("kh.supervisor", "kh.customs", "kh.auditor", "th.officer"):
        response = as_user(api, net, username).patch(f"{URL}{pk}/", {"priority": "routine"}, format="json")
        assert response.status_code == 404, username
    assert Subscription.objects.get(pk=pk).priority == ""
    # Its agency's admin does.
    admin = as_user(api, net, "kh.admin").patch(f"{URL}{pk}/", {"priority": "priority"}, format="json")
    assert admin.status_code == 200


def test_deleting_a_subscription(api, net):
    pk = create(api, net, "kh.officer", category="ketamine").json()["id"]
    for username in ("kh.supervisor", "kh.customs", "kh.auditor"):
        assert as_user(api, net, username).delete(f"{URL}{pk}/").status_code == 404
    assert Subscription.objects.filter(pk=pk).exists()

    response = as_user(api, net, "kh.officer").delete(f"{URL}{pk}/")

    assert response.status_code == 204
    assert not Subscription.objects.filter(pk=pk).exists()
    event = AuditEvent.objects.get(action="messaging.subscription.delete")
    assert (event.target_id, event.details["category"], event.details["user_id"]) == (
        str(pk),
        "ketamine",
        net.user("kh.officer").pk,
    )
    assert as_user(api, net, "kh.officer").delete(f"{URL}{pk}/").status_code == 404


# --- routing follows ------------------------------------------------------------------------------------------------


def test_a_subscription_made_through_the_api_changes_routing(api, net):
    # ADD receives Moc Bai's items through its counterpart, Bavet; these subscriptions add recipients inside ADD.
    person = create(api, net, "kh.admin", user="kh.desk", category="heroin_opium", originator_country="VN")
    office = create(api, net, "kh.admin", office=net.kh_desk.pk, priority="flash")
    own = create(api, net, "th.desk", border_crossing="moc bai - BAVET")
    assert {person.status_code, office.status_code, own.status_code} == {201}

    heroin = post_item(net.user("vn.officer"), category="heroin_opium", border_crossing="Tay Ninh road")
    flash = post_item(net.user("vn.officer"), category="ketamine", priority="flash", border_crossing="Tay Ninh road")
    at_moc_bai = post_item(net.user("vn.officer"), category="ketamine")  # border crossing "Moc Bai - Bavet"
    for item in (heroin, flash, at_moc_bai):
        route(item)

    assert subscribed_deliveries(heroin) == {("ADD", None, "kh.desk")}
    assert subscribed_deliveries(flash) == {("ADD", "ADD duty desk", None)}
    assert subscribed_deliveries(at_moc_bai) == {("ONCB", None, "th.desk")}


def test_a_switched_off_or_deleted_subscription_no_longer_routes(api, net):
    pk = create(api, net, "kh.admin", user="kh.desk", category="heroin_opium").json()["id"]
    as_user(api, net, "kh.admin").patch(f"{URL}{pk}/", {"is_active": False}, format="json")
    switched_off = post_item(net.user("vn.officer"), category="heroin_opium")
    route(switched_off)
    assert subscribed_deliveries(switched_off) == set()

    as_user(api, net, "kh.admin").patch(f"{URL}{pk}/", {"is_active": True}, format="json")
    on_again = post_item(net.user("vn.officer"), category="heroin_opium")
    route(on_again)
    assert subscribed_deliveries(on_again) == {("ADD", None, "kh.desk")}

    assert as_user(api, net, "kh.admin").delete(f"{URL}{pk}/").status_code == 204
    deleted = post_item(net.user("vn.officer"), category="heroin_opium")
    route(deleted)
    assert subscribed_deliveries(deleted) == set()
