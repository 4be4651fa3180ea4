"""Routing: who receives an item, as delivery rows; and telling holders when a narrowing takes an item away.

Recipients are the agencies of the released countries (only the named agencies where the originator restricted a
country), never the originating agency. Inside each, the item goes to (a) the counterpart BLOs of the office that
posted it, (b) the offices and people whose subscriptions match it, and (c) the agency's duty desk when neither
(a) nor (b) matched. People named on the item get a delivery of their own. Each consumer here runs in one
transaction with its audit event and is idempotent: a repeated message finds its outbox row processed, and the
unique constraint on deliveries would stop a second copy anyway.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from agencies.models import Agency, Membership, Office, OfficeKind, Role
from audit.services import record
from messaging.models import (
    AgencyWebhook,
    Delivery,
    DeliveryReason,
    Item,
    ItemAgencyGrant,
    ItemCountryGrant,
    ItemStatus,
    ItemUserObjectPermission,
    NotificationKind,
    OutboxKind,
    Subscription,
)
from messaging.notifications import notify_people
from messaging.outbox import outbox_add_many, outbox_claim, outbox_done

# Roles that never receive content, so are never routed to or notified (DESIGN.md: auditors see no content).
NO_CONTENT_ROLES = (Role.NATIONAL_AUDITOR, Role.REGIONAL_AUDITOR)
# Who stands for an agency when an item reaches it as a whole (no duty desk office, no office, no person).
AGENCY_LEVEL_ROLES = (Role.SUPERVISOR, Role.NATIONAL_FOCAL_POINT)

WEBHOOK_ROUTED = "item.routed"
WEBHOOK_REVOKED = "item.revoked"


@dataclass(frozen=True)
class Recipient:
    agency_id: int
    office_id: int | None
    user_id: int | None
    reason: str

    @property
    def key(self) -> tuple[int, int | None, int | None]:
        return (self.agency_id, self.office_id, self.user_id)


@dataclass(frozen=True)
class Release:
    """An item's grants at one moment: the same rule as ``selectors.items_visible_to``, for many agencies at once."""

    active: bool
    countries: frozenset[str]
    restricted: dict[str, frozenset[int]] = field(default_factory=dict)
    named: frozenset[int] = frozenset()

    def agency_may_see(self, agency_id: int, country: str) -> bool:
        if not self.active or country not in self.countries:
            return False
        allowed = self.restricted.get(country)
        return allowed is None or agency_id in allowed

    def person_may_see(self, user_id: int, agency_id: int, country: str) -> bool:
        return self.agency_may_see(agency_id, country) or (
            self.active and country in self.countries and user_id in self.named
        )


def release_of(item: Item) -> Release:
    restricted: dict[str, set[int]] = defaultdict(set)
    for agency_id, country in ItemAgencyGrant.objects.filter(item=item).values_list("agency_id", "country_id"):
        restricted[country].add(agency_id)
    return Release(
        active=item.status == ItemStatus.ACTIVE,
        countries=frozenset(ItemCountryGrant.objects.filter(item=item).values_list("country_id", flat=True)),
        restricted={country: frozenset(ids) for country, ids in restricted.items()},
        named=frozenset(
            ItemUserObjectPermission.objects.filter(content_object=item, permission__codename="view_item").values_list(
                "user_id", flat=True
            )
        ),
    )


def _matching_subscriptions(item: Item, agency_ids: Iterable[int]) -> list[Subscription]:
    province = item.originator_office.province if item.originator_office_id else ""
    criteria = (
        (Q(category="") | Q(category=item.category))
        & (Q(priority="") | Q(priority=item.priority))
        & (Q(originator_country="") | Q(originator_country=item.originator_country))
        & (Q(border_crossing="") | Q(border_crossing__iexact=item.border_crossing))
        & (Q(province="") | Q(province__iexact=province))
    )
    # A subscription counts only while its office is an active office of the agency, or its person an active
    # member of the agency allowed to read content.
    office_ok = Q(office__isnull=True) | Q(office__is_active=True, office__agency_id=F("agency_id"))
    person_ok = Q(user__isnull=True) | (
        Q(user__is_active=True, user__membership__is_active=True, user__membership__agency_id=F("agency_id"))
        & ~Q(user__membership__role__in=NO_CONTENT_ROLES)
    )
    return list(
        Subscription.objects.filter(is_active=True, agency_id__in=list(agency_ids))
        .filter(criteria & office_ok & person_ok)
        .order_by("pk")
    )


def recipients_for(item: Item, release: Release | None = None) -> list[Recipient]:
    """Everyone the item is routed to, each recipient once (the first reason that applies is kept)."""
    release = release or release_of(item)
    if not release.active:
        return []
    agencies = Agency.objects.filter(is_active=True, country_id__in=release.countries).exclude(
        pk=item.originator_agency_id
    )
    receiving = {agency.pk for agency in agencies if release.agency_may_see(agency.pk, agency.country_id)}
    chosen: dict[tuple[int, int | None, int | None], Recipient] = {}

    def add(recipient: Recipient) -> None:
        chosen.setdefault(recipient.key, recipient)

    covered: set[int] = set()
    if item.originator_office_id:
        counterparts = Office.objects.filter(
            counterparts=item.originator_office_id, is_active=True, agency_id__in=receiving
        ).order_by("pk")
        for office in counterparts:
            add(Recipient(office.agency_id, office.pk, None, DeliveryReason.COUNTERPART))
            covered.add(office.agency_id)
    for subscription in _matching_subscriptions(item, receiving):
        office_id = None if subscription.user_id else subscription.office_id
        add(Recipient(subscription.agency_id, office_id, subscription.user_id, DeliveryReason.SUBSCRIPTION))
        covered.add(subscription.agency_id)
    uncovered = receiving - covered
    desks = dict(
        Office.objects.filter(agency_id__in=uncovered, kind=OfficeKind.DUTY_DESK, is_active=True).values_list(
            "agency_id", "pk"
        )
    )
    for agency_id in sorted(uncovered):
        add(Recipient(agency_id, desks.get(agency_id), None, DeliveryReason.DUTY_DESK))
    if release.named:
        named = Membership.objects.filter(
            user_id__in=release.named, is_active=True, user__is_active=True, agency__is_active=True
        ).exclude(role__in=NO_CONTENT_ROLES)
        for membership in named.select_related("agency").order_by("user_id"):
            if membership.agency_id == item.originator_agency_id:
                continue  # the originating agency sees its own items; it is never a recipient
            if release.person_may_see(membership.user_id, membership.agency_id, membership.agency.country_id):
                add(Recipient(membership.agency_id, None, membership.user_id, DeliveryReason.NAMED))
    return list(chosen.values())


def people_for(recipients: Iterable[Recipient]) -> dict[tuple[int, int | None, int | None], set[int]]:
    """The people each recipient stands for: an office's members, a person, or an agency's supervisors and focal
    points; auditors and inactive accounts never."""
    recipients = list(recipients)
    people: dict[tuple[int, int | None, int | None], set[int]] = {recipient.key: set() for recipient in recipients}
    members = Membership.objects.filter(is_active=True, user__is_active=True, agency__is_active=True).exclude(
        role__in=NO_CONTENT_ROLES
    )
    by_office = [r for r in recipients if r.office_id is not None and r.user_id is None]
    if by_office:
        found: dict[int, set[int]] = defaultdict(set)
        for office_id, user_id in members.filter(office_id__in={r.office_id for r in by_office}).values_list(
            "office_id", "user_id"
        ):
            found[office_id].add(user_id)
        for recipient in by_office:
            people[recipient.key] |= found[recipient.office_id]  # type: ignore[index]
    for recipient in recipients:
        if recipient.user_id is not None:
            people[recipient.key].add(recipient.user_id)
    whole = [r for r in recipients if r.office_id is None and r.user_id is None]
    if whole:
        found = defaultdict(set)
        for agency_id, user_id in members.filter(
            agency_id__in={r.agency_id for r in whole}, role__in=AGENCY_LEVEL_ROLES
        ).values_list("agency_id", "user_id"):
            found[agency_id].add(user_id)
        for recipient in whole:
            people[recipient.key] |= found[recipient.agency_id]
    return people


def _webhook_agencies(agency_ids: Iterable[int]) -> list[int]:
    return sorted(
        AgencyWebhook.objects.filter(agency_id__in=list(agency_ids), is_active=True).values_list("agency_id", flat=True)
    )


def notify(item: Item, kind: str, user_ids: Iterable[int]) -> list[int]:
    """In-portal notifications about an item for these people, with their e-mail queued (see ``notify_people``)."""
    return notify_people(kind=kind, user_ids=user_ids, item=item)


def _pause_for_fault_tests(count: int) -> None:
    # A test-only knob (refused in production by the settings): stretches routing so a test can kill the worker
    # while a routing transaction is open.
    pause = settings.ISN_ROUTING_PAUSE_MS
    if pause:
        time.sleep(pause * count / 1000)


@dataclass(frozen=True)
class RouteResult:
    deliveries: int
    agencies: int
    notified: int


@transaction.atomic
def item_route(*, outbox_id: int) -> RouteResult | None:
    """Route the item of an ``item.route`` outbox row; None when that row was already processed."""
    message = outbox_claim(outbox_id, OutboxKind.ITEM_ROUTE)
    if message is None:
        return None
    item = Item.objects.select_related("originator_office").get(pk=message.item_id)
    recipients = recipients_for(item)
    existing = set(Delivery.objects.filter(item=item).values_list("agency_id", "office_id", "user_id"))
    new = [recipient for recipient in recipients if recipient.key not in existing]
    now = timezone.now()
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
            )
            for r in new
        ],
        ignore_conflicts=True,
    )
    _pause_for_fault_tests(len(new))
    people = people_for(new)
    notified = notify(item, NotificationKind.ROUTED, (pk for users in people.values() for pk in users))
    agencies = sorted({r.agency_id for r in new})
    _queue_webhooks(item, agencies, WEBHOOK_ROUTED)
    record(
        action="messaging.item.route",
        actor=None,
        target=item,
        target_country=item.originator_country,
        details={
            "outbox_id": outbox_id,
            "agencies": agencies,
            "deliveries": len(new),
            "reasons": sorted({r.reason for r in new}),
            "notified_users": notified,
        },
    )
    outbox_done(message)
    return RouteResult(deliveries=len(new), agencies=len(agencies), notified=len(notified))


def _queue_webhooks(item: Item, agency_ids: Iterable[int], event: str) -> None:
    """One webhook outbox row for each of these agencies that has an active webhook: ids and codes only."""
    outbox_add_many(
        [
            (OutboxKind.NOTIFY_WEBHOOK, item, {"item_id": str(item.pk), "agency_id": pk, "event": event})
            for pk in _webhook_agencies(agency_ids)
        ]
    )


@transaction.atomic
def item_revoke_notify(*, outbox_id: int) -> RouteResult | None:
    """After a narrowing, withdrawal or expiry: mark the deliveries that lost access and tell their people."""
    message = outbox_claim(outbox_id, OutboxKind.ITEM_REVOKE)
    if message is None:
        return None
    item = Item.objects.get(pk=message.item_id)
    release = release_of(item)
    deliveries = list(
        Delivery.objects.select_for_update()
        .filter(item=item, revoked_at__isnull=True)
        .select_related("agency")
        .order_by("pk")
    )

    def still_sees(delivery: Delivery) -> bool:
        if delivery.reason == DeliveryReason.NAMED and delivery.user_id is not None:
            return release.person_may_see(delivery.user_id, delivery.agency_id, delivery.agency.country_id)
        return release.agency_may_see(delivery.agency_id, delivery.agency.country_id)

    lost = [delivery for delivery in deliveries if not still_sees(delivery)]
    kept = [delivery for delivery in deliveries if still_sees(delivery)]
    now = timezone.now()
    Delivery.objects.filter(pk__in=[d.pk for d in lost]).update(revoked_at=now)

    def as_recipient(delivery: Delivery) -> Recipient:
        return Recipient(delivery.agency_id, delivery.office_id, delivery.user_id, delivery.reason)

    lost_people = {pk for users in people_for(map(as_recipient, lost)).values() for pk in users}
    kept_people = {pk for users in people_for(map(as_recipient, kept)).values() for pk in users}
    notified = notify(item, NotificationKind.REVOKED, lost_people - kept_people)
    agencies_cut_off = sorted({d.agency_id for d in lost} - {d.agency_id for d in kept})
    _queue_webhooks(item, agencies_cut_off, WEBHOOK_REVOKED)
    record(
        action="messaging.item.revoke_notify",
        actor=None,
        target=item,
        target_country=item.originator_country,
        details={
            "outbox_id": outbox_id,
            "agencies": agencies_cut_off,
            "deliveries": len(lost),
            "notified_users": notified,
        },
    )
    outbox_done(message)
    return RouteResult(deliveries=len(lost), agencies=len(agencies_cut_off), notified=len(notified))
