"""FLASH escalation: a FLASH item must be acknowledged by each receiving agency, or it climbs.

``ISN_FLASH_ESCALATE_AFTER_SECONDS`` after routing, an agency that has not acknowledged is escalated to the supervisors
of the offices it reached and to its duty desk, or failing anyone there who may read the item to its supervisors, or
failing them to the people of the offices it reached (level 1); the same interval later, to the national focal points of
its country (level 2). Only people who may read the item are told (``messaging.core.people.readers_among``): an item an
agency holds only through a forward to one office is escalated inside that office. The level is stored on the agency's
deliveries, so a sweep that runs twice escalates once; each step is recorded (``messaging.flash.escalate``) and
notified: in the portal, by e-mail, and by a signed webhook call to the escalated agency's own system when it has an
active webhook and the agency holds the item as a whole (``item.escalated``, then ``item.escalated_national``; queued
through the outbox in the step's transaction, so at least once, and with one ``X-ISN-Delivery`` per step for the
receiver to drop a repeat).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agencies.models import Agency, OfficeKind, Role
from audit.services import record
from messaging.core.people import (
    content_people,
    readers_among,
)
from messaging.core.release import release_of
from messaging.core.sweep import (
    REMINDED,
    SWEEP_BATCH,
    next_level,
    sweep,
)
from messaging.delivery.routing import notify, queue_webhooks
from messaging.models import (
    Item,
    ItemStatus,
    NotificationKind,
    Priority,
)
from messaging.models.delivery import Delivery

WEBHOOK_ESCALATED = "item.escalated"
WEBHOOK_ESCALATED_NATIONAL = "item.escalated_national"


def _due(now: datetime) -> Q:
    before = now - timedelta(seconds=settings.ISN_FLASH_ESCALATE_AFTER_SECONDS)
    return Q(escalation_level=0, routed_at__lte=before) | Q(escalation_level=1, escalated_at__lte=before)


def flash_escalate_due(*, now: datetime | None = None) -> int:
    """Escalate every receiving agency whose FLASH item waits too long; returns the number of steps taken."""
    now = now or timezone.now()
    pending = (
        Delivery.objects.filter(priority=Priority.FLASH, acknowledged_at__isnull=True, revoked_at__isnull=True)
        .filter(_due(now))
        .values_list("item_id", "agency_id")
        .distinct()[:SWEEP_BATCH]
    )
    return sweep(pending, lambda key: _escalate(item_id=key[0], agency_id=key[1], now=now))


@transaction.atomic
def _escalate(*, item_id: object, agency_id: int, now: datetime) -> bool:
    # skip_locked: an agency acknowledging right now is not escalated under its feet; the next sweep looks again.
    deliveries = list(
        Delivery.objects.select_for_update(skip_locked=True).filter(
            item_id=item_id, agency_id=agency_id, acknowledged_at__isnull=True, revoked_at__isnull=True
        )
    )
    if not deliveries:
        return False
    wait = timedelta(seconds=settings.ISN_FLASH_ESCALATE_AFTER_SECONDS)
    level = next_level(
        max(delivery.escalation_level for delivery in deliveries),
        now=now,
        remind_at=min(d.routed_at for d in deliveries) + wait,
        escalate_at=max(d.escalated_at or now for d in deliveries) + wait,
    )
    if level is None:
        return False
    item = Item.objects.get(pk=item_id)
    if item.status != ItemStatus.ACTIVE:
        return False
    agency = Agency.objects.get(pk=agency_id)
    release = release_of(item)
    members = content_people().exclude(agency_id=item.originator_agency_id)
    if level == REMINDED:
        offices = [d.office_id for d in deliveries if d.office_id is not None]
        # The first of these groups with anyone in it who may read the item: an item held only through a forward to
        # one office reaches that office's supervisors, or failing them its people, never a duty desk that cannot
        # open it.
        groups = [
            Q(agency_id=agency_id, role=Role.SUPERVISOR, office_id__in=offices)
            | Q(agency_id=agency_id, office__kind=OfficeKind.DUTY_DESK),
            Q(agency_id=agency_id, role=Role.SUPERVISOR),
            Q(agency_id=agency_id, office_id__in=offices),
        ]
        kind = NotificationKind.ESCALATED
    else:
        groups = [Q(agency__country_id=agency.country_id, role=Role.NATIONAL_FOCAL_POINT)]
        kind = NotificationKind.ESCALATED_NATIONAL
    users: set[int] = set()
    for group in groups:
        users = readers_among(release, members.filter(group).values_list("user_id", flat=True))
        if users:
            break
    notified = notify(item, kind, users, release=release)
    # The agency's own system is told only when the agency holds the item as a whole: it reads as the agency.
    if release.agency_holds(agency_id, agency.country_id):
        queue_webhooks(item, [agency_id], WEBHOOK_ESCALATED if level == REMINDED else WEBHOOK_ESCALATED_NATIONAL)
    Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(escalation_level=level, escalated_at=now)
    record(
        action="messaging.flash.escalate",
        actor=None,
        target=item,
        target_country=item.originator_country,
        details={"agency_id": agency_id, "level": level, "notified_users": notified},
    )
    return True
