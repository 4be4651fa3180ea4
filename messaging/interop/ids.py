"""ISN's kept STIX ids (``messaging.models.StixId``): minted at random the first time a thing is exported, then
looked up for ever after. Minting races settle on the unique constraints: whoever inserts first wins, and everyone
reads back the same row."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from django.db.models import Q

from messaging.models import StixId, StixKind

# A kept id: (kind, item id or None, key).
Key = tuple[str, uuid.UUID | None, str]


def entity_key(position: int, entity_type: str) -> str:
    """An entity is known by its place in the item and its type: a correction that keeps both keeps its id (a new
    version of the same object); another type at that place is another object."""
    return f"{position}:{entity_type}"


def release_key(originator: str, countries: Iterable[str]) -> str:
    return f"{originator}>{','.join(sorted(countries))}"


def stix_ids(keys: Iterable[Key]) -> dict[Key, tuple[uuid.UUID, datetime]]:
    """The kept id (and when it was minted) of each key, minting those that have none yet."""
    wanted = set(keys)
    if not wanted:
        return {}
    found = _lookup(wanted)
    missing = wanted - found.keys()
    if missing:
        StixId.objects.bulk_create(
            [StixId(kind=kind, item_id=item_id, key=key) for kind, item_id, key in sorted(missing, key=str)],
            ignore_conflicts=True,
        )
        found |= _lookup(missing)
    return found


def _lookup(keys: set[Key]) -> dict[Key, tuple[uuid.UUID, datetime]]:
    per_item = {(kind, item_id) for kind, item_id, _ in keys if item_id is not None}
    shared = {(kind, key) for kind, item_id, key in keys if item_id is None}
    condition = Q(pk__in=[])
    if per_item:
        condition |= Q(item_id__in={item_id for _, item_id in per_item}, kind__in={kind for kind, _ in per_item})
    for kind, key in shared:
        condition |= Q(item__isnull=True, kind=kind, key=key)
    rows = StixId.objects.filter(condition).values_list("kind", "item_id", "key", "stix_id", "created_at")
    return {
        (kind, item_id, key): (stix_id, created_at)
        for kind, item_id, key, stix_id, created_at in rows
        if (kind, item_id, key) in keys
    }


def minted_entity_ids(item_id: uuid.UUID) -> list[tuple[str, uuid.UUID]]:
    """Every entity id ever exported for the item, as (key, id): what a revoked version must revoke."""
    return list(
        StixId.objects.filter(item_id=item_id, kind=StixKind.ENTITY).order_by("id").values_list("key", "stix_id")
    )
