"""Reads for TAXII (``messaging.interop``): a reader's collections as ordered streams of items, each with the time
its current version was added for that reader.

``inbox`` is what the reader may read (``items.items_visible_to``, the REST inbox's own query) and, for items they
held and lost (narrowed away, withdrawn, expired: the change feed told them), a revoked version. ``posted`` is
what the reader's agency originated, whatever its status. Both are ordered by (added, id), the TAXII ``date_added``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import DateTimeField, F, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Greatest

from messaging.core.people import Reader
from messaging.models import (
    Change,
    ChangeKind,
    Forward,
    Item,
    ItemAgencyGrant,
    ItemCountryGrant,
    ItemEntity,
    StixId,
    StixKind,
)
from messaging.selectors.items import items_visible_to

if TYPE_CHECKING:
    from collections.abc import Iterable

LOST_KINDS = (ChangeKind.ITEM_NARROWED, ChangeKind.ITEM_WITHDRAWN, ChangeKind.ITEM_EXPIRED)


@dataclass(frozen=True)
class Position:
    """Where a page starts: after this (added, id)."""

    added: datetime
    item_id: uuid.UUID


def _after(queryset: QuerySet, *, added_after: datetime | None, position: Position | None, field: str, pk: str):
    if added_after is not None:
        queryset = queryset.filter(**{f"{field}__gt": added_after})
    if position is not None:
        queryset = queryset.filter(
            Q(**{f"{field}__gt": position.added}) | Q(**{field: position.added, f"{pk}__gt": position.item_id})
        )
    return queryset


def taxii_current(
    reader: Reader,
    *,
    posted: bool,
    added_after: datetime | None = None,
    position: Position | None = None,
    item_ids: Iterable[uuid.UUID] | None = None,
) -> QuerySet[Item]:
    """The reader's items in a collection, oldest added first, each annotated ``taxii_added``: when its current
    version reached the reader (its last change, or when it was released or forwarded to them, the latest)."""
    items = Item.objects.filter(originator_agency_id=reader.agency_id) if posted else items_visible_to(reader)
    item = OuterRef("pk")
    # When the reader's country, their agency (a consent naming it) or a forward to their agency reached the item:
    # an item that reaches a reader late is added for them then, so a poll with ``added_after`` does not miss it.
    granted = Subquery(ItemCountryGrant.objects.filter(item=item, country_id=reader.country).values("created_at")[:1])
    agency_granted = Subquery(
        ItemAgencyGrant.objects.filter(item=item, agency_id=reader.agency_id).values("created_at")[:1]
    )
    forwarded = Subquery(
        Forward.objects.filter(item=item, to_agency_id=reader.agency_id, revoked_at__isnull=True)
        .order_by("-created_at")
        .values("created_at")[:1]
    )
    created = F("created_at")
    items = items.annotate(
        taxii_added=Greatest(
            F("updated_at"),
            Coalesce(granted, created),
            Coalesce(agency_granted, created),
            Coalesce(forwarded, created),
            output_field=DateTimeField(),
        )
    )
    if item_ids is not None:
        items = items.filter(pk__in=list(item_ids))
    items = _after(items, added_after=added_after, position=position, field="taxii_added", pk="pk")
    return items.select_related("originator_agency").defer("body_sealed").order_by("taxii_added", "pk")


def taxii_lost(
    reader: Reader,
    *,
    added_after: datetime | None = None,
    position: Position | None = None,
    item_ids: Iterable[uuid.UUID] | None = None,
) -> QuerySet:
    """Items the change feed told the reader they lost and that they may not read now: rows of (``item_id``,
    ``taxii_added``: when they last lost it), oldest first. Only ids and times: revoked versions carry no content."""
    mine = Q(agency_id=reader.agency_id) & (Q(office__isnull=True) | Q(office_id=reader.office_id)) | Q(
        user_id=reader.pk
    )
    changes = Change.objects.filter(mine, kind__in=LOST_KINDS, item_id__isnull=False).exclude(
        item_id__in=items_visible_to(reader).values("pk")
    )
    if item_ids is not None:
        changes = changes.filter(item_id__in=list(item_ids))
    rows = changes.values("item_id").annotate(taxii_added=Max("at"))
    if position is not None or added_after is not None:
        rows = _after(rows, added_after=added_after, position=position, field="taxii_added", pk="item_id")
    return rows.order_by("taxii_added", "item_id")


def items_by_id(item_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Item]:
    """Items named by ``taxii_lost`` rows, for what a revoked version keeps (originator, first created): never
    content, so not scoped further than the change feed that named them."""
    return Item.objects.select_related("originator_agency").defer("title_sealed", "body_sealed").in_bulk(list(item_ids))


def entity_shapes(item_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[tuple[int, str]]]:
    """The (position, type) of each entity of the items (no content: neither is sealed)."""
    shapes: dict[uuid.UUID, list[tuple[int, str]]] = {}
    for item_id, position, entity_type in (
        ItemEntity.objects.filter(item_id__in=list(item_ids))
        .order_by("item_id", "position")
        .values_list("item_id", "position", "entity_type")
    ):
        shapes.setdefault(item_id, []).append((position, entity_type))
    return shapes


def stix_item_of(stix_uuid: uuid.UUID) -> uuid.UUID | None:
    """The item a kept report or entity id belongs to, if any."""
    return (
        StixId.objects.filter(stix_id=stix_uuid, kind__in=[StixKind.REPORT, StixKind.ENTITY], item__isnull=False)
        .values_list("item_id", flat=True)
        .first()
    )
