"""Telling both sides of a hit (``messaging.models.hits``): the holding agency that one of its items was hit, and the
person who asked that they got a hit. Ids and the hit's reference only, never the identifier.

The holder hears as an agency (``hit.on_item``, naming its own item, in its feed and on its webhook); the asker hears
as the person who asked (``hit.received``, the reference only: the item stays the holder's to name). Both in the
check's own transaction, like every other change.
"""

from __future__ import annotations

from collections.abc import Sequence

from messaging.delivery.feed import feed_write
from messaging.delivery.routing import queue_webhook_calls
from messaging.models import Change, ChangeKind, Hit

# The event the holding agency's webhook is told of (its own item's facts and the hit's reference).
WEBHOOK_HIT_ON_ITEM = ChangeKind.HIT_ON_ITEM.value


def hits_recorded(hits: Sequence[Hit]) -> None:
    """Changes for both sides of each hit, and the holding agency's webhook call."""
    changes: list[Change] = []
    for hit in hits:
        changes.append(
            Change(
                kind=ChangeKind.HIT_ON_ITEM,
                agency_id=hit.holder_agency_id,
                item_id=hit.item_id,
                hit_reference=hit.reference,
            )
        )
        changes.append(Change(kind=ChangeKind.HIT_RECEIVED, user_id=hit.asker_user_id, hit_reference=hit.reference))
    feed_write(changes)
    queue_webhook_calls(
        (hit.item, hit.holder_agency_id, WEBHOOK_HIT_ON_ITEM, {"hit_reference": hit.reference}) for hit in hits
    )
