"""STIX 2.1 out of ISN: one item as a bundle (an export), and TAXII 2.1 collections as pages of objects.

Content is only ever opened through ``messaging.items.lifecycle.item_read``, the REST API's own audited read: every
object served with content is recorded as a read of its item, and an item the caller may not read is the REST API's
404. A revoked version (an item the caller held and lost, or their own withdrawn or expired item) is built from ids,
times and the originator alone, and opens nothing.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import stix2
from django.db import transaction
from django.utils.dateparse import parse_datetime

from audit.services import record
from isn.errors import ApplicationError, InvalidInput, NotFound
from messaging.core.people import Reader
from messaging.core.sealing import ITEM
from messaging.interop import stix
from messaging.interop.ids import entity_key, minted_entity_ids, release_key, stix_ids
from messaging.items.lifecycle import ItemContent, item_read
from messaging.models import Item, ItemStatus, StixKind
from messaging.selectors import interop as selectors
from messaging.selectors.items import reader_required, released_countries

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

INBOX = "inbox"
POSTED = "posted"
COLLECTIONS = (INBOX, POSTED)
PAGE_MAX = 1000


class TaxiiNotFound(NotFound):
    """An object, or a collection, the caller may not see: the REST API's answer for a hidden item."""


# --- one item's objects --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """One item's objects as one reader is served them, in order, with when its version was added for them."""

    item_id: uuid.UUID
    added: datetime
    revoked: bool
    objects: list[Any]


@functools.cache
def _definitions() -> tuple[Any, ...]:
    """ISN's identity and extension definitions: fixed, so built once per process."""
    return (stix.isn_identity(), *stix.extension_definitions())


def _shared_ids(item: Item, release_countries: Sequence[str] | None) -> dict[tuple, tuple[uuid.UUID, datetime]]:
    keys = [(StixKind.REPORT, item.pk, ""), (StixKind.IDENTITY, None, str(item.originator_agency_id))]
    if release_countries is not None:
        keys.append((StixKind.RELEASE, None, release_key(item.originator_country, release_countries)))
    return stix_ids(keys)


def _release_shown(reader: Reader, item: Item, content: ItemContent | None) -> list[str]:
    """What a reader is shown of the release: the whole list to the originating agency, otherwise only the
    originator's country and their own (never the other countries it was released to)."""
    if reader.originates(item):
        countries = content.release["countries"] if content and content.release else released_countries(item)
        return sorted(countries)
    return sorted({item.originator_country, reader.country})


def _group(reader: Reader, item: Item, *, content: ItemContent | None, added: datetime, revoked_at: datetime | None):
    """The objects of one item version: revoked (no content) when ``content`` is None."""
    revoked = content is None
    countries = None if revoked else _release_shown(reader, item, content)
    ids = _shared_ids(item, countries)
    report_uuid, _ = ids[(StixKind.REPORT, item.pk, "")]
    identity_uuid, identity_created = ids[(StixKind.IDENTITY, None, str(item.originator_agency_id))]
    identity_id = f"identity--{identity_uuid}"
    agency = item.originator_agency
    objects: list[Any] = [
        *_definitions(),
        stix.agency_identity(identity_id, created=identity_created, name=agency.name, country=agency.country_id),
    ]
    if revoked:
        modified = max(revoked_at or item.updated_at, item.updated_at)
        entity_ids = [f"{stix.STIX_TYPES[key.split(':', 1)[1]]}--{pk}" for key, pk in minted_entity_ids(item.pk)]
        view = stix.ItemStix(
            report_id=f"report--{report_uuid}",
            identity_id=identity_id,
            release_marking_id="",
            created=item.created_at,
            modified=modified,
            revoked=True,
            entity_ids=entity_ids,
        )
        objects += stix.item_objects(view)
        return Group(item_id=item.pk, added=added, revoked=True, objects=objects)
    assert content is not None
    assert countries is not None
    marking_uuid, marking_created = ids[(StixKind.RELEASE, None, release_key(item.originator_country, countries))]
    entity_keys = [
        (StixKind.ENTITY, item.pk, entity_key(position, entity["type"]))
        for position, entity in enumerate(content.entities)
    ]
    minted = stix_ids(entity_keys)
    entity_ids = [f"{stix.STIX_TYPES[key[2].split(':', 1)[1]]}--{minted[key][0]}" for key in entity_keys]
    metadata = {
        "source_reliability": item.source_reliability,
        "info_credibility": item.info_credibility,
        "grading": f"{item.source_reliability}{item.info_credibility}",
        "category": item.category,
        "priority": item.priority,
        "handling_code": item.handling_code,
        "border_crossing": item.border_crossing,
        "review_date": item.review_date.isoformat(),
        "content_version": item.content_version,
        "status": item.status,
        "released_countries": countries if reader.originates(item) else None,
    }
    view = stix.ItemStix(
        report_id=f"report--{report_uuid}",
        identity_id=identity_id,
        release_marking_id=f"marking-definition--{marking_uuid}",
        created=item.created_at,
        modified=item.updated_at,
        revoked=False,
        entity_ids=entity_ids,
        metadata=metadata,
        title=content.title,
        body=content.body,
        language=item.language,
        handling_code=item.handling_code,
        info_credibility=item.info_credibility,
        entities=content.entities,
    )
    objects += [
        stix.tlp_marking(item.handling_code),
        stix.release_marking(
            f"marking-definition--{marking_uuid}",
            created=marking_created,
            originator=item.originator_country,
            countries=countries,
        ),
        *stix.item_objects(view),
    ]
    return Group(item_id=item.pk, added=added, revoked=False, objects=objects)


def _open(actor: AbstractBaseUser, reader: Reader, item: Item, added: datetime) -> Group | None:
    """The item's current version for the reader, opened through the audited read; None when it is no longer
    theirs to read (a race with a narrowing: the next page serves it revoked) or did not open (recorded)."""
    if item.status != ItemStatus.ACTIVE:  # the originator's own withdrawn or expired item: revoked for them too
        return _group(reader, item, content=None, added=added, revoked_at=item.updated_at)
    try:
        content = item_read(actor=actor, item_id=item.pk)
    except ApplicationError:
        return None
    return _group(reader, content.item, content=content, added=added, revoked_at=None)


def item_export(*, actor: AbstractBaseUser, item_id: object) -> stix2.v21.Bundle:
    """One item the caller may read as a STIX 2.1 bundle: read through the audited read, then recorded as
    ``messaging.item.export``. An item they may not read is NotFound, as a read is."""
    reader = reader_required(actor)
    content = item_read(actor=actor, item_id=item_id)
    item = content.item
    with transaction.atomic():
        if item.status == ItemStatus.ACTIVE:
            group = _group(reader, item, content=content, added=item.updated_at, revoked_at=None)
        else:
            group = _group(reader, item, content=None, added=item.updated_at, revoked_at=item.updated_at)
        record(
            action="messaging.item.export",
            actor=actor,
            target=item,
            target_country=item.originator_country,
            details={"format": "stix-2.1", "content_version": item.content_version, "revoked": group.revoked},
        )
    return stix2.v21.Bundle(objects=group.objects, allow_custom=True)


# --- TAXII collections ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """A TAXII request's filters: ``match[id]``, ``match[type]``, ``match[version]`` and ``added_after``."""

    added_after: datetime | None = None
    ids: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()
    versions: frozenset[str] = frozenset()
    nothing: bool = False

    def wants(self, obj: Any) -> bool:
        if self.nothing:
            return False
        if self.ids and obj["id"] not in self.ids:
            return False
        if self.types and obj["type"] not in self.types:
            return False
        if self.versions and not ({"first", "last", "all"} & self.versions):
            return version_of(obj) in self.versions
        return True


def version_of(obj: Any) -> str:
    stamp = obj.get("modified") or obj.get("created")
    return stix2.utils.format_datetime(stamp) if isinstance(stamp, datetime) else str(stamp)


@dataclass(frozen=True)
class Page:
    objects: list[Any]
    # the date_added of each object served, in order
    added: list[datetime]
    more: bool
    next: str | None


def _encode_next(added: datetime, item_id: uuid.UUID, index: int) -> str:
    raw = json.dumps([added.isoformat(), str(item_id), index]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_next(value: str) -> tuple[selectors.Position, int]:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        added, item_id, index = json.loads(raw)
        stamp = parse_datetime(added)
        if stamp is None or not isinstance(index, int) or index < 0:
            raise ValueError(value)
        return selectors.Position(added=stamp, item_id=uuid.UUID(item_id)), index
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidInput("Not a 'next' this server gave out: start again without one.") from None


def _item_ids_matching(ids: Iterable[str]) -> list[uuid.UUID] | None:
    """The items that ``match[id]`` names (through their kept report and entity ids); None when no filter."""
    ids = list(ids)
    if not ids:
        return None
    found = []
    for stix_id in ids:
        _, _, tail = stix_id.partition("--")
        try:
            item_id = selectors.stix_item_of(uuid.UUID(tail))
        except ValueError:
            continue
        if item_id is not None:
            found.append(item_id)
    return found


def _rows(
    reader: Reader,
    collection: str,
    query: Query,
    position: selectors.Position | None,
    limit: int,
    only: list[uuid.UUID] | None = None,
):
    """The next ``limit`` rows (added, item id, item, revoked) of a collection after ``position``, merged from its
    streams, and whether more follow."""
    item_ids = only if only is not None else _item_ids_matching(query.ids)
    if item_ids == []:
        return [], False
    current = selectors.taxii_current(
        reader, posted=collection == POSTED, added_after=query.added_after, position=position, item_ids=item_ids
    )[:limit]
    rows = [
        (item.taxii_added, item.pk, item, item.status != ItemStatus.ACTIVE)  # type: ignore[attr-defined]
        for item in current
    ]
    if collection == INBOX:
        lost = list(
            selectors.taxii_lost(reader, added_after=query.added_after, position=position, item_ids=item_ids)[:limit]
        )
        items = selectors.items_by_id(row["item_id"] for row in lost)
        rows += [(row["taxii_added"], row["item_id"], items[row["item_id"]], True) for row in lost]
    rows.sort(key=lambda row: (row[0], row[1]))
    return rows[:limit], len(rows) > limit


def _reader_for(actor: AbstractBaseUser, collection: str) -> Reader:
    if collection not in COLLECTIONS:
        raise TaxiiNotFound("No such collection.")
    return reader_required(actor)


def _record_page(actor: AbstractBaseUser, item_ids: list[str], *, what: str) -> None:
    """One list event naming every item a page drew on (each content read is recorded by the read itself)."""
    if item_ids:
        record(
            action="messaging.item.list",
            actor=actor,
            target_type=ITEM,
            details={"item_ids": item_ids, "count": len(item_ids), "via": f"taxii.{what}"},
        )


def _build(actor: AbstractBaseUser, reader: Reader, row: tuple, *, shapes_only: bool) -> Group | None:
    added, _item_id, item, revoked = row
    if revoked:
        return _group(reader, item, content=None, added=added, revoked_at=added)
    if shapes_only:
        # The objects' ids and versions without their content: nothing is opened (a manifest lists, not reads).
        shapes = selectors.entity_shapes([item.pk]).get(item.pk, [])
        blank = ItemContent(item=item, title="-", body="", entities=[{"type": kind} for _, kind in shapes])
        return _group(reader, item, content=blank, added=added, revoked_at=None)
    return _open(actor, reader, item, added)


def collection_page(
    *,
    actor: AbstractBaseUser,
    collection: str,
    query: Query,
    limit: int,
    next_: str | None = None,
    manifest: bool = False,
) -> Page:
    """One page of a collection's objects, at most ``limit``, oldest added first; ``next`` reads on.

    ``next`` names the (added, item) where the page stopped and the index of the first object of that item not yet
    served, or 0 when the item was done: the next page starts there."""
    reader = _reader_for(actor, collection)
    what = "manifest" if manifest else "objects"
    position, skip = (None, 0) if not next_ else _decode_next(next_)
    served: list[Any] = []
    added: list[datetime] = []
    seen: set[tuple[str, str]] = set()
    named: list[str] = []
    # Each item has at least one object, so ``limit`` rows (and the one being resumed) fill a page.
    rows, more_rows = _rows(reader, collection, query, position, limit + 1)
    if position is not None and skip:
        again = [
            row
            for row in _rows(reader, collection, query, None, 2, only=[position.item_id])[0]
            if (row[0], row[1]) == (position.added, position.item_id)
        ]
        rows = again + rows
    else:
        again = []
    previous: tuple[datetime, uuid.UUID] | None = None
    for row_index, row in enumerate(rows):
        row_added, item_id = row[0], row[1]
        if len(served) == limit:
            _record_page(actor, named, what=what)
            assert previous is not None
            return Page(served, added, True, _encode_next(previous[0], previous[1], 0))
        group = _build(actor, reader, row, shapes_only=manifest)
        previous = (row_added, item_id)
        if group is None:
            continue
        named.append(str(item_id))
        start = skip if (skip and row_index == 0 and again) else 0
        for index in range(start, len(group.objects)):
            obj = group.objects[index]
            key = (obj["id"], version_of(obj))
            if key in seen or not query.wants(obj):
                continue
            if len(served) == limit:
                _record_page(actor, named, what=what)
                return Page(served, added, True, _encode_next(row_added, item_id, index))
            seen.add(key)
            served.append(obj)
            added.append(row_added)
    _record_page(actor, named, what=what)
    if more_rows and previous is not None:
        return Page(served, added, True, _encode_next(previous[0], previous[1], 0))
    return Page(served, added, False, None)
