"""An item's entities: checked and normalised (``normalise.match_values``), sealed under the item's data key, opened
for a reader, re-sealed when the item's key or content version moves, and their blind match tokens written, deleted
and recomputed after a rotation of the match key.

These are helpers of the item services (``messaging.items``), which own the transaction and the audit record; the
recompute step runs from ``agencies.keyring.match_tokens_recompute``, which records it.
"""

from __future__ import annotations

import datetime
import json
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from agencies.keyring import match_tokens
from isn.errors import InvalidInput
from messaging.core.sealing import (
    Unreadable,
    item_data_key_if_held,
    item_entity_aad,
    opened,
    sealed,
)
from messaging.core.validation import Problems
from messaging.matching.normalise import (
    BUDDHIST_ERA_FROM,
    BUDDHIST_ERA_OFFSET,
    country_code,
    digits_ascii,
    match_values,
)
from messaging.models import ENTITIES_MAX, EntityType, Item, ItemEntity, MatchToken

ENTITY_TEXT_MAX_LENGTH = 500
ALIASES_MAX = 20
UNKNOWN_FIELD = "This operation does not take this field."

# The fields each type of entity takes: those ``match_values`` reads (see its docstring), and those that only describe
# (``DESCRIPTIVE_FIELDS``: shown to readers, never matched). Every value is text, but a person's ``aliases`` (a list of
# texts). A vessel's ``country`` is its flag.
ENTITY_FIELDS: dict[str, tuple[str, ...]] = {
    EntityType.PERSON: ("name", "aliases", "birth_date", "nationality", "sex"),
    EntityType.IDENTITY_DOCUMENT: ("doc_type", "country", "number"),
    EntityType.PHONE: ("number", "country"),
    EntityType.EMAIL: ("address",),
    EntityType.VEHICLE: ("plate", "country", "make", "model", "colour"),
    EntityType.VESSEL: ("name", "imo", "registration", "country"),
    EntityType.COMPANY: ("name", "registration_number", "country"),
    EntityType.BANK_ACCOUNT: ("number", "country", "bank", "holder"),
    EntityType.WALLET: ("chain", "address"),
    EntityType.LOCATION: ("name", "address", "country", "latitude", "longitude"),
    EntityType.SEIZURE: (
        "substance",
        "quantity",
        "unit",
        "place",
        "date",
        "logo",
        "colour",
        "packaging",
        "lab_profile",
    ),
    EntityType.PRECURSOR: ("name", "cas"),
}
DESCRIPTIVE_FIELDS: dict[str, tuple[str, ...]] = {
    EntityType.PERSON: ("nationality", "sex"),
    EntityType.VEHICLE: ("make", "model", "colour"),
    EntityType.VESSEL: ("name",),
    EntityType.BANK_ACCOUNT: ("bank", "holder"),
    EntityType.LOCATION: ("name", "address", "country", "latitude", "longitude"),
    EntityType.SEIZURE: ("quantity", "unit", "place", "date", "colour", "packaging"),
    EntityType.PRECURSOR: ("name",),
}
SEXES = ("female", "male")
SEIZURE_UNITS = ("kg", "g", "l", "ml", "tablets", "pieces", "packages")
ALL_ENTITY_FIELDS: tuple[str, ...] = tuple(sorted({name for names in ENTITY_FIELDS.values() for name in names}))


@dataclass(frozen=True)
class CheckedEntity:
    """One entity as it will be stored: its type, its fields as typed (trimmed), and its matchable values."""

    entity_type: str
    fields: dict[str, Any]
    pairs: list[tuple[str, str]]


def _checked_value(problems: Problems, where: str, name: str, value: object) -> Any:
    if name == "aliases":
        if not isinstance(value, list) or len(value) > ALIASES_MAX:
            problems.add(where, f"A list of at most {ALIASES_MAX} names.")
            return None
        return [_checked_value(problems, where, "alias", alias) for alias in value]
    if not isinstance(value, str):
        problems.add(where, "Must be text.")
        return None
    value = value.strip()
    if len(value) > ENTITY_TEXT_MAX_LENGTH:
        problems.add(where, f"At most {ENTITY_TEXT_MAX_LENGTH} characters.")
    elif any(ord(char) < 32 or ord(char) == 127 for char in value):
        problems.add(where, "Control characters are not allowed.")
    return value


_QUANTITY = re.compile(r"\d+(?:[.,]\d+)*")
_DATE_YEAR_FIRST = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_DATE_DAY_FIRST = re.compile(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})")


def _event_date(text: str) -> str:
    """A date something happened (a seizure), ISO ``YYYY-MM-DD``: year first or day first, digits of any script,
    Buddhist-era years; not in the future."""
    text = digits_ascii(text)
    if found := _DATE_YEAR_FIRST.fullmatch(text):
        year, month, day = (int(part) for part in found.groups())
    elif found := _DATE_DAY_FIRST.fullmatch(text):
        day, month, year = (int(part) for part in found.groups())
    else:
        raise ValueError("Not a date: write YYYY-MM-DD or DD/MM/YYYY.")
    if year >= BUDDHIST_ERA_FROM:
        year -= BUDDHIST_ERA_OFFSET
    try:
        date = datetime.date(year, month, day)
    except ValueError:
        raise ValueError("No such date.") from None
    if date > datetime.date.today() or date.year < 1900:
        raise ValueError("Not a possible date: it is in the future or before 1900.")
    return date.isoformat()


def _coordinate(text: str, limit: int) -> str:
    try:
        value = float(digits_ascii(text).replace(",", "."))
    except ValueError:
        raise ValueError("A number of degrees, such as 11.5564.") from None
    if not -limit <= value <= limit:
        raise ValueError(f"Between -{limit} and {limit} degrees.")
    return digits_ascii(text).replace(",", ".")


def _described(name: str, value: str) -> str:
    """A descriptive field's value in its one stored form, or ValueError with what is wrong."""
    if name in ("nationality", "country"):
        try:
            return country_code(value, field=name)
        except InvalidInput:
            raise ValueError("A two-letter country code (ISO 3166-1), such as TH.") from None
    if name == "sex":
        if value.casefold() not in SEXES:
            raise ValueError(f"One of {', '.join(SEXES)}.")
        return value.casefold()
    if name == "quantity":
        quantity = digits_ascii(value).replace(" ", "")
        if not _QUANTITY.fullmatch(quantity) or not quantity.strip("0.,"):
            raise ValueError("A number greater than zero, such as 12.5.")
        return quantity
    if name == "unit":
        if value.casefold() not in SEIZURE_UNITS:
            raise ValueError(f"One of {', '.join(SEIZURE_UNITS)}.")
        return value.casefold()
    if name == "date":
        return _event_date(value)
    if name in ("latitude", "longitude"):
        return _coordinate(value, 90 if name == "latitude" else 180)
    return value


def _descriptive_check(problems: Problems, where: str, entity_type: str, fields: dict[str, Any]) -> None:
    """The fields that describe but never match, checked and put in their stored form (``fields`` is changed)."""
    for name in DESCRIPTIVE_FIELDS.get(entity_type, ()):
        value = fields.get(name)
        if not value:
            fields.pop(name, None)
            continue
        try:
            fields[name] = _described(name, value)
        except ValueError as refused:
            problems.add(f"{where}.{name}", str(refused))
    if fields.get("quantity") and not fields.get("unit"):
        problems.add(f"{where}.unit", "Give the unit of the quantity.")


def entities_check(problems: Problems, entities: Sequence[Mapping[str, Any]]) -> list[CheckedEntity]:
    """Every entity checked: a known ``type``, only that type's fields, values that ``match_values`` accepts. Each
    problem is noted as ``entities[i].field``; what is returned is only meaningful when none was noted."""
    if entities is None:
        return []
    if not isinstance(entities, list | tuple):
        problems.add("entities", "A list of entities.")
        return []
    if len(entities) > ENTITIES_MAX:
        problems.add("entities", f"At most {ENTITIES_MAX} entities.")
        return []
    checked = []
    for index, entity in enumerate(entities):
        where = f"entities[{index}]"
        if not isinstance(entity, Mapping):
            problems.add(where, "An object with a type and its fields.")
            continue
        entity_type = entity.get("type")
        if entity_type not in ENTITY_FIELDS:
            problems.add(f"{where}.type", f"One of {', '.join(sorted(ENTITY_FIELDS))}.")
            continue
        allowed = ENTITY_FIELDS[entity_type]
        fields: dict[str, Any] = {}
        before = len(problems.errors)
        for name, value in entity.items():
            if name == "type":
                continue
            if name not in allowed:
                problems.add(f"{where}.{name}", UNKNOWN_FIELD)
            elif value is not None:
                fields[name] = _checked_value(problems, f"{where}.{name}", name, value)
        if len(problems.errors) == before:
            _descriptive_check(problems, where, str(entity_type), fields)
        if len(problems.errors) != before:
            continue
        try:
            pairs = match_values(entity_type, fields)
        except InvalidInput as refused:
            named = refused.extra.get("fields") or {"": [str(refused)]}
            for name, messages in named.items():
                for message in messages:
                    problems.add(f"{where}.{name}" if name else where, message)
            continue
        if not fields and entity_type == EntityType.LOCATION:
            problems.add(where, "A location needs at least one field.")
            continue
        checked.append(CheckedEntity(entity_type=str(entity_type), fields=fields, pairs=pairs))
    return checked


def _fields_sealed(data_key: bytes, item_id: uuid.UUID, entity_id: uuid.UUID, version: int, fields: dict) -> bytes:
    plaintext = json.dumps(fields, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return sealed(data_key, plaintext, aad=item_entity_aad(item_id, entity_id, version))


def entities_store(item: Item, data_key: bytes, entities: Sequence[CheckedEntity], *, version: int) -> None:
    """Seal and store an item's entities (one statement) and the tokens of their matchable values (one more, and
    the match key held until the transaction ends); nothing at all for an item without entities."""
    if not entities:
        return
    rows = []
    for position, entity in enumerate(entities):
        entity_id = uuid.uuid4()
        sealed_fields = _fields_sealed(data_key, item.pk, entity_id, version, entity.fields)
        rows.append(
            ItemEntity(
                id=entity_id, item=item, position=position, entity_type=entity.entity_type, fields_sealed=sealed_fields
            )
        )
    ItemEntity.objects.bulk_create(rows)
    _tokens_write(item, [(row, entity.pairs) for row, entity in zip(rows, entities, strict=True)])


def _tokens_write(
    item: Item, entities: Sequence[tuple[ItemEntity, list[tuple[str, str]]]], version: int | None = None
) -> None:
    pairs = [pair for _entity, entity_pairs in entities for pair in entity_pairs]
    if not pairs:
        return
    if version is None:
        version, tokens = match_tokens(pairs, hold=True)
    else:
        version, tokens = match_tokens(pairs, version=version)
    owners = [(entity, kind) for entity, entity_pairs in entities for kind, _value in entity_pairs]
    MatchToken.objects.bulk_create(
        [
            MatchToken(item=item, entity=entity, kind=kind, token=token, key_version=version)
            for (entity, kind), token in zip(owners, tokens, strict=True)
        ]
    )


def entities_replace(item: Item, data_key: bytes, entities: Sequence[CheckedEntity], *, version: int) -> None:
    """A correction's complete new list of entities: the old ones and their tokens go, the new ones are stored."""
    ItemEntity.objects.filter(item=item).delete()
    entities_store(item, data_key, entities, version=version)


def _entity_open(data_key: bytes, item: Item, entity: ItemEntity, version: int, country_code: str) -> dict[str, Any]:
    failure = Unreadable.of_item(item, country_code, "entity_does_not_open")
    aad = item_entity_aad(item.pk, entity.pk, version)
    return json.loads(opened(data_key, entity.fields_sealed, aad=aad, failure=failure))


def entities_open(data_key: bytes, item: Item, country_code: str) -> list[dict[str, Any]]:
    """An item's entities opened for ``country_code`` (inside a ``fails_closed`` service), each ``{"type", ...}``."""
    return [
        {"type": entity.entity_type, **_entity_open(data_key, item, entity, item.content_version, country_code)}
        for entity in ItemEntity.objects.filter(item=item).order_by("position")
    ]


def entities_reseal(item: Item, old_key: bytes, data_key: bytes, *, old_version: int, version: int) -> None:
    """Seal an item's entities again, under ``data_key`` for content version ``version`` (a re-key or a
    correction); their values, so their tokens, do not change."""
    entities = list(ItemEntity.objects.select_for_update().filter(item=item))
    for entity in entities:
        fields = _entity_open(old_key, item, entity, old_version, item.originator_country)
        entity.fields_sealed = _fields_sealed(data_key, item.pk, entity.pk, version, fields)
    if entities:
        ItemEntity.objects.bulk_update(entities, ["fields_sealed"])


def tokens_drop(item: Item) -> int:
    """Delete an item's match tokens: a withdrawn or expired item stops matching at once."""
    deleted, _by_model = MatchToken.objects.filter(item=item).delete()
    return deleted


# --- recomputing after a rotation of the match key ------------------------------------------------------------------

RECOMPUTE_BATCH = 200


def match_tokens_recompute_step(*, old_version: int, new_version: int, deadline: float | None) -> tuple[int, int]:
    """``agencies.keyring``'s recompute step for ``MatchToken``: batch by batch, each entity holding tokens of
    ``old_version`` is opened with its item's data key as the originator's country, its values normalised again and
    its tokens written anew under ``new_version``. An entity that no longer opens (its item's keys shredded) has its
    tokens deleted: it could never match again anyway. Returns (tokens recomputed, tokens of old_version left)."""
    recomputed = 0
    while deadline is None or time.monotonic() < deadline:
        entity_ids = list(
            MatchToken.objects.filter(key_version=old_version)
            .values_list("entity_id", flat=True)
            .distinct()[:RECOMPUTE_BATCH]
        )
        if not entity_ids:
            break
        with transaction.atomic():
            recomputed += _recompute_batch(entity_ids, old_version=old_version, new_version=new_version)
    return recomputed, MatchToken.objects.filter(key_version=old_version).count()


def _recompute_batch(entity_ids: list[uuid.UUID], *, old_version: int, new_version: int) -> int:
    # The items are locked first, so that a correction replacing their entities cannot slip in between; the
    # entities are read after the lock (one replaced meanwhile is gone, and its tokens with it).
    item_ids = set(ItemEntity.objects.filter(pk__in=entity_ids).values_list("item_id", flat=True))
    items = {item.pk: item for item in Item.objects.select_for_update().filter(pk__in=item_ids).order_by("pk")}
    entities = list(ItemEntity.objects.filter(pk__in=entity_ids).order_by("pk"))
    keys: dict[uuid.UUID, bytes | None] = {}
    rewritten: list[tuple[ItemEntity, list[tuple[str, str]]]] = []
    for entity in entities:
        item = items[entity.item_id]
        if item.pk not in keys:
            try:
                keys[item.pk] = item_data_key_if_held(item, item.originator_country)
            except Unreadable:
                keys[item.pk] = None
        data_key = keys[item.pk]
        if data_key is None:
            continue
        try:
            fields = _entity_open(data_key, item, entity, item.content_version, item.originator_country)
            rewritten.append((entity, match_values(entity.entity_type, fields)))
        except (Unreadable, InvalidInput):
            continue
    MatchToken.objects.filter(entity_id__in=entity_ids, key_version=old_version).delete()
    MatchToken.objects.filter(entity_id__in=[entity.pk for entity, _pairs in rewritten]).delete()
    by_item: dict[uuid.UUID, list[tuple[ItemEntity, list[tuple[str, str]]]]] = {}
    for entity, pairs in rewritten:
        by_item.setdefault(entity.item_id, []).append((entity, pairs))
    written = 0
    for item_id, owned in by_item.items():
        _tokens_write(items[item_id], owned, version=new_version)
        written += sum(len(pairs) for _entity, pairs in owned)
    return written
