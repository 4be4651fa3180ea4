"""Entities in the compose form, without JavaScript: rows added and types shown by re-rendering the form with
everything typed kept; posted with the item in one transaction or not at all; errors naming the entity and field;
the required discoverable choice; and the item page listing them in the reader's language."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from agencies.models import Membership
from messaging.items.lifecycle import item_read
from messaging.models import Item, ItemEntity, MatchToken
from messaging.portal.entities import PREFIX, EntityFormSet, entity_rows_initial
from tests.auth import sign_in

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    return sign_in(Client(), user)


def _data(*rows: dict[str, str], **overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "title": "Ketamine in tyres",
        "body": "A lorry with ketamine hidden in its spare tyres.",
        "language": "en",
        "category": "ketamine",
        "priority": "routine",
        "source_reliability": "C",
        "info_credibility": "3",
        "handling_code": "green",
        "review_date": (timezone.now().date() + timedelta(days=30)).isoformat(),
        "countries": ["VN", "KH"],
        "discoverable": "yes",
        "entities-TOTAL_FORMS": str(max(len(rows), 1)),
        "entities-INITIAL_FORMS": "0",
    }
    for index, row in enumerate(rows):
        for name, value in row.items():
            data[f"entities-{index}-{name}"] = value
    data.update(overrides)
    return data


PHONE_TH = {"type": "phone", "phone__number": "๐๘๑ ๒๓๔ ๕๖๗๘", "phone__country": "TH"}
VEHICLE = {
    "type": "vehicle",
    "vehicle__plate": "51C-123.45",
    "vehicle__country": "VN",
    "vehicle__make": "Toyota",
    "vehicle__model": "Hilux",
    "vehicle__colour": "white",
}


def test_the_form_starts_with_one_row_and_a_phone_defaults_to_the_officers_country(net):
    client = _client(net.user("vn.officer"))
    page = client.get("/items/new/").content.decode()
    assert 'name="entities-TOTAL_FORMS" value="1"' in page
    assert 'name="entities-0-type"' in page
    assert 'name="entity_action" value="add"' in page
    # the discoverable choice is required and has no default
    assert 'name="discoverable" value="yes"' in page
    assert "checked" not in page.split('name="discoverable"')[1].split(">")[0]
    shown = client.post("/items/new/", _data({"type": "phone"}, entity_action="show")).content.decode()
    assert 'name="entities-0-phone__number"' in shown
    assert '<option value="VN" selected>' in shown


def test_adding_a_row_keeps_everything_typed_posts_nothing_and_shows_no_errors(net):
    client = _client(net.user("vn.officer"))
    response = client.post("/items/new/", _data(VEHICLE, title="Plate seen twice", body="", entity_action="add"))
    page = response.content.decode()
    assert response.status_code == 200
    assert not Item.objects.exists()
    assert 'name="entities-TOTAL_FORMS" value="2"' in page
    assert 'name="entities-1-type"' in page
    assert 'value="Plate seen twice"' in page
    for typed in ('value="51C-123.45"', 'value="Hilux"'):
        assert typed in page
    assert "errorlist" not in page  # the empty text is judged only when posting


def test_changing_a_rows_type_keeps_the_other_types_values(net):
    client = _client(net.user("vn.officer"))
    row = {**VEHICLE, "type": "phone", "phone__number": "0812345678"}
    page = client.post("/items/new/", _data(row, entity_action="show")).content.decode()
    assert 'type="hidden" name="entities-0-vehicle__plate" value="51C-123.45"' in page
    assert 'name="entities-0-phone__number" value="0812345678"' in page


def test_an_item_is_posted_with_its_entities_and_its_discoverable_choice(net):
    vn = net.user("vn.officer")
    client = _client(vn)
    response = client.post("/items/new/", _data(PHONE_TH, VEHICLE, {"type": ""}))
    assert response.status_code == 302, response.content.decode()[:3000]
    item = Item.objects.get()
    assert item.discoverable is True
    entities = item_read(actor=vn, item_id=item.pk).entities
    assert [entity["type"] for entity in entities] == ["phone", "vehicle"]
    assert entities[1] | {} == {"type": "vehicle", "plate": "51C-123.45", "country": "VN", "make": "Toyota",
                                "model": "Hilux", "colour": "white"}  # fmt: skip
    assert sorted(MatchToken.objects.filter(item=item).values_list("kind", flat=True)) == ["phone", "plate"]
    page = client.get(response["Location"]).content.decode()
    for shown in ("Entities", "Country of the plate", "Hilux", "Thailand", "<dt>Discoverable</dt><dd>Yes</dd>"):
        assert shown in page


def test_a_bad_entity_names_the_entity_and_field_keeps_what_was_typed_and_stores_nothing(net):
    client = _client(net.user("vn.officer"))
    bad_phone = {"type": "phone", "phone__number": "12", "phone__country": "TH"}
    response = client.post("/items/new/", _data(VEHICLE, bad_phone))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Entity 2 (Phone number), Phone number:" in page
    for typed in ('value="51C-123.45"', 'value="12"', 'value="Ketamine in tyres"'):
        assert typed in page
    assert not Item.objects.exists()
    assert ItemEntity.objects.count() == MatchToken.objects.count() == 0


def test_a_required_entity_field_is_asked_for_before_the_service(net):
    client = _client(net.user("vn.officer"))
    page = client.post("/items/new/", _data({"type": "vehicle", "vehicle__make": "Toyota"})).content.decode()
    assert "Entity 1 (Vehicle), Plate: Required for this type of entity." in page
    assert not Item.objects.exists()


def test_a_row_with_a_type_and_nothing_typed_is_left_out(net):
    client = _client(net.user("vn.officer"))
    response = client.post("/items/new/", _data({"type": "phone", "phone__country": "VN"}))
    assert response.status_code == 302
    assert not ItemEntity.objects.exists()


def test_the_discoverable_choice_is_required_and_never_yes_for_tlp_red(net):
    client = _client(net.user("vn.officer"))
    missing = client.post("/items/new/", _data(discoverable=""))
    assert "Choose whether the item is discoverable." in missing.content.decode()
    red = client.post("/items/new/", _data(handling_code="red", discoverable="yes"))
    assert "A TLP:RED item is never discoverable" in red.content.decode()
    assert not Item.objects.exists()
    posted = client.post("/items/new/", _data(handling_code="red", discoverable="no"))
    assert posted.status_code == 302
    assert Item.objects.get().discoverable is False


def test_the_item_page_names_entities_in_the_readers_language(net):
    vn = net.user("vn.officer")
    client = _client(vn)
    response = client.post("/items/new/", _data(VEHICLE))
    assert response.status_code == 302
    Membership.objects.filter(user=vn).update(language="th")
    page = client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="th").content.decode()
    assert "ยานพาหนะ" in page  # Vehicle
    assert "ป้ายทะเบียน" in page  # Plate


def test_an_items_entities_come_back_as_rows_to_correct():
    entities = [
        {"type": "person", "name": "Somchai", "aliases": ["Chai", "Big C"], "birth_date": "1980-03-12"},
        {"type": "identity_document", "doc_type": "seafarer_book", "country": "TH", "number": "X1"},
    ]
    rows = EntityFormSet(prefix=PREFIX, own_country="TH", initial=entity_rows_initial(entities))
    person, document, blank = rows.forms
    assert person.chosen_type == "person"
    assert person["person__aliases"].value() == "Chai\nBig C"
    assert [field.name for field in person.shown_fields()][:3] == [
        "person__name",
        "person__aliases",
        "person__birth_date",
    ]
    # a document type given through the API, not among the usual ones, is still offered
    assert ("seafarer_book", "seafarer_book") in document.fields["identity_document__doc_type"].choices
    assert blank.chosen_type == ""
