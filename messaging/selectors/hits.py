"""Reads of hits (``messaging.models.hits``), scoped to the viewer in the query: the hits on the viewer's agency's
items (only items the viewer may read, which for its own agency's items is every one), and the hits the viewer's
agency received. An asker never reaches the item a hit names through these: ``received`` carries no item."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import QuerySet

from messaging.core.people import Reader, reader_of
from messaging.models import Hit

if TYPE_CHECKING:
    from typing import TypeAlias

    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    Viewer: TypeAlias = AbstractBaseUser | AnonymousUser

ON_OUR_ITEMS = "on_our_items"
RECEIVED = "received"
DIRECTIONS = [
    (ON_OUR_ITEMS, "Hits on your agency's items, with who asked"),
    (RECEIVED, "Hits your agency's checks received"),
]


def hits_on_our_items(viewer: Viewer | Reader) -> QuerySet[Hit]:
    """Hits on items the viewer's agency originated (which its members may all read), newest first."""
    reader = reader_of(viewer)
    if reader is None:
        return Hit.objects.none()
    return (
        # Every member of an item's originating agency may read it (``items_visible_to``'s first rule), whatever
        # its status: the holder is the originator, so this is that rule, without scanning every visible item.
        Hit.objects.filter(holder_agency_id=reader.agency_id, item__originator_agency_id=reader.agency_id)
        .select_related("asker_agency", "asker_user")
        .order_by("-created_at", "-id")
    )


def hits_received(viewer: Viewer | Reader) -> QuerySet[Hit]:
    """Hits the checks of the viewer's agency received, newest first (never the item: ``item_id`` is not for them)."""
    reader = reader_of(viewer)
    if reader is None:
        return Hit.objects.none()
    return (
        Hit.objects.filter(asker_agency_id=reader.agency_id)
        .select_related("holder_agency")
        .order_by("-created_at", "-id")
    )


def hits_in_direction(viewer: Viewer | Reader, direction: str) -> QuerySet[Hit]:
    if direction == ON_OUR_ITEMS:
        return hits_on_our_items(viewer)
    if direction == RECEIVED:
        return hits_received(viewer)
    return Hit.objects.none()
