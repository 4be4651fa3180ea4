"""The statistics' reads: counts and durations over a period, scoped to what the viewer may see (their country, or
the whole network for UNODC and the regional auditor). ``messaging.statistics`` records viewing and exporting them.

Within a state, an item counts for a viewer only when their agency posted it or was released it at the time
(``counted_items``): a TLP:RED item restricted to another agency of the same country never shows in their numbers, not
even as one in a count. And an exchange that happened stays counted: a withdrawn, expired or narrowed item keeps
counting for the countries and agencies it reached, although its grants for them are gone.

Where "released at the time" is read from: an ended item keeps only its originator's grant, so its current grants
cannot say. Its ``Delivery`` rows can. Routing makes one for every active agency of a released country that the
release lets see the item (a duty-desk row at least), forwards and consents make theirs through the same rule
(``messaging.delivery.deliveries.holds``), and a narrowing, withdrawal or expiry marks them ``revoked_at`` rather than
deleting them. A delivery row therefore exists only for an agency the item was released to at the time, whatever came
later; an agency restricted away from the item from the start never has one. Deliveries to a person named on the item
count only for that person: a need-to-know naming does not make the item their agency's. Until an item is routed (a
moment after posting) its current release stands in: ``items_visible_to``, the inbox's own rule.
"""

from __future__ import annotations

import math
import statistics as stats
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from django.db.models import Count, DateField, Exists, Min, OuterRef, Q, QuerySet
from django.db.models.functions import TruncMonth

from agencies.models import Country, Role
from agencies.selectors import (
    country_scope,
)
from isn.errors import PermissionDenied
from messaging.core.people import reader_of
from messaging.models import ConsentRequest, DeliveryReason, Item, ItemCountryGrant, Priority, Rfi
from messaging.models.delivery import Delivery
from messaging.selectors.items import items_visible_to

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


def counted_items(viewer: Viewer, scope: str) -> QuerySet[Item]:
    """The items the statistics may count for the viewer: every item for the whole network (``scope`` ""); within a
    state, those the viewer's agency posted, those delivered to it at the time (revoked since or not), and those it
    may see now (not routed yet). Never an item restricted away from the agency. See the module's docstring."""
    if not scope:
        return Item.objects.all()
    reader = reader_of(viewer)
    if reader is None:
        return Item.objects.none()
    delivered = Delivery.objects.filter(item=OuterRef("pk"), agency_id=reader.agency_id).filter(
        ~Q(reason=DeliveryReason.NAMED) | Q(user_id=reader.pk)
    )
    visible = items_visible_to(reader).filter(pk=OuterRef("pk"))
    return Item.objects.filter(Q(originator_agency_id=reader.agency_id) | Exists(delivered) | Exists(visible))


def _counted(viewer: Viewer, scope: str, item: str = "pk") -> Exists:
    """``counted_items`` as a condition on the item named by ``item`` in the outer query."""
    return Exists(counted_items(viewer, scope).filter(pk=OuterRef(item)))


def items_exchanged(viewer: Viewer, *, period: Period) -> list[PairMonth]:
    """Items per (originating -> released country) pair and month of posting, within the viewer's scope.

    An item counts for a pair when it was released to that country at the time: a grant now, or a delivery to an
    agency of it (revoked or not). Each item once per pair; one grouped query per receiving country."""
    scope = require_scope(viewer)
    items = counted_items(viewer, scope).filter(created_at__gte=period.start, created_at__lt=period.end)
    rows: list[PairMonth] = []
    for code in Country.objects.order_by("code").values_list("code", flat=True):
        # Within a state: items from elsewhere to it, or from it to this country.
        pairs = items.filter(originator_country=scope) if scope and code != scope else items
        granted = ItemCountryGrant.objects.filter(item=OuterRef("pk"), country_id=code)
        delivered = Delivery.objects.filter(item=OuterRef("pk"), agency__country_id=code)
        counts = (
            pairs.exclude(originator_country=code)
            .filter(Exists(granted) | Exists(delivered))
            .annotate(month=TruncMonth("created_at", output_field=DateField()))
            .values("month", "originator_country")
            .annotate(count=Count("pk"))
            .order_by()
        )
        rows += [PairMonth(_month_of(row["month"]), row["originator_country"], code, row["count"]) for row in counts]
    return sorted(rows, key=lambda pair: (pair.month, pair.from_country, pair.to_country))


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
        deliveries = deliveries.filter(Q(agency__country_id=scope) | Q(item__originator_country=scope)).filter(
            _counted(viewer, scope, "item_id")
        )
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
        # Within a state, the requests the viewer's agency made or was asked: another agency's are not its own.
        reader = reader_of(viewer)
        if reader is None:
            return []
        rfis = rfis.filter(Q(requester_agency_id=reader.agency_id) | Q(target_agency_id=reader.agency_id))
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
        ).filter(_counted(viewer, scope, "item_id"))
    rows = (
        requests.values("item__originator_country", "status")
        .annotate(count=Count("id"))
        .order_by("item__originator_country", "status")
    )
    return [StatusCount(row["item__originator_country"], row["status"], row["count"]) for row in rows]
