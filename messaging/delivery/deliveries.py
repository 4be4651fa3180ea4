"""Deliveries: the only module outside routing's own statements that writes ``Delivery`` rows.

A delivery is an item routed to one recipient: an office, a person, or (without either) a whole agency. Routing,
forwarding and consent create them through ``deliver``; a narrowing, withdrawal or expiry revokes them through
``deliveries_revoke_lost``; reading and acknowledging mark them here. import-linter keeps every module outside
``messaging.delivery`` and the selectors from importing the ``Delivery`` model at all.

``deliver`` and ``deliveries_revoke_lost`` agree on one rule, ``holds``: a recipient holds the item while the
originator's current release lets its agency (or, for a named person, the person) see it, or while a live forward inside
a released country reaches its agency as a whole or its very office (``messaging.core.release``). ``deliver`` checks
that rule under a share lock on the item, which an originator's change (``FOR UPDATE``) waits for and which waits for a
change in flight: so a routing, forward or consent message that arrives after a narrowing (or is redelivered) cannot
give back what the narrowing took away.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.utils import timezone

from agencies.models import Agency
from messaging.core.people import (
    Reader,
)
from messaging.core.release import Release, release_of
from messaging.core.sql import fetch_all
from messaging.delivery.notifications import notifications_mark_read_for_item
from messaging.models import (
    Acknowledgement,
    DeliveryReason,
    Item,
)
from messaging.models.delivery import Delivery


@dataclass(frozen=True)
class Recipient:
    agency_id: int
    office_id: int | None
    user_id: int | None
    reason: str

    @property
    def key(self) -> tuple[int, int | None, int | None]:
        return (self.agency_id, self.office_id, self.user_id)


def holds(release: Release, recipient: Recipient, country: str) -> bool:
    """Whether a recipient (as routed, forwarded or consented) still reaches the item: a person named on it while
    the release names them; an office or a whole agency while ``Release.office_holds``."""
    if recipient.reason == DeliveryReason.NAMED and recipient.user_id is not None:
        return release.person_may_see(recipient.user_id, recipient.agency_id, country)
    return release.office_holds(recipient.agency_id, recipient.office_id, country)


def _lock_item(item: Item) -> None:
    """Share-lock the item's row for the rest of the transaction: changes to its release wait, and are waited for."""
    if connection.vendor == "postgresql":
        fetch_all(f"SELECT 1 FROM {Item._meta.db_table} WHERE id = %s FOR SHARE", [item.pk])  # noqa: S608 - ours


# New deliveries in one statement; the unique constraint (nulls equal) skips rows that exist already, and what was
# inserted is returned. An agency that acknowledged the item before its deliveries were made gets them acknowledged.
_DELIVER_SQL = """
    INSERT INTO messaging_delivery (item_id, agency_id, office_id, user_id, reason, priority, routed_at,
        escalation_level, acknowledged_at)
    SELECT %(item)s, recipient.agency_id, recipient.office_id, recipient.user_id, recipient.reason, %(priority)s,
        %(now)s, 0, ack.created_at
    FROM unnest(%(agencies)s::bigint[], %(offices)s::bigint[], %(users)s::bigint[], %(reasons)s::text[])
        AS recipient (agency_id, office_id, user_id, reason)
    LEFT JOIN messaging_acknowledgement ack ON ack.item_id = %(item)s AND ack.agency_id = recipient.agency_id
    ON CONFLICT DO NOTHING
    RETURNING agency_id, office_id, user_id
"""


def _insert(item: Item, recipients: Sequence[Recipient], now: datetime) -> list[Recipient]:
    if connection.vendor == "postgresql":
        made = set(
            fetch_all(
                _DELIVER_SQL,
                {
                    "item": item.pk,
                    "priority": item.priority,
                    "now": now,
                    "agencies": [r.agency_id for r in recipients],
                    "offices": [r.office_id for r in recipients],
                    "users": [r.user_id for r in recipients],
                    "reasons": [r.reason for r in recipients],
                },
            )
        )
        return [r for r in recipients if r.key in made]
    existing = set(Delivery.objects.filter(item=item).values_list("agency_id", "office_id", "user_id"))
    new = [r for r in recipients if r.key not in existing]
    acknowledged = dict(Acknowledgement.objects.filter(item=item).values_list("agency_id", "created_at"))
    Delivery.objects.bulk_create(
        [
            Delivery(
                item=item,
                agency_id=r.agency_id,
                office_id=r.office_id,
                user_id=r.user_id,
                reason=r.reason,
                priority=item.priority,
                routed_at=now,
                acknowledged_at=acknowledged.get(r.agency_id),
            )
            for r in new
        ],
        ignore_conflicts=True,
    )
    return new


def deliver(
    item: Item, recipients: Sequence[Recipient], *, now: datetime | None = None, release: Release | None = None
) -> list[Recipient]:
    """Deliveries for those of ``recipients`` the item reaches now: new rows made, and rows revoked by an earlier
    cut-off made live again (a copy given anew); a live row is left as it is. Returns the recipients delivered.

    Runs inside the caller's transaction and share-locks the item first. Routing passes the ``release`` it read
    under that lock (``item_locked_for_delivery``) and its recipients come from that release, so they are reached by
    construction and only new rows are made: only a forward or a consent gives back a copy that was taken away.
    """
    if not recipients:
        return []
    now = now or timezone.now()
    if release is not None:
        return _insert(item, recipients, now)
    _lock_item(item)
    release = release_of(item)
    countries = dict(Agency.objects.filter(pk__in={r.agency_id for r in recipients}).values_list("pk", "country_id"))
    reached = [r for r in recipients if holds(release, r, countries.get(r.agency_id, ""))]
    if not reached:
        return []
    delivered = _insert(item, reached, now)
    made = {r.key for r in delivered}
    # Rows an earlier cut-off revoked, locked in the order deliveries_revoke_lost locks them in.
    revoked = {
        (d.agency_id, d.office_id, d.user_id): d.pk
        for d in Delivery.objects.select_for_update()
        .filter(item=item, agency_id__in={r.agency_id for r in reached}, revoked_at__isnull=False)
        .order_by("pk")
    }
    revived = [r for r in reached if r.key not in made and r.key in revoked]
    for r in revived:
        Delivery.objects.filter(pk=revoked[r.key]).update(
            revoked_at=None, reason=r.reason, routed_at=now, escalation_level=0, escalated_at=None
        )
    return delivered + revived


def item_locked_for_delivery(item_id: object) -> Item:
    """The item, read and share-locked in one statement for delivering (see ``deliver``): read its release after
    this, and pass that release to ``deliver``."""
    if connection.vendor != "postgresql":
        return Item.objects.get(pk=item_id)
    table = Item._meta.db_table
    return Item.objects.raw(f"SELECT * FROM {table} WHERE id = %s FOR SHARE", [item_id])[0]  # noqa: S608 - ours


def deliveries_revoke_lost(item: Item) -> tuple[list[Delivery], list[Delivery]]:
    """After a narrowing, withdrawal or expiry: revoke every live delivery whose recipient the item no longer
    reaches. Returns (revoked, kept), each with its agency loaded."""
    release = release_of(item)
    deliveries = list(
        Delivery.objects.select_for_update()
        .filter(item=item, revoked_at__isnull=True)
        .select_related("agency")
        .order_by("pk")
    )

    def still(delivery: Delivery) -> bool:
        recipient = Recipient(delivery.agency_id, delivery.office_id, delivery.user_id, delivery.reason)
        return holds(release, recipient, delivery.agency.country_id)

    lost = [d for d in deliveries if not still(d)]
    kept = [d for d in deliveries if still(d)]
    Delivery.objects.filter(pk__in=[d.pk for d in lost]).update(revoked_at=timezone.now())
    return lost, kept


def deliveries_mark_read(reader: Reader, item: Item) -> None:
    """A member of a receiving agency opened the item: the agency's deliveries and the reader's notices are read."""
    now = timezone.now()
    Delivery.objects.filter(item=item, agency_id=reader.agency_id, read_at__isnull=True).update(read_at=now)
    notifications_mark_read_for_item(actor=reader.user, item=item)


def deliveries_for_acknowledging(item: Item, agency_id: int) -> list[int]:
    """The agency's live deliveries of the item, locked: two officers of one agency acknowledging at the same
    moment are serialised here. Empty when the item was not routed to the agency."""
    return list(
        Delivery.objects.select_for_update()
        .filter(item=item, agency_id=agency_id, revoked_at__isnull=True)
        .values_list("pk", flat=True)
    )


def deliveries_acknowledge(delivery_ids: Iterable[int], *, now: datetime) -> None:
    Delivery.objects.filter(pk__in=list(delivery_ids)).update(acknowledged_at=now)
