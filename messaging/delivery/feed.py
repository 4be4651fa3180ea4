"""The change feed: for each caller, an ordered, resumable stream of what changed for them (ids, kinds, times).

**Writing.** A service that changes who may read an item takes the item's ``Audience`` before and after (the same
rule as ``selectors.items_visible_to``, for every agency and named person at once) and ``feed_follow`` writes a
``Change`` for every agency or person that gained the item, lost it, or kept it through a change they should hear
of. Consent and RFI events go to both sides. All in the act's own transaction: no act without its changes.

**Reading.** A caller reads the changes addressed to their agency or to themselves after a cursor, in id order.
Every writer takes one transaction-level lock (``FEED_LOCK_KEY``) before it writes its changes and holds it to its
commit, so ids are taken in the order their transactions commit: a reader that sees a change sees every change
before it, and a cursor never passes one that commits late. The lock is held only for the tail of each act (its
changes are among its last writes). Delivery is at least once: a reader fetches each item a change names, and the
item's own read answers by what the caller may see now (gone: 404), which is what makes the feed reconcile
whatever the kinds say.

The cursor is opaque: the position (a change id) and when it was issued. It stays good for
``ISN_FEED_CURSOR_DAYS``; changes are kept ``ISN_FEED_RETENTION_DAYS`` (longer, so a cursor issued on its last
good day still finds every change after it).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from agencies.models import Agency, Membership
from audit.services import record
from isn.errors import ApplicationError, InvalidInput
from messaging.core.people import reader_of
from messaging.core.release import release_of
from messaging.core.sql import fetch_all
from messaging.delivery.routing import queue_webhooks
from messaging.models import Change, ChangeKind, ConsentRequest, Item, Rfi

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

FEED_PAGE_MAX = 1000
# Any fixed 64-bit number, the same in every process: the key of the writers' advisory lock (PostgreSQL; SQLite's
# writers take turns already).
FEED_LOCK_KEY = 0x15A_FEE0_0C4A_2600
# Kinds an agency's webhook is told of under their own name. The others reach webhooks as the deliveries they make
# or cut: ``item.visible`` as ``item.routed`` or ``item.forwarded`` (once the agency's inbox holds the item), and
# ``item.narrowed``, ``item.withdrawn`` and ``item.expired`` as ``item.revoked``.
WEBHOOK_KINDS = frozenset(
    {
        ChangeKind.ITEM_CHANGED,
        ChangeKind.ITEM_ACKNOWLEDGED,
        ChangeKind.CONSENT_REQUESTED,
        ChangeKind.CONSENT_GRANTED,
        ChangeKind.CONSENT_DECLINED,
        ChangeKind.CONSENT_CANCELLED,
        ChangeKind.CONSENT_REVOKED,
        ChangeKind.RFI_OPENED,
        ChangeKind.RFI_REPLIED,
        ChangeKind.RFI_CLOSED,
    }
)


class CursorExpired(ApplicationError):
    """A cursor older than the feed keeps: the reader must list its items afresh and take a new cursor."""

    status = 410
    code = "cursor_expired"


class CursorInvalid(InvalidInput):
    code = "invalid_cursor"


# --- who may read an item, for every agency and person at once -----------------------------------------------------


@dataclass(frozen=True)
class Audience:
    """Who may read an item (``messaging.core.release.Release``), as the feed addresses them: whole agencies,
    offices (agency, office) an item was forwarded to alone, and the persons named on it."""

    agencies: frozenset[int] = frozenset()
    offices: frozenset[tuple[int, int]] = frozenset()
    persons: frozenset[int] = frozenset()


NOBODY = Audience()


def audience_of(item: Item) -> Audience:
    """Who may read the item now: the originating agency always; while it is active, every agency of a released
    country its release admits or an active forward reached as a whole, every office a forward reached alone, and
    every named person of a released country."""
    release = release_of(item)
    agencies = {item.originator_agency_id}
    offices: set[tuple[int, int]] = set()
    persons: set[int] = set()
    if release.active and release.countries:
        countries = sorted(release.countries)
        for agency_id, country in Agency.objects.filter(country_id__in=countries).values_list("pk", "country_id"):
            if release.agency_holds(agency_id, country):
                agencies.add(agency_id)
        offices = {
            (agency_id, office_id)
            for country, agency_id, office_id in release.forwards
            if office_id is not None
            and agency_id not in agencies
            and release.office_holds(agency_id, office_id, country)
        }
        if release.named:
            persons.update(
                Membership.objects.filter(user_id__in=release.named, agency__country_id__in=countries).values_list(
                    "user_id", flat=True
                )
            )
    return Audience(agencies=frozenset(agencies), offices=frozenset(offices), persons=frozenset(persons))


def feed_follow(
    item: Item, before: Audience, *, lost: str = ChangeKind.ITEM_NARROWED, kept: str | None = None
) -> Audience:
    """Tell everyone whose view of the item changed: ``item.visible`` to who gained it, ``lost`` to who lost it,
    and ``kept`` (when given) to who still has it. Returns the audience after, for a caller that goes on."""
    after = audience_of(item)
    changes: list[Change] = []
    for audience in ("agencies", "offices", "persons"):
        old, new = getattr(before, audience), getattr(after, audience)
        changes += _changes(ChangeKind.ITEM_VISIBLE, audience, new - old, item_id=item.pk)
        changes += _changes(lost, audience, old - new, item_id=item.pk)
        if kept is not None:
            changes += _changes(kept, audience, old & new, item_id=item.pk)
    feed_write(changes)
    if kept in WEBHOOK_KINDS:
        queue_webhooks(item, before.agencies & after.agencies, kept)
    return after


def feed_tell(kind: str, agency_ids: Iterable[int], *, subject: Item | Rfi, **ids: Any) -> None:
    """Tell whole agencies of an event about ``subject`` (``consent_id=`` or ``rfi_id=`` adds what else it names);
    their webhooks too, for the kinds webhooks carry."""
    agency_ids = set(agency_ids)
    feed_write(_changes(kind, "agencies", agency_ids, **ids))
    if kind in WEBHOOK_KINDS:
        queue_webhooks(subject, agency_ids, kind, **{name: pk for name, pk in ids.items() if name != "item_id"})


def feed_tell_consent(kind: str, consent: ConsentRequest) -> None:
    """A consent event, told to both sides: the originating agency, and on the asking side the agency when it holds
    the item as a whole, else only the person who asked (a person named on the item: their colleagues, who may not
    read it, are not told of it, as ``selectors.sharing.consents_visible_to`` does not show it to them)."""
    item = consent.item
    ids = {"consent_id": consent.pk, "item_id": consent.item_id}
    agencies = {item.originator_agency_id}
    if release_of(item).agency_holds(consent.requester_agency_id, consent.requester_agency.country_id):
        agencies.add(consent.requester_agency_id)
    else:
        feed_write(_changes(kind, "persons", {consent.requester_user_id}, **ids))
    feed_tell(kind, agencies, subject=item, **ids)


def feed_tell_rfi(kind: str, rfi: Rfi) -> None:
    """An RFI event, told to both sides: the asking agency and the asked one."""
    feed_tell(kind, {rfi.requester_agency_id, rfi.target_agency_id}, subject=rfi, rfi_id=rfi.pk, item_id=rfi.item_id)


def feed_write(changes: list[Change]) -> None:
    """Write changes in commit order: under the writers' lock, held from here to the transaction's end."""
    if not changes:
        return
    feed_lock()
    Change.objects.bulk_create(changes)


def feed_lock() -> None:
    """Take the writers' lock for the rest of this transaction (see the module's docstring)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FEED_LOCK_KEY])


def _changes(kind: str, audience: str, members: Iterable[Any], **ids: Any) -> list[Change]:
    """Changes of one kind for the ``agencies``, ``offices`` (agency, office) or ``persons`` of an audience."""
    if audience == "offices":
        return [Change(kind=kind, agency_id=agency, office_id=office, **ids) for agency, office in sorted(members)]
    field = "agency_id" if audience == "agencies" else "user_id"
    return [Change(kind=kind, **{field: pk}, **ids) for pk in sorted(members)]


# --- reading ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    id: int
    issued_at: datetime

    def encode(self) -> str:
        raw = f"2.{self.id}.{int(self.issued_at.timestamp())}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("ascii")
            version, change_id, issued = raw.split(".")
            if version != "2":
                raise ValueError(version)
            cursor = cls(int(change_id), datetime.fromtimestamp(int(issued), tz=UTC))
        except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError, OSError):
            raise CursorInvalid("Not a cursor this feed gave out: start again without one.") from None
        if not 0 <= cursor.id < 2**63:
            raise CursorInvalid("Not a cursor this feed gave out: start again without one.")
        if cursor.issued_at < timezone.now() - timedelta(days=settings.ISN_FEED_CURSOR_DAYS):
            raise CursorExpired(
                f"This cursor is older than {settings.ISN_FEED_CURSOR_DAYS} days: list your items afresh, then "
                "follow the feed from a new cursor (start=latest)."
            )
        return cursor


@dataclass(frozen=True)
class ChangeEntry:
    kind: str
    at: datetime
    item_id: Any
    consent_id: Any
    rfi_id: Any
    hit_reference: str = ""


@dataclass(frozen=True)
class ChangePage:
    changes: list[ChangeEntry]
    cursor: str  # where to read on from
    more: bool  # whether more changes are already waiting after this page


# Both audiences of the caller (their agency, or their own office of it; themselves), each an index range scan from
# the cursor, merged.
_PAGE_SQL = """
    SELECT id, kind, at, item_id, consent_id, rfi_id, hit_reference FROM (
        (SELECT id, kind, at, item_id, consent_id, rfi_id, hit_reference FROM messaging_change
         WHERE agency_id = %(agency)s AND (office_id IS NULL OR office_id = %(office)s) AND id > %(after)s
         ORDER BY id LIMIT %(limit)s)
        UNION ALL
        (SELECT id, kind, at, item_id, consent_id, rfi_id, hit_reference FROM messaging_change
         WHERE user_id = %(user)s AND id > %(after)s ORDER BY id LIMIT %(limit)s)
    ) AS mine
    ORDER BY id LIMIT %(limit)s
"""


def changes_page(*, actor: AbstractBaseUser, cursor: str | None, limit: int, latest: bool = False) -> ChangePage:
    """One page of the caller's changes after ``cursor`` (from the oldest kept without one; from now with
    ``latest``). Recorded as ``messaging.changes.list`` when it names anything."""
    now = timezone.now()
    if latest:
        newest = Change.objects.order_by("-id").values_list("id", flat=True).first() or 0
        return ChangePage(changes=[], cursor=Cursor(newest, now).encode(), more=False)
    after = Cursor.decode(cursor).id if cursor else 0
    reader = reader_of(actor)
    if reader is None:  # auditors and non-members read no content, so hear of none
        return ChangePage(changes=[], cursor=Cursor(after, now).encode(), more=False)
    rows = fetch_all(
        _PAGE_SQL,
        {"agency": reader.agency_id, "office": reader.office_id, "user": reader.pk, "after": after, "limit": limit + 1},
    )
    more = len(rows) > limit
    rows = rows[:limit]
    entries = [
        ChangeEntry(
            kind=kind, at=at, item_id=item_id, consent_id=consent_id, rfi_id=rfi_id, hit_reference=hit_reference
        )
        for _id, kind, at, item_id, consent_id, rfi_id, hit_reference in rows
    ]
    if entries:
        record(
            action="messaging.changes.list",
            actor=actor,
            details={"count": len(entries), "kinds": sorted({entry.kind for entry in entries})},
        )
    return ChangePage(changes=entries, cursor=Cursor(rows[-1][0] if rows else after, now).encode(), more=more)


def changes_purge(*, now: datetime | None = None) -> int:
    """Delete changes older than the feed keeps (beat sends it daily)."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.ISN_FEED_RETENTION_DAYS)
    # Ids and times rise together, so the first change young enough to keep bounds the rest: a walk of the primary
    # key over at most the day's purge, and no index on the time for every change to pay for.
    first_kept = Change.objects.filter(at__gte=cutoff).order_by("id").values_list("id", flat=True).first()
    old = Change.objects.all() if first_kept is None else Change.objects.filter(id__lt=first_kept)
    deleted, _ = old.delete()
    return deleted
