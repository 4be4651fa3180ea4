"""Patterns auditors should review, computed on demand with SQL aggregates over the events the viewer may see.

Nothing here is stored or decided: a flag is a prompt to look, never a verdict. Thresholds come from
``settings.AUDIT_FLAGS`` (any key left out keeps its default below) and are read per call, not at import.
Sliding windows are counted with a correlated subquery per event (same actor, the preceding window), which uses the
(created_at) and (actor_user, created_at) indexes and works on PostgreSQL and SQLite alike.

Systems are not people. An agency's sync key, once a national auditor has approved its declared daily volume
(``agencies.sync_keys``), is judged on the bulk-read flag by that volume instead of by a person's window: its reads
in each calendar day of its country are counted, and a day above the approved volume times the tolerance
(``SYNC_READS_TOLERANCE_PERCENT``) is flagged. A day, not the person's ten minutes scaled down, because a sync runs
in bursts (a catch-up after an outage reads hours' worth at once) that a scaled window would flag every time. Each
read is judged by the declaration in force when it was made: reads before the approval, or with none approved, are
judged like a person's, and a declaration awaiting approval changes nothing. Nor is such a key flagged for reading
items of many countries: a sync reads whatever its agency holds, from wherever it comes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import (
    Aggregate,
    BigIntegerField,
    CharField,
    Count,
    Exists,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, Concat, TruncDate, TruncTime
from django.utils import timezone

from agencies.models import Country, SyncDeclaration
from agencies.selectors import sync_declaration_in_force
from audit.actions import READ_KINDS, codes_of_kind
from audit.models import AuditEvent, Outcome
from audit.selectors import events_visible_to

if TYPE_CHECKING:
    from audit.selectors import Viewer

DEFAULTS: dict[str, int] = {
    "LOOKBACK_DAYS": 7,  # how far back the flags page looks unless given a range
    "BULK_READS_MORE_THAN": 50,  # reads, lists or downloads by one actor ...
    "BULK_READS_WINDOW_MINUTES": 10,  # ... within this many minutes
    "DENIALS_AT_LEAST": 5,  # denied attempts by one actor ...
    "DENIALS_WINDOW_MINUTES": 15,  # ... within this many minutes
    "COUNTRIES_AT_LEAST": 4,  # distinct countries whose items one actor read ...
    "COUNTRIES_WINDOW_MINUTES": 24 * 60,  # ... within this many minutes
    # An approved sync key: reads in one day of its country above this percentage of its approved daily volume.
    # Half as much again: a busy day's surge is normal, reading the country's holdings twice over is not.
    "SYNC_READS_TOLERANCE_PERCENT": 150,
    # Identifier checks (issue 15): fishing for what other countries hold.
    "IDENTIFIERS_CHECKED_MORE_THAN": 200,  # identifiers checked by one person or key ...
    "IDENTIFIERS_WINDOW_MINUTES": 24 * 60,  # ... within this many minutes
    "HIT_COUNTRIES_AT_LEAST": 3,  # distinct holder countries of one actor's hits ...
    "HIT_COUNTRIES_WINDOW_MINUTES": 24 * 60,  # ... within this many minutes
}

BULK_READS = "bulk_reads"
OFF_HOURS_READS = "off_hours_reads"
REPEATED_DENIALS = "repeated_denials"
MANY_COUNTRIES = "many_countries"
MANY_IDENTIFIERS = "many_identifiers"
HIT_COUNTRIES = "hit_countries"

# The events of identifier checks (messaging.matching): one per check, its identifiers counted in its details; one per
# hit, filed under the country of the agency holding the item hit.
CHECK_ACTION = "messaging.match.check"
HIT_ACTION = "messaging.match.hit"

# Reads, lists and exports, whatever the app: by the kind each code is registered with, never by its spelling.
READS = Q(action__in=codes_of_kind(READ_KINDS))


def thresholds() -> dict[str, int]:
    return {**DEFAULTS, **getattr(settings, "AUDIT_FLAGS", {})}


@dataclass(frozen=True)
class Flag:
    kind: str
    actor_user_id: int | None
    actor_api_key_id: int | None
    actor_label: str
    count: int
    window_start: datetime
    window_end: datetime
    window_minutes: int | None  # the sliding window's length; None where the flag counts a whole period
    declared_daily_reads: int | None = None  # a sync key's approved daily volume that its days were held against


def _actor_key() -> Concat:
    # Users, API keys and failed sign-ins (no user, the username tried as label) are all actors; NULLs never compare
    # equal in SQL, so the key spells them out.
    return Concat(
        Coalesce(Cast("actor_user_id", CharField()), Value("")),
        Value("|"),
        Coalesce(Cast("actor_api_key_id", CharField()), Value("")),
        Value("|"),
        F("actor_label"),
        output_field=CharField(),
    )


def _sliding_peaks(
    events: QuerySet[AuditEvent], *, kind: str, minutes: int, measure: Aggregate, at_least: int
) -> list[Flag]:
    """Actors for whom ``measure`` over some ``minutes``-long window of their ``events`` reaches ``at_least``."""
    keyed = events.order_by().annotate(actor_key=_actor_key())
    window = timedelta(minutes=minutes)
    in_window = (
        keyed.filter(
            actor_key=OuterRef("actor_key"),
            created_at__gt=OuterRef("created_at") - window,
            created_at__lte=OuterRef("created_at"),
        )
        .values("actor_key")
        .annotate(measure=measure)
        .values("measure")
    )
    rows = (
        keyed.annotate(measure=Subquery(in_window))
        .filter(measure__gte=at_least)
        .values("actor_user_id", "actor_api_key_id", "actor_label")
        .annotate(peak=Max("measure"), first=Min("created_at"), last=Max("created_at"))
        .order_by("-peak", "actor_label")
    )
    return [
        Flag(
            kind=kind,
            actor_user_id=row["actor_user_id"],
            actor_api_key_id=row["actor_api_key_id"],
            actor_label=row["actor_label"],
            count=row["peak"],
            # From the start of the first window that crossed the line to the end of the last one.
            window_start=row["first"] - window,
            window_end=row["last"],
            window_minutes=minutes,
        )
        for row in rows
    ]


def _off_hours_reads(events: QuerySet[AuditEvent]) -> list[Flag]:
    """Reads by members outside their office's working hours, in the office country's local time."""
    office = "actor_user__membership__office__"
    opens, closes = F(f"{office}opens_at"), F(f"{office}closes_at")
    outside = Q(**{f"{office}opens_at__lte": closes}) & (Q(local_time__lt=opens) | Q(local_time__gte=closes)) | Q(
        **{f"{office}opens_at__gt": closes}
    ) & Q(local_time__lt=opens, local_time__gte=closes)  # an office open overnight (22:00-06:00)
    reads = events.order_by().filter(READS, **{f"{office}isnull": False})
    flags: list[Flag] = []
    # One query per time zone in use (seven at most): the local time of day needs the zone as a constant.
    for zone in Country.objects.order_by().values_list("timezone", flat=True).distinct():
        rows = (
            reads.filter(**{f"{office}agency__country__timezone": zone})
            .annotate(local_time=TruncTime("created_at", tzinfo=ZoneInfo(zone)))
            .filter(outside)
            .values("actor_user_id", "actor_api_key_id", "actor_label")
            .annotate(count=Count("id"), first=Min("created_at"), last=Max("created_at"))
        )
        flags.extend(
            Flag(
                kind=OFF_HOURS_READS,
                actor_user_id=row["actor_user_id"],
                actor_api_key_id=row["actor_api_key_id"],
                actor_label=row["actor_label"],
                count=row["count"],
                window_start=row["first"],
                window_end=row["last"],
                window_minutes=None,
            )
            for row in rows
        )
    return sorted(flags, key=lambda flag: (-flag.count, flag.actor_label))


# From an event to the declarations of the API key whose service account acted.
_SYNC = "actor_user__api_key__sync_declarations__"
# A sync flag's actor: the key's account, under one declaration (a later approval judges later reads afresh).
_SYNC_GROUP = ("actor_user_id", "actor_api_key_id", "actor_label", "declaration_id", "declared")


def _not_by_sync_key() -> Exists:
    """Not made by an API key under an approved sync declaration in force at the time of the event."""
    return ~Exists(
        SyncDeclaration.objects.filter(
            sync_declaration_in_force(OuterRef("created_at")), key__user_id=OuterRef("actor_user_id")
        )
    )


def _sync_key_days(reads: QuerySet[AuditEvent], *, tolerance: int, since: datetime, until: datetime) -> list[Flag]:
    """Sync keys that read more in one day of their country than their approved daily volume times the tolerance."""
    # One filter() call, so every condition holds for the same declaration: the one in force at each read. Its
    # columns are taken by annotation, which reuses that join (a later filter() on the path would join afresh).
    in_force = (
        reads.order_by()
        .filter(sync_declaration_in_force(F("created_at"), prefix=_SYNC))
        .annotate(declaration_id=F(f"{_SYNC}id"), declared=F(f"{_SYNC}daily_reads"))
    )
    over: dict[tuple[Any, ...], list[tuple[datetime, datetime, int]]] = {}
    # One query per time zone of a country with an approved sync key, at most seven: the day needs the zone.
    zones = Country.objects.filter(agencies__api_keys__sync_declarations__decided_at__isnull=False)
    for zone in zones.order_by().values_list("timezone", flat=True).distinct():
        tz = ZoneInfo(zone)
        rows = (
            in_force.filter(actor_user__api_key__agency__country__timezone=zone)
            .annotate(day=TruncDate("created_at", tzinfo=tz))
            .values(*_SYNC_GROUP, "day")
            .annotate(count=Count("id"), scaled=Count("id") * 100)
            .filter(scaled__gt=Cast("declared", BigIntegerField()) * tolerance)
        )
        for row in rows:
            actor = tuple(row[name] for name in _SYNC_GROUP)
            start = datetime.combine(row["day"], time(0), tzinfo=tz)
            end = datetime.combine(row["day"] + timedelta(days=1), time(0), tzinfo=tz)
            over.setdefault(actor, []).append((max(start, since), min(end, until), row["count"]))
    flags = [
        Flag(
            kind=BULK_READS,
            actor_user_id=user_id,
            actor_api_key_id=key_id,
            actor_label=label,
            count=max(count for _start, _end, count in days),
            # From the first day over the line to the end of the last one (within the period looked at).
            window_start=min(start for start, _end, _count in days),
            window_end=max(end for _start, end, _count in days),
            window_minutes=None,
            declared_daily_reads=daily_reads,
        )
        for (user_id, key_id, label, _declaration, daily_reads), days in over.items()
    ]
    return sorted(flags, key=lambda flag: (-flag.count, flag.actor_label, flag.window_start))


def flags_for(viewer: Viewer, *, since: datetime | None = None, until: datetime | None = None) -> dict[str, list[Flag]]:
    """Every flag over the viewer's events between ``since`` (default: the lookback) and ``until`` (default: now)."""
    limits: dict[str, Any] = thresholds()
    until = until or timezone.now()
    since = since or until - timedelta(days=limits["LOOKBACK_DAYS"])
    events = events_visible_to(viewer).filter(created_at__gte=since, created_at__lt=until)
    return {
        # People (and keys judged like people) by the sliding window, then approved sync keys by their days.
        BULK_READS: _sliding_peaks(
            events.filter(READS).filter(_not_by_sync_key()),
            kind=BULK_READS,
            minutes=limits["BULK_READS_WINDOW_MINUTES"],
            measure=Count("id"),
            at_least=limits["BULK_READS_MORE_THAN"] + 1,
        )
        + _sync_key_days(
            events.filter(READS), tolerance=limits["SYNC_READS_TOLERANCE_PERCENT"], since=since, until=until
        ),
        OFF_HOURS_READS: _off_hours_reads(events),
        REPEATED_DENIALS: _sliding_peaks(
            events.filter(outcome=Outcome.DENIED),
            kind=REPEATED_DENIALS,
            minutes=limits["DENIALS_WINDOW_MINUTES"],
            measure=Count("id"),
            at_least=limits["DENIALS_AT_LEAST"],
        ),
        # An approved sync key reads what its agency holds, from wherever it comes: judged by its volume alone.
        MANY_COUNTRIES: _sliding_peaks(
            events.filter(READS).exclude(target_country="").filter(_not_by_sync_key()),
            kind=MANY_COUNTRIES,
            minutes=limits["COUNTRIES_WINDOW_MINUTES"],
            measure=Count("target_country", distinct=True),
            at_least=limits["COUNTRIES_AT_LEAST"],
        ),
        # Keys are judged like people here: a system checking identifiers in bulk is fishing all the same.
        MANY_IDENTIFIERS: _sliding_peaks(
            events.filter(action=CHECK_ACTION),
            kind=MANY_IDENTIFIERS,
            minutes=limits["IDENTIFIERS_WINDOW_MINUTES"],
            measure=Sum(Coalesce(Cast(KT("details__identifiers"), IntegerField()), Value(0))),
            at_least=limits["IDENTIFIERS_CHECKED_MORE_THAN"] + 1,
        ),
        HIT_COUNTRIES: _sliding_peaks(
            events.filter(action=HIT_ACTION).exclude(target_country=""),
            kind=HIT_COUNTRIES,
            minutes=limits["HIT_COUNTRIES_WINDOW_MINUTES"],
            measure=Count("target_country", distinct=True),
            at_least=limits["HIT_COUNTRIES_AT_LEAST"],
        ),
    }
