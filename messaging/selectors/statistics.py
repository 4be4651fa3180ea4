"""The statistics' reads: counts and durations over a period, scoped to what the viewer may see (their country, or
the whole network for UNODC and the regional auditor). ``messaging.statistics`` records viewing and exporting them."""

from __future__ import annotations

import math
import statistics as stats
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from django.db.models import Count, DateField, F, Min, Q
from django.db.models.functions import TruncMonth

from agencies.models import Role
from agencies.selectors import (
    country_scope,
)
from isn.errors import PermissionDenied
from messaging.models import ConsentRequest, ItemCountryGrant, Priority, Rfi
from messaging.models.delivery import Delivery

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    Viewer = AbstractBaseUser | AnonymousUser

_STATISTICS_ROLES = frozenset({Role.SUPERVISOR, Role.NATIONAL_FOCAL_POINT})
REFUSED_MESSAGE = "The network's statistics are for supervisors, national focal points and UNODC."


def statistics_scope(viewer: Viewer) -> str | None:
    """``""`` for every country (UNODC's supervisors and focal points, the regional auditor), a country code for a
    state's supervisors and focal points, None for anyone else."""
    return country_scope(viewer, roles=_STATISTICS_ROLES, network_wide=_STATISTICS_ROLES)


def require_scope(viewer: Viewer) -> str:
    scope = statistics_scope(viewer)
    if scope is None:
        raise PermissionDenied(REFUSED_MESSAGE)
    return scope


@dataclass(frozen=True)
class Period:
    """Whole months, from the first day of ``since`` to the end of ``until`` (UTC)."""

    since: date
    until: date

    @property
    def start(self) -> datetime:
        return datetime(self.since.year, self.since.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        following = self.until.replace(day=28) + timedelta(days=4)
        return datetime(following.year, following.month, 1, tzinfo=UTC)

    def months(self) -> list[date]:
        months, month = [], self.since.replace(day=1)
        while month <= self.until:
            months.append(month)
            month = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
        return months


@dataclass(frozen=True)
class PairMonth:
    month: date
    from_country: str
    to_country: str
    count: int


@dataclass(frozen=True)
class Durations:
    """How long something took, per country: ``count`` done, ``waiting`` not yet; median and p90 in ``unit``s."""

    country: str
    count: int
    waiting: int
    median: float | None
    p90: float | None


@dataclass(frozen=True)
class StatusCount:
    country: str
    status: str
    count: int


def _month_of(value: date | datetime) -> date:
    return date(value.year, value.month, 1)


def items_exchanged(viewer: Viewer, *, period: Period) -> list[PairMonth]:
    """Items per (originating -> released country) pair and month of posting, within the viewer's scope."""
    scope = require_scope(viewer)
    grants = ItemCountryGrant.objects.filter(
        item__created_at__gte=period.start, item__created_at__lt=period.end
    ).exclude(country_id=F("item__originator_country"))
    if scope:
        grants = grants.filter(Q(country_id=scope) | Q(item__originator_country=scope))
    rows = (
        grants.annotate(month=TruncMonth("item__created_at", output_field=DateField()))
        .values("month", "item__originator_country", "country_id")
        .annotate(count=Count("item_id", distinct=True))
        .order_by("month", "item__originator_country", "country_id")
    )
    return [
        PairMonth(_month_of(row["month"]), row["item__originator_country"], row["country_id"], row["count"])
        for row in rows
    ]


def _percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted ``values``: a value that was really seen, for any count."""
    return values[max(math.ceil(fraction * len(values)) - 1, 0)]


def _durations(by_country: dict[str, list[float]], waiting: dict[str, int]) -> list[Durations]:
    result = []
    for country in sorted(set(by_country) | set(waiting)):
        values = sorted(by_country.get(country, []))
        result.append(
            Durations(
                country=country,
                count=len(values),
                waiting=waiting.get(country, 0),
                median=round(stats.median(values), 1) if values else None,
                p90=round(_percentile(values, 0.9), 1) if values else None,
            )
        )
    return result


def flash_acknowledgement_times(viewer: Viewer, *, period: Period) -> list[Durations]:
    """Per receiving country, minutes from a FLASH item's routing to an agency to that agency's acknowledgement."""
    scope = require_scope(viewer)
    deliveries = Delivery.objects.filter(
        priority=Priority.FLASH, routed_at__gte=period.start, routed_at__lt=period.end
    ).filter(Q(revoked_at__isnull=True) | Q(acknowledged_at__isnull=False))
    if scope:
        deliveries = deliveries.filter(Q(agency__country_id=scope) | Q(item__originator_country=scope))
    per_agency = (
        deliveries.values("item_id", "agency_id", "agency__country_id")
        .annotate(routed=Min("routed_at"), acknowledged=Min("acknowledged_at"))
        .order_by()
    )
    minutes: dict[str, list[float]] = defaultdict(list)
    waiting: dict[str, int] = defaultdict(int)
    for row in per_agency:
        country = row["agency__country_id"]
        if row["acknowledged"] is None:
            waiting[country] += 1
        else:
            minutes[country].append(max((row["acknowledged"] - row["routed"]).total_seconds(), 0) / 60)
    return _durations(minutes, waiting)


def rfi_response_times(viewer: Viewer, *, period: Period) -> list[Durations]:
    """Per asked country, hours from a request for information to its answer; unanswered ones count as waiting."""
    scope = require_scope(viewer)
    rfis = Rfi.objects.filter(created_at__gte=period.start, created_at__lt=period.end)
    if scope:
        rfis = rfis.filter(Q(requester_country=scope) | Q(target_country=scope))
    hours: dict[str, list[float]] = defaultdict(list)
    waiting: dict[str, int] = defaultdict(int)
    for country, created, answered in rfis.values_list("target_country", "created_at", "answered_at").order_by():
        if answered is None:
            waiting[country] += 1
        else:
            hours[country].append(max((answered - created).total_seconds(), 0) / 3600)
    return _durations(hours, waiting)


def consent_decisions(viewer: Viewer, *, period: Period) -> list[StatusCount]:
    """Consent requests per originating country and status."""
    scope = require_scope(viewer)
    requests = ConsentRequest.objects.filter(created_at__gte=period.start, created_at__lt=period.end)
    if scope:
        requests = requests.filter(
            Q(item__originator_country=scope) | Q(target_country_id=scope) | Q(requester_agency__country_id=scope)
        )
    rows = (
        requests.values("item__originator_country", "status")
        .annotate(count=Count("id"))
        .order_by("item__originator_country", "status")
    )
    return [StatusCount(row["item__originator_country"], row["status"], row["count"]) for row in rows]
