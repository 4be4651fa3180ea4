from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agencies.models import Role
from audit.models import AuditEvent
from isn.errors import InvalidInput, PermissionDenied
from messaging.items.lifecycle import item_create
from messaging.models import (
    Item,
    ItemAgencyGrant,
    ItemCountryGrant,
    ItemKey,
    ItemUserObjectPermission,
)
from tests.factories import MembershipFactory, UserFactory
from tests.messaging.conftest import api_payload, item_fields

pytestmark = pytest.mark.django_db


def _nothing_stored() -> None:
    assert Item.objects.count() == 0
    assert ItemKey.objects.count() == 0
    assert ItemCountryGrant.objects.count() == 0
    assert not AuditEvent.objects.filter(action="messaging.item.create").exists()


def test_post_seals_text_and_wraps_the_key_for_each_released_country(post, vn_officer):
    content = post(vn_officer, countries=["VN", "KH", "TH"])
    item = Item.objects.get()
    assert (item.originator_country, item.originator_agency.short_name, item.originator_office.name) == (
        "VN",
        "BGC",
        "Moc Bai BLO",
    )
    assert content.title.encode() not in bytes(item.title_sealed)
    assert content.body.encode() not in bytes(item.body_sealed)
    assert sorted(ItemKey.objects.values_list("country_id", flat=True)) == ["KH", "TH", "VN"]
    assert sorted(ItemCountryGrant.objects.values_list("country_id", flat=True)) == ["KH", "TH", "VN"]
    assert content.release == {"countries": ["KH", "TH", "VN"], "agencies": [], "named_users": []}


def test_post_is_recorded_with_the_release_and_no_content(post, vn_officer, kh_agency, kh_officer):
    content = post(vn_officer, agencies=[kh_agency.pk], named_users=["kh.officer"])
    event = AuditEvent.objects.get(action="messaging.item.create")
    assert (event.actor_label, event.target_type, event.target_id, event.target_country) == (
        "vn.officer",
        "messaging.item",
        str(content.item.pk),
        "VN",
    )
    assert event.details == {
        "countries": ["KH", "VN"],
        "agencies": [kh_agency.pk],
        "named_users": [kh_officer.pk],
        "category": "meth_pills",
        "priority": "priority",
        "handling_code": "amber",
        "discoverable": False,
    }
    assert "lorries" not in str(event.details)


def test_agency_restriction_and_named_person_are_stored_as_grants(post, vn_officer, kh_agency, kh_officer):
    content = post(vn_officer, agencies=[kh_agency.pk], named_users=["kh.officer"])
    assert list(ItemAgencyGrant.objects.values_list("agency_id", "country_id")) == [(kh_agency.pk, "KH")]
    grant = ItemUserObjectPermission.objects.get()
    assert (grant.content_object_id, grant.user_id, grant.permission.codename) == (
        content.item.pk,
        kh_officer.pk,
        "view_item",
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"countries": ["VN", "US"]}, "countries"),
        ({"countries": ["VN", "XX"]}, "countries"),
        ({"countries": ["KH"]}, "countries"),  # without the originator's own country
        ({"countries": []}, "countries"),
        ({"source_reliability": "F"}, "source_reliability"),
        ({"info_credibility": 6}, "info_credibility"),
        ({"handling_code": "white"}, "handling_code"),
        ({"category": "guns"}, "category"),
        ({"priority": "urgent"}, "priority"),
        ({"language": "fr"}, "language"),
        ({"title": "x" * 301}, "title"),
        ({"title": "two\nlines"}, "title"),
        ({"title": "   "}, "title"),
        ({"body": "y" * 50_001}, "body"),
        ({"border_crossing": "z" * 201}, "border_crossing"),
        ({"review_date": timezone.now().date()}, "review_date"),
        ({"review_date": timezone.now().date() + timedelta(days=3650)}, "review_date"),
        ({"agencies": [999_999]}, "agencies"),
        ({"named_users": ["nobody"]}, "named_users"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(vn_officer, overrides, field):
    with pytest.raises(InvalidInput) as refused:
        item_create(actor=vn_officer, **item_fields(**overrides))
    assert field in refused.value.extra["fields"]
    _nothing_stored()


def test_agency_of_an_unreleased_country_is_refused(vn_officer, th_agency):
    with pytest.raises(InvalidInput, match="not in the release"):
        item_create(actor=vn_officer, **item_fields(agencies=[th_agency.pk]))
    _nothing_stored()


def test_named_person_of_an_unreleased_country_is_refused(vn_officer, th_officer):
    with pytest.raises(InvalidInput, match="not in the release"):
        item_create(actor=vn_officer, **item_fields(named_users=["th.officer"]))
    _nothing_stored()


def test_every_problem_is_reported_at_once(vn_officer):
    with pytest.raises(InvalidInput) as refused:
        item_create(actor=vn_officer, **item_fields(countries=["KH"], handling_code="white", title=""))
    assert set(refused.value.extra["fields"]) == {"countries", "handling_code", "title"}


def test_auditors_and_outsiders_cannot_post(vn_auditor, outsider):
    for actor in (vn_auditor, outsider):
        with pytest.raises(PermissionDenied):
            item_create(actor=actor, **item_fields())
    _nothing_stored()


def test_api_post_returns_the_item_with_its_release(api, vn_officer):
    api.force_authenticate(vn_officer)
    response = api.post("/api/v1/items/", api_payload(countries=["VN", "KH", "UN"]), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["title"] == "Meth pills shipment expected at Moc Bai"
    assert body["release"] == {"countries": ["KH", "UN", "VN"], "agencies": [], "named_users": []}
    assert Item.objects.get().pk.hex == body["id"].replace("-", "")


@pytest.mark.parametrize(
    "overrides",
    [
        {"countries": ["VN", "US"]},
        {"countries": ["KH"]},
        {"source_reliability": "Z"},
        {"info_credibility": 0},
        {"handling_code": "amber+strict"},
        {"title": "x" * 301},
        {"review_date": "not a date"},
        {"agencies": ["one"]},
    ],
)
def test_api_bad_input_answers_400_with_a_clear_error_and_stores_nothing(api, vn_officer, overrides):
    api.force_authenticate(vn_officer)
    response = api.post("/api/v1/items/", api_payload(**overrides), format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["detail"]
    assert body["errors"]["fields"]
    _nothing_stored()


def test_api_post_needs_membership(api, outsider):
    api.force_authenticate(outsider)
    assert api.post("/api/v1/items/", api_payload(), format="json").status_code == 403
    api.force_authenticate(None)
    assert api.post("/api/v1/items/", api_payload(), format="json").status_code == 401
    _nothing_stored()


def test_inactive_member_cannot_be_named(vn_officer, kh_agency):
    MembershipFactory(user=UserFactory(username="kh.gone", is_active=False), agency=kh_agency, role=Role.OFFICER)
    with pytest.raises(InvalidInput, match=r"kh\.gone"):
        item_create(actor=vn_officer, **item_fields(named_users=["kh.gone"]))
    _nothing_stored()
