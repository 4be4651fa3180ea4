"""Reads of the audit trail for auditors, always scoped to the viewer in the query itself.

A national auditor sees events by their country's people and events touching their country's objects; the regional
auditor (UNODC) sees every event; everyone else sees none. Events hold no intelligence content, so neither does
anything read here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet

from agencies.models import Role
from agencies.selectors import (
    country_scope,
)
from audit.models import AuditArchive, AuditCheckpoint, AuditEvent

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    Viewer = AbstractBaseUser | AnonymousUser


def auditor_country(viewer: Viewer) -> str | None:
    """``""`` for the regional auditor (every country), the country code for a national auditor, else None."""
    return country_scope(viewer, roles=(Role.NATIONAL_AUDITOR,))


def is_auditor(viewer: Viewer) -> bool:
    return auditor_country(viewer) is not None


def events_visible_to(viewer: Viewer) -> QuerySet[AuditEvent]:
    """Every event the viewer may see, newest first; empty for anyone who is not an auditor."""
    country = auditor_country(viewer)
    if country is None:
        return AuditEvent.objects.none()
    events = AuditEvent.objects.order_by("-id")
    if country == "":
        return events
    return events.filter(Q(actor_country=country) | Q(target_country=country))


def actor_timeline(viewer: Viewer, *, user_id: int) -> QuerySet[AuditEvent]:
    """What one person did, newest first, within the viewer's scope."""
    return events_visible_to(viewer).filter(actor_user_id=user_id)


def checkpoints_visible_to(viewer: Viewer) -> QuerySet[AuditCheckpoint]:
    """Checkpoints prove the whole chain, not anyone's events: every auditor sees all of them."""
    if not is_auditor(viewer):
        return AuditCheckpoint.objects.none()
    return AuditCheckpoint.objects.order_by("-last_event_id")


@dataclass(frozen=True)
class ChainStatus:
    last_event_id: int | None
    last_sealed_id: int | None
    unsealed_count: int
    latest_checkpoint: AuditCheckpoint | None
    latest_archive: AuditArchive | None


def chain_status(viewer: Viewer) -> ChainStatus | None:
    """How far the sealer has got and the newest checkpoint; None for non-auditors. Verification is audit_verify's."""
    if not is_auditor(viewer):
        return None
    # Both reads walk the partial index of unsealed events, which the sealer keeps small.
    unsealed = AuditEvent.objects.filter(hash="")
    last_sealed = AuditEvent.objects.exclude(hash="").order_by("-id").values_list("id", flat=True).first()
    last_event = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
    return ChainStatus(
        last_event_id=last_event,
        last_sealed_id=last_sealed,
        unsealed_count=unsealed.count(),
        latest_checkpoint=AuditCheckpoint.objects.order_by("-last_event_id").first(),
        latest_archive=AuditArchive.objects.order_by("-last_event_id").first(),
    )
