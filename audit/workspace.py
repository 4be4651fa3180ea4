"""The auditors' workspace: every search, view and export an auditor makes, each recorded as one audit event.

The portal and the API call these with ``actor=`` and render what they return. Reads are scoped to the actor here,
in the query; the caller only says how to cut a page (the portal pages by id, the API by cursor).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import transaction
from django.db.models import QuerySet

from audit import flags as audit_flags
from audit.models import AuditCheckpoint, AuditEvent
from audit.selectors import ChainStatus, actor_timeline, chain_status, checkpoints_visible_to, events_visible_to
from audit.services import record
from isn.errors import InvalidInput

if TYPE_CHECKING:
    from audit.filters import AuditEventFilter
    from audit.selectors import Viewer

Row = TypeVar("Row", AuditEvent, AuditCheckpoint)
# Cuts one page from a queryset; may return None (DRF's paginators do when paging is off).
Pager = Callable[[QuerySet[Row]], Sequence[Row] | None]


def _matching(actor: Viewer, search: AuditEventFilter) -> QuerySet[AuditEvent]:
    if not search.is_valid():  # the edges validate first and answer 400 themselves; this is the backstop
        raise InvalidInput("the audit search is not valid")
    return search.filter_queryset(events_visible_to(actor))


def _portal(details: dict[str, Any], portal: bool) -> dict[str, Any]:
    return {**details, "portal": True} if portal else details


@transaction.atomic
def audit_events_search(
    *, actor: Viewer, search: AuditEventFilter, page: Pager[AuditEvent], portal: bool = False
) -> list[AuditEvent]:
    """One page of the events in the actor's scope that match a validated search, recorded with filters and count."""
    rows = list(page(_matching(actor, search)) or [])
    details = {"filters": search.used(), "count": len(rows)}
    record(action="audit.events.search", actor=actor, details=_portal(details, portal))
    return rows


@transaction.atomic
def audit_timeline_view(
    *, actor: Viewer, user_id: int, page: Pager[AuditEvent], portal: bool = False
) -> list[AuditEvent]:
    """One page of what one person did, within the actor's scope; recorded naming that person."""
    rows = list(page(actor_timeline(actor, user_id=user_id)) or [])
    record(
        action="audit.timeline.view",
        actor=actor,
        target_type="auth.user",
        target_id=user_id,
        details=_portal({"count": len(rows)}, portal),
    )
    return rows


@transaction.atomic
def audit_checkpoints_view(*, actor: Viewer, page: Pager[AuditCheckpoint]) -> list[AuditCheckpoint]:
    """One page of the signed checkpoints, newest first."""
    rows = list(page(checkpoints_visible_to(actor)) or [])
    record(action="audit.checkpoints.view", actor=actor, details={"count": len(rows)})
    return rows


@transaction.atomic
def audit_status_view(*, actor: Viewer) -> ChainStatus | None:
    """How far the chain is sealed and the newest checkpoint and archive; None for anyone not an auditor."""
    status = chain_status(actor)
    record(action="audit.status.view", actor=actor)
    return status


@transaction.atomic
def audit_flags_view(
    *, actor: Viewer, since: datetime | None, until: datetime | None
) -> dict[str, list[audit_flags.Flag]]:
    """Every flag in the actor's scope over the period, recorded with how many of each kind were found."""
    found = audit_flags.flags_for(actor, since=since, until=until)
    details = {"since": since, "until": until, "counts": {kind: len(rows) for kind, rows in found.items()}}
    record(action="audit.flags.view", actor=actor, details=details)
    return found


@transaction.atomic
def audit_events_export(
    *, actor: Viewer, search: AuditEventFilter, export_format: str, limit: int
) -> QuerySet[AuditEvent]:
    """The events in the actor's scope matching a validated search (newest first, at most ``limit``) to export.

    The newest id is fixed first, so the count recorded is exactly what the file holds even as the log grows; the
    caller streams the returned queryset after this transaction.
    """
    matching = _matching(actor, search)
    top = matching.values_list("id", flat=True).first()
    events = matching.filter(id__lte=top or 0)[:limit]
    record(
        action="audit.events.export",
        actor=actor,
        details={"filters": search.used(), "count": events.count(), "format": export_format, "limit": limit},
    )
    return events
