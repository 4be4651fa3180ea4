"""The MOU's own indicators, for supervisors, national focal points and UNODC: counts and durations only, never
content, and only within the viewer's scope.

- Items exchanged per (originating country -> released country) pair and month (the originator's own country is
  not a pair). Counted from the release at the time: a withdrawn, expired or narrowed item keeps counting for the
  countries it reached (an exchange that happened stays counted).
- FLASH acknowledgement times per receiving country: from the first routing to an agency to that agency's
  acknowledgement, per (item, agency); median and 90th percentile in minutes, and how many are still waiting.
- RFI response times per asked country: from the request to its first answer; median and 90th percentile in hours.
- Consent decisions per originating country and status.

Scope: a supervisor or national focal point of a state sees what touches their own country (either side of a pair,
either end of a delivery, request or consent request), and of that only the items their agency posted or was released
at the time and the requests it made or was asked, never an item restricted away from their agency
(``selectors.statistics.counted_items``); the same roles at UNODC, and the regional auditor, see everything; anyone
else is refused. Viewing and exporting are recorded (``messaging.statistics.view`` / ``.export``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import transaction

from agencies.models import Role
from audit.services import record
from messaging.selectors.statistics import (
    Durations,
    PairMonth,
    Period,
    StatusCount,
    consent_decisions,
    flash_acknowledgement_times,
    items_exchanged,
    require_scope,
    rfi_response_times,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    Viewer = AbstractBaseUser | AnonymousUser

_STATISTICS_ROLES = frozenset({Role.SUPERVISOR, Role.NATIONAL_FOCAL_POINT})
REFUSED_MESSAGE = "The network's statistics are for supervisors, national focal points and UNODC."


@dataclass
class Report:
    scope: str
    period: Period
    exchanged: list[PairMonth] = field(default_factory=list)
    flash: list[Durations] = field(default_factory=list)
    rfis: list[Durations] = field(default_factory=list)
    consents: list[StatusCount] = field(default_factory=list)


def _report(viewer: Viewer, period: Period) -> Report:
    return Report(
        scope=require_scope(viewer),
        period=period,
        exchanged=items_exchanged(viewer, period=period),
        flash=flash_acknowledgement_times(viewer, period=period),
        rfis=rfi_response_times(viewer, period=period),
        consents=consent_decisions(viewer, period=period),
    )


def _details(report: Report, **extra: Any) -> dict[str, Any]:
    return {
        "scope": report.scope or "all",
        "since": report.period.since.isoformat(),
        "until": report.period.until.isoformat(),
        **extra,
    }


@transaction.atomic
def statistics_view(*, actor: Viewer, period: Period) -> Report:
    """The indicators for the viewer's scope, recorded as ``messaging.statistics.view``."""
    report = _report(actor, period)
    record(
        action="messaging.statistics.view", actor=actor, target_type="messaging.statistics", details=_details(report)
    )
    return report


CSV_HEADER = ["indicator", "month", "from_country", "to_country", "status", "count", "waiting", "median", "p90", "unit"]


def csv_rows(report: Report) -> list[list[Any]]:
    """The whole report as rows under ``CSV_HEADER`` (one indicator per row, empty cells where it does not apply)."""
    rows: list[list[Any]] = []
    for pair in report.exchanged:
        rows.append(["items_exchanged", pair.month.strftime("%Y-%m"), pair.from_country, pair.to_country, "",
                     pair.count, "", "", "", "items"])  # fmt: skip
    for entry in report.flash:
        rows.append(["flash_acknowledgement", "", "", entry.country, "", entry.count, entry.waiting,
                     _number(entry.median), _number(entry.p90), "minutes"])  # fmt: skip
    for entry in report.rfis:
        rows.append(["rfi_response", "", "", entry.country, "", entry.count, entry.waiting,
                     _number(entry.median), _number(entry.p90), "hours"])  # fmt: skip
    for entry in report.consents:
        rows.append(["consent_decision", "", entry.country, "", entry.status, entry.count, "", "", "", "requests"])
    return rows


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


@transaction.atomic
def statistics_export(*, actor: Viewer, period: Period) -> list[list[Any]]:
    """The indicators as CSV rows (header first), recorded as ``messaging.statistics.export``."""
    report = _report(actor, period)
    rows = csv_rows(report)
    record(
        action="messaging.statistics.export",
        actor=actor,
        target_type="messaging.statistics",
        details=_details(report, rows=len(rows), format="csv"),
    )
    return [CSV_HEADER, *rows]
