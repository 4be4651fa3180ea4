"""The originator's view of the hits on an item: who checked an identifier it carries, when, and the reference they
were given. Seeing who asked is itself a read, and recorded, like the view of who read the item."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import transaction

from audit.services import record
from messaging.models import Hit
from messaging.selectors.items import item_get_as_originator

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

# The tracking page shows this many, newest first, and says how many there are in all.
HITS_SHOWN = 100


@dataclass(frozen=True)
class ItemHits:
    hits: list[Hit]
    total: int


@transaction.atomic
def item_hits_view(*, actor: AbstractBaseUser, item_id: object) -> ItemHits:
    """The hits on an item, for its originating agency only (anyone else: the answers ``item_get_as_originator``
    gives); recorded as ``messaging.item.hits_view`` with the hits shown."""
    item = item_get_as_originator(actor, item_id=item_id)
    hits = Hit.objects.filter(item=item).select_related("asker_agency", "asker_user").order_by("-created_at", "-id")
    shown = list(hits[:HITS_SHOWN])
    total = len(shown) if len(shown) < HITS_SHOWN else hits.count()
    record(
        action="messaging.item.hits_view",
        actor=actor,
        target=item,
        target_country=item.originator_country,
        details={"hit_ids": [hit.pk for hit in shown], "count": len(shown), "total": total},
    )
    return ItemHits(hits=shown, total=total)
