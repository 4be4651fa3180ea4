"""The auditors' workspace in the portal: search, an actor's timeline, and flags. Every page view is audited."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from audit import flags as audit_flags
from audit.filters import AuditEventFilter
from audit.models import AuditEvent
from audit.selectors import auditor_country, chain_status
from audit.workspace import audit_events_search, audit_flags_view, audit_timeline_view
from isn.paging import keyset_page

PAGE_SIZE = 100


def auditor_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed-in auditors only, and only to read (GET or HEAD); anyone else signed in gets 403 (recorded)."""

    @require_safe
    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if auditor_country(request.user) is None:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


class _Pager:
    """Cuts the page after ``?before=`` (keyset paging by id, newest first: the log grows while it is read) and keeps
    the cursor of the next page."""

    def __init__(self, request: HttpRequest) -> None:
        self.before = request.GET.get("before")
        self.next_before: str | None = None

    def __call__(self, events: QuerySet[AuditEvent]) -> list[AuditEvent]:
        rows, self.next_before = keyset_page(events, self.before, PAGE_SIZE, by_time=False)
        return rows


def _query_without(request: HttpRequest, *names: str) -> str:
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()


@auditor_required
def events(request: HttpRequest) -> HttpResponse:
    """Search the events in the auditor's scope, with links to export the same search."""
    filterset = AuditEventFilter(request.GET, queryset=AuditEvent.objects.none(), request=request)
    rows: list[AuditEvent] = []
    next_before = None
    if filterset.is_valid():
        pager = _Pager(request)
        rows = audit_events_search(actor=request.user, search=filterset, page=pager, portal=True)
        next_before = pager.next_before
    context = {
        "filter": filterset,
        "events": rows,
        "next_before": next_before,
        "query": _query_without(request, "before", "format"),
        "status": chain_status(request.user),
        "scope": auditor_country(request.user),
    }
    return render(request, "audit/events.html", context)


@auditor_required
def timeline(request: HttpRequest, user_id: int) -> HttpResponse:
    """What one person did, newest first, within the auditor's scope."""
    pager = _Pager(request)
    rows = audit_timeline_view(actor=request.user, user_id=user_id, page=pager, portal=True)
    context = {"actor_id": user_id, "events": rows, "next_before": pager.next_before}
    return render(request, "audit/timeline.html", context)


@auditor_required
def flags(request: HttpRequest) -> HttpResponse:
    """Patterns to review: bulk reads, reads out of hours, repeated denials, one person reading many countries."""
    period = AuditEventFilter(request.GET, queryset=AuditEvent.objects.none(), request=request)
    found: dict[str, list[audit_flags.Flag]] = {}
    if period.is_valid():
        since, until = period.form.cleaned_data.get("since"), period.form.cleaned_data.get("until")
        found = audit_flags_view(actor=request.user, since=since, until=until)
    limits = audit_flags.thresholds()
    sections = [
        (
            _("Bulk reads"),
            " ".join(
                (
                    _("More than %(n)s reads, lists or downloads within %(m)s minutes.")
                    % {"n": limits["BULK_READS_MORE_THAN"], "m": limits["BULK_READS_WINDOW_MINUTES"]},
                    _("An approved sync key instead: more than %(p)s%% of its approved daily volume in one day.")
                    % {"p": limits["SYNC_READS_TOLERANCE_PERCENT"]},
                )
            ),
            found.get(audit_flags.BULK_READS, []),
        ),
        (
            _("Reads outside office hours"),
            _("Reads outside the working hours of the reader's office, in that office's local time."),
            found.get(audit_flags.OFF_HOURS_READS, []),
        ),
        (
            _("Repeated denials"),
            _("At least %(n)s denied attempts within %(m)s minutes.")
            % {"n": limits["DENIALS_AT_LEAST"], "m": limits["DENIALS_WINDOW_MINUTES"]},
            found.get(audit_flags.REPEATED_DENIALS, []),
        ),
        (
            _("Reads across many countries"),
            _("Items of at least %(n)s countries read within %(m)s minutes.")
            % {"n": limits["COUNTRIES_AT_LEAST"], "m": limits["COUNTRIES_WINDOW_MINUTES"]},
            found.get(audit_flags.MANY_COUNTRIES, []),
        ),
        (
            _("Many identifiers checked"),
            _("More than %(n)s identifiers checked by one person or key within %(m)s minutes.")
            % {"n": limits["IDENTIFIERS_CHECKED_MORE_THAN"], "m": limits["IDENTIFIERS_WINDOW_MINUTES"]},
            found.get(audit_flags.MANY_IDENTIFIERS, []),
        ),
        (
            _("Hits across many countries"),
            _(
                "Identifier checks by one person or key hitting items held in at least %(n)s countries within %(m)s "
                "minutes."
            )
            % {"n": limits["HIT_COUNTRIES_AT_LEAST"], "m": limits["HIT_COUNTRIES_WINDOW_MINUTES"]},
            found.get(audit_flags.HIT_COUNTRIES, []),
        ),
    ]
    context = {"period": period, "sections": sections, "computed": bool(found)}
    return render(request, "audit/flags.html", context)
