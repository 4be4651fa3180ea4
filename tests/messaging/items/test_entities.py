"""An item's entities: sealed with the item, read back by those who may read it, kept matchable only as blind tokens
(never the values), refused whole on a bad field, re-sealed with a correction, and no longer matchable once the item
is withdrawn or expired."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from agencies.keyring import match_key_rotate, match_tokens, match_tokens_recompute
from audit.models import AuditEvent
from isn.errors import InvalidInput
from messaging.items.changes import item_change, item_withdraw, items_expire
from messaging.items.lifecycle import item_read
from messaging.matching.normalise import match_values
from messaging.models import Item, ItemEntity, MatchToken
from tests.messaging.conftest import api_payload

pytestmark = pytest.mark.django_db

PERSON = {"type": "person", "name": "Nguyễn Văn Zeta-Quokka", "aliases": ["Quokka Z"], "birth_date": "12/03/1980"}
PHONE = {"type": "phone", "number": "081 234 5678", "country": "TH"}
PLATE = {"type": "vehicle", "plate": "70C-991.37", "country": "VN"}
NAME_ONLY = {"type": "person", "name": "Tran Thi Wombat"}
LOCATION = {"type": "location", "name": "Warehouse by the Xyzzy river"}
ENTITIES = [PERSON, PHONE, PLATE, NAME_ONLY, LOCATION]


def _typed(entity: dict) -> dict:
    return {key: value.strip() if isinstance(value, str) else value for key, value in entity.items()}


def _pairs(entity: dict) -> list[tuple[str, str]]:
    fields = {key: value for key, value in entity.items() if key != "type"}
    return match_values(entity["type"], fields)


def _expected_tokens(entities: list[dict]) -> set[tuple[str, bytes]]:
    pairs = [pair for entity in entities for pair in _pairs(entity)]
    _version, tokens = match_tokens(pairs)
    return {(kind, token) for (kind, _value), token in zip(pairs, tokens, strict=True)}


def _stored_tokens(item: Item) -> set[tuple[str, bytes]]:
    return {(kind, bytes(token)) for kind, token in MatchToken.objects.filter(item=item).values_list("kind", "token")}


def _table_bytes(table: str) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT t::text FROM {table} t")  # noqa: S608 - a fixed table name
        rows = b"\n".join(row[0].encode() for row in cursor.fetchall())
        cursor.execute(f"SELECT string_agg(encode(t.*::text::bytea, 'escape'), '') FROM {table} t")  # noqa: S608
        return rows + (cursor.fetchone()[0] or "").encode()


def test_entities_are_stored_sealed_and_read_back_by_those_it_is_released_to(post, vn_officer, kh_officer):
    content = post(vn_officer, entities=ENTITIES)
    assert content.entities == [_typed(entity) for entity in ENTITIES]
    item = content.item
    assert list(ItemEntity.objects.filter(item=item).values_list("entity_type", flat=True)) == [
        "person",
        "phone",
        "vehicle",
        "person",
        "location",
    ]
    assert item_read(actor=kh_officer, item_id=item.pk).entities == [_typed(entity) for entity in ENTITIES]
    assert item_read(actor=vn_officer, item_id=item.pk).entities == [_typed(entity) for entity in ENTITIES]
    event = AuditEvent.objects.get(action="messaging.item.create")
    assert event.details["entity_types"] == ["person", "phone", "vehicle", "person", "location"]


def test_the_database_holds_no_value_of_an_entity_only_tokens(post, vn_officer):
    item = post(vn_officer, entities=ENTITIES).item
    stored = _table_bytes("messaging_itementity") + _table_bytes("messaging_matchtoken")
    # Texts that random ciphertext shown in hex cannot spell by chance (no digits-only value, no hex-only word).
    for value in ("Zeta-Quokka", "zeta quokka", "Quokka", "quokka", "70C-991.37", "70C99137", "Wombat", "Xyzzy"):
        assert value.encode() not in stored
        assert value.encode().hex().encode() not in stored
    assert ItemEntity.objects.filter(item=item).count() == len(ENTITIES)


def test_tokens_are_the_blind_tokens_of_the_normalised_values_and_a_name_alone_makes_none(post, vn_officer):
    item = post(vn_officer, entities=ENTITIES).item
    stored = _stored_tokens(item)
    assert stored == _expected_tokens(ENTITIES)
    # The person with a date of birth: one token for the name and one for the alias; the phone; the plate.
    assert sorted(kind for kind, _token in stored) == ["person", "person", "phone", "plate"]
    name_only = ItemEntity.objects.get(item=item, position=3)
    assert not MatchToken.objects.filter(entity=name_only).exists()
    assert not MatchToken.objects.filter(entity__entity_type="location").exists()
    # The same phone typed another way in another item is the same token: that is what matching will look for.
    other = post(vn_officer, entities=[{"type": "phone", "number": "+66 81 234 5678", "country": "VN"}]).item
    assert _stored_tokens(other) <= stored


@pytest.mark.parametrize(
    ("entity", "field"),
    [
        ({"type": "person", "name": "A", "birth_date": "31/02/1980"}, "entities[0].birth_date"),
        ({"type": "person", "name": "A", "plate": "70C12345"}, "entities[0].plate"),
        ({"type": "phone", "number": "12", "country": "TH"}, "entities[0].number"),
        ({"type": "spaceship", "name": "A"}, "entities[0].type"),
        ({"type": "email", "address": 42}, "entities[0].address"),
        ({"type": "person", "name": "A", "nationality": "Thai"}, "entities[0].nationality"),
        ({"type": "person", "name": "A", "sex": "x"}, "entities[0].sex"),
        ({"type": "seizure", "substance": "heroin", "quantity": "many", "unit": "kg"}, "entities[0].quantity"),
        ({"type": "seizure", "substance": "heroin", "quantity": "12"}, "entities[0].unit"),
        ({"type": "seizure", "substance": "heroin", "date": "31/02/2024"}, "entities[0].date"),
        ({"type": "location", "name": "A", "latitude": "91"}, "entities[0].latitude"),
        ({"type": "precursor", "name": "safrole"}, "entities[0].cas"),
    ],
)
def test_a_bad_entity_is_refused_naming_its_field_and_nothing_is_stored(post, vn_officer, entity, field):
    with pytest.raises(InvalidInput) as refused:
        post(vn_officer, entities=[entity])
    assert field in refused.value.extra["fields"]
    assert Item.objects.count() == 0
    assert ItemEntity.objects.count() == MatchToken.objects.count() == 0


def test_descriptive_fields_are_kept_in_their_stored_form_and_never_match(post, vn_officer):
    entities = [
        {"type": "person", "name": "Somchai Wombat", "nationality": "th", "sex": "Male"},
        {"type": "vehicle", "plate": "70C-991.37", "country": "VN", "make": "Toyota", "model": "Hilux",
         "colour": "white"},
        {"type": "vessel", "name": "Mekong Star", "registration": "LA-1234", "country": "LA"},
        {"type": "seizure", "substance": "methamphetamine", "quantity": "๑๒.๕", "unit": "KG", "place": "Bavet",
         "date": "๓/๑/๒๕๖๗", "logo": "WY", "colour": "pink", "packaging": "tea bags, green"},
        {"type": "precursor", "name": "safrole", "cas": "94-59-7"},
        {"type": "bank_account", "number": "123-456", "country": "KH", "bank": "ABA", "holder": "S. Wombat"},
    ]  # fmt: skip
    content = post(vn_officer, entities=entities)
    person, _vehicle, _vessel, seizure, _precursor, _account = content.entities
    assert (person["nationality"], person["sex"]) == ("TH", "male")
    assert (seizure["quantity"], seizure["unit"], seizure["date"]) == ("12.5", "kg", "2024-01-03")
    kinds = sorted(MatchToken.objects.filter(item=content.item).values_list("kind", flat=True))
    assert kinds == ["account", "cas", "logo", "plate", "vessel"]


def test_at_most_fifty_entities(post, vn_officer):
    with pytest.raises(InvalidInput) as refused:
        post(vn_officer, entities=[LOCATION] * 51)
    assert "entities" in refused.value.extra["fields"]
    assert Item.objects.count() == 0


def test_a_post_through_the_api_takes_entities_and_the_detail_shows_them(api, vn_officer, kh_officer):
    api.force_authenticate(vn_officer)
    posted = api.post("/api/v1/items/", api_payload(entities=[PERSON, PHONE]), format="json")
    assert posted.status_code == 201, posted.content
    assert posted.json()["entities"] == [_typed(PERSON), _typed(PHONE)]
    item_id = posted.json()["id"]
    api.force_authenticate(kh_officer)
    detail = api.get(f"/api/v1/items/{item_id}/")
    assert detail.status_code == 200
    assert detail.json()["entities"] == [_typed(PERSON), _typed(PHONE)]
    assert _stored_tokens(Item.objects.get(pk=item_id)) == _expected_tokens([PERSON, PHONE])


def test_an_item_without_entities_shows_an_empty_list(api, post, vn_officer, kh_officer):
    item = post(vn_officer).item
    api.force_authenticate(kh_officer)
    assert api.get(f"/api/v1/items/{item.pk}/").json()["entities"] == []
    assert ItemEntity.objects.count() == MatchToken.objects.count() == 0


def test_the_api_refuses_a_bad_entity_field_naming_it_and_stores_nothing(api, vn_officer):
    api.force_authenticate(vn_officer)
    bad = {"type": "vehicle", "plate": "70C-991.37", "country": "VN", "wheels": "6"}
    answer = api.post("/api/v1/items/", api_payload(entities=[PLATE, bad]), format="json")
    assert answer.status_code == 400, answer.content
    assert "entities[1].wheels" in answer.content.decode()
    assert Item.objects.count() == 0
    assert api.post("/api/v1/items/", api_payload(entities=["a person"]), format="json").status_code == 400
    assert Item.objects.count() == 0


def test_withdrawing_deletes_the_tokens_at_once(post, vn_officer, kh_officer):
    item = post(vn_officer, entities=ENTITIES).item
    assert MatchToken.objects.filter(item=item).exists()
    item_withdraw(actor=vn_officer, item_id=item.pk)
    assert not MatchToken.objects.filter(item=item).exists()
    # The originator still reads its own withdrawn item, entities included.
    assert item_read(actor=vn_officer, item_id=item.pk).entities == [_typed(entity) for entity in ENTITIES]


def test_expiry_deletes_the_tokens(post, vn_officer):
    item = post(vn_officer, entities=[PHONE]).item
    later = timezone.now().date() + timedelta(days=400)
    assert items_expire(today=later) == 1
    assert not MatchToken.objects.filter(item=item).exists()


def test_a_title_correction_reseals_the_entities_for_the_new_version(post, vn_officer, kh_officer):
    item = post(vn_officer, entities=ENTITIES).item
    before = {pk: bytes(sealed) for pk, sealed in ItemEntity.objects.values_list("pk", "fields_sealed")}
    tokens = _stored_tokens(item)
    item_change(actor=vn_officer, item_id=item.pk, title="Corrected title")
    read = item_read(actor=kh_officer, item_id=item.pk)
    assert read.item.content_version == 2
    assert read.entities == [_typed(entity) for entity in ENTITIES]
    after = {pk: bytes(sealed) for pk, sealed in ItemEntity.objects.values_list("pk", "fields_sealed")}
    assert before.keys() == after.keys()
    assert all(before[pk] != after[pk] for pk in before)
    assert _stored_tokens(item) == tokens


def test_narrowing_rekeys_the_entities_too(post, vn_officer, kh_officer, th_officer):
    item = post(vn_officer, countries=["VN", "KH", "TH"], entities=[PERSON]).item
    item_change(actor=vn_officer, item_id=item.pk, countries=["VN", "KH"])
    assert item_read(actor=kh_officer, item_id=item.pk).entities == [_typed(PERSON)]


def test_a_correction_replaces_the_entities_and_their_tokens(post, vn_officer, kh_officer):
    item = post(vn_officer, entities=[PERSON, PHONE]).item
    item_change(actor=vn_officer, item_id=item.pk, entities=[PLATE])
    read = item_read(actor=kh_officer, item_id=item.pk)
    assert read.item.content_version == 2
    assert read.entities == [_typed(PLATE)]
    assert _stored_tokens(item) == _expected_tokens([PLATE])
    assert AuditEvent.objects.get(action="messaging.item.change").details["changed"] == ["entities"]
    with pytest.raises(InvalidInput) as refused:
        item_change(actor=vn_officer, item_id=item.pk, entities=[{"type": "phone", "number": "x", "country": "TH"}])
    assert "entities[0].number" in refused.value.extra["fields"]
    assert item_read(actor=kh_officer, item_id=item.pk).entities == [_typed(PLATE)]


def test_the_api_correction_takes_entities(api, post, vn_officer):
    item = post(vn_officer, entities=[PERSON]).item
    api.force_authenticate(vn_officer)
    answer = api.patch(f"/api/v1/items/{item.pk}/", {"entities": []}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["content_version"] == 2
    assert not ItemEntity.objects.filter(item=item).exists()
    assert not MatchToken.objects.filter(item=item).exists()


def test_a_rotation_of_the_match_key_recomputes_the_tokens_and_retires_the_old_key(post, vn_officer):
    item = post(vn_officer, entities=ENTITIES).item
    withdrawn = post(vn_officer, entities=[PHONE]).item
    item_withdraw(actor=vn_officer, item_id=withdrawn.pk)
    old_version = MatchToken.objects.filter(item=item).values_list("key_version", flat=True).first()
    match_key_rotate(actor=None)
    result = match_tokens_recompute(actor=None, old_version=old_version)
    assert result.retired
    assert result.recomputed == len(_expected_tokens(ENTITIES))
    assert not MatchToken.objects.filter(key_version=old_version).exists()
    assert _stored_tokens(item) == _expected_tokens(ENTITIES)  # now under the new primary version


def test_a_recompute_out_of_time_stops_and_continues_where_it_stopped(post, vn_officer):
    item = post(vn_officer, entities=[PERSON, PHONE]).item
    old_version = MatchToken.objects.filter(item=item).values_list("key_version", flat=True).first()
    match_key_rotate(actor=None)
    stopped = match_tokens_recompute(actor=None, old_version=old_version, time_budget=0)
    assert (stopped.recomputed, stopped.remaining, stopped.retired) == (0, 3, False)
    assert _stored_tokens(item) != _expected_tokens([PERSON, PHONE])  # still the old version's
    finished = match_tokens_recompute(actor=None, old_version=old_version)
    assert (finished.recomputed, finished.remaining, finished.retired) == (3, 0, True)
    assert _stored_tokens(item) == _expected_tokens([PERSON, PHONE])
