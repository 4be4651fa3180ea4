"""Routing: who receives an item, as delivery rows; and telling holders when a narrowing takes an item away.

Recipients are the agencies of the released countries (only the named agencies where the originator restricted a
country), never the originating agency. Inside each, the item goes to (a) the counterpart BLOs of the office that
posted it, (b) the offices and people whose subscriptions match it, and (c) the agency's duty desk when neither
(a) nor (b) matched. People named on the item get a delivery of their own. In a country an approved consent added
(the third-party rule) the deliveries are marked CONSENTED, whether this routing or the consent's own delivery makes
them first. Each consumer here runs in one transaction with its audit event and is idempotent: a repeated message
finds its outbox row processed, and the unique constraint on deliveries would stop a second copy anyway.

Routing is the hot path of ingest (an item released to every member reaches sixty agencies), so on PostgreSQL the
release, the candidate recipients, their people and the new deliveries are each one statement with array parameters
(BENCHMARKS.md, "Routing"). Other databases (SQLite, for ``make run``) use the equivalent ORM queries; a test holds
the two to the same answers.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from agencies.models import Agency, Membership, Office, OfficeKind
from audit.services import record
from messaging.core.outbox import outbox_add_many, outbox_claim, outbox_done, outbox_take
from messaging.core.people import (
    AGENCY_LEVEL_ROLES,
    NO_CONTENT_ROLES,
    SYSTEM_NOTIFIED_SCOPE,
    agency_systems,
    content_people,
    readers_among,
)
from messaging.core.release import Release, release_of
from messaging.core.sql import fetch_all
from messaging.delivery.deliveries import Recipient, deliver, deliveries_revoke_lost, item_locked_for_delivery
from messaging.delivery.notifications import notify_people
from messaging.models import (
    AgencyWebhook,
    DeliveryReason,
    Item,
    NotificationKind,
    OutboxKind,
    Rfi,
    Subscription,
)
from messaging.models.delivery import Delivery

WEBHOOK_ROUTED = "item.routed"
WEBHOOK_REVOKED = "item.revoked"


def _postgresql() -> bool:
    return connection.vendor == "postgresql"


# Candidates for ``recipients_for``, as (step, agency, office, person, country), in the order they are considered:
# counterpart offices (by office), matching subscriptions (by subscription), every receiving agency with its duty
# desk if it has one (by agency), people named on the item (by person, with their agency's country).
_COUNTERPART, _SUBSCRIPTION, _AGENCY, _NAMED = 1, 2, 3, 4
Candidate = tuple[int, int, int | None, int | None, str]

_CANDIDATES_SQL = """
    WITH receiving AS (
        SELECT id FROM agencies_agency
        WHERE is_active AND country_id = ANY(%(countries)s) AND id <> %(originator)s
            AND (country_id <> ALL(%(restricted_countries)s) OR id = ANY(%(restricted_agencies)s))
    )
    SELECT 1, office.agency_id, office.id, NULL::bigint, '', office.id
    FROM agencies_office office
    JOIN agencies_office_counterparts pair ON pair.from_office_id = office.id
    WHERE pair.to_office_id = %(office)s AND office.is_active AND office.agency_id IN (SELECT id FROM receiving)
    UNION ALL
    SELECT 2, sub.agency_id, sub.office_id, sub.user_id, '', sub.id
    FROM messaging_subscription sub
    LEFT JOIN agencies_office office ON office.id = sub.office_id
    LEFT JOIN auth_user person ON person.id = sub.user_id
    LEFT JOIN agencies_membership member ON member.user_id = sub.user_id
    WHERE sub.is_active AND sub.agency_id IN (SELECT id FROM receiving)
        AND (sub.category = '' OR sub.category = %(category)s)
        AND (sub.priority = '' OR sub.priority = %(priority)s)
        AND (sub.originator_country = '' OR sub.originator_country = %(country)s)
        AND (sub.border_crossing = '' OR UPPER(sub.border_crossing) = UPPER(%(border_crossing)s))
        AND (sub.province = '' OR UPPER(sub.province) = UPPER(COALESCE(
            (SELECT province FROM agencies_office WHERE id = %(office)s), '')))
        AND (sub.office_id IS NULL OR (office.is_active AND office.agency_id = sub.agency_id))
        AND (sub.user_id IS NULL OR (person.is_active AND member.is_active AND member.agency_id = sub.agency_id
            AND member.role <> ALL(%(no_content)s)))
    UNION ALL
    SELECT 3, receiving.id, desk.id, NULL, '', receiving.id
    FROM receiving
    LEFT JOIN agencies_office desk ON desk.agency_id = receiving.id AND desk.kind = %(duty_desk)s AND desk.is_active
    UNION ALL
    SELECT 4, member.agency_id, NULL, member.user_id, agency.country_id, member.user_id
    FROM agencies_membership member
    JOIN auth_user person ON person.id = member.user_id
    JOIN agencies_agency agency ON agency.id = member.agency_id
    WHERE member.user_id = ANY(%(named)s) AND member.is_active AND person.is_active AND agency.is_active
        AND member.role <> ALL(%(no_content)s) AND member.agency_id <> %(originator)s
    ORDER BY 1, 6
"""


def _candidates_sql(item: Item, release: Release) -> list[Candidate]:
    rows = fetch_all(
        _CANDIDATES_SQL,
        {
            "countries": sorted(release.countries),
            "originator": item.originator_agency_id,
            "restricted_countries": sorted(release.restricted),
            "restricted_agencies": sorted(pk for ids in release.restricted.values() for pk in ids),
            "office": item.originator_office_id,
            "category": item.category,
            "priority": item.priority,
            "country": item.originator_country,
            "border_crossing": item.border_crossing,
            "no_content": list(NO_CONTENT_ROLES),
            "duty_desk": OfficeKind.DUTY_DESK,
            "named": sorted(release.named),
        },
    )
    return [row[:5] for row in rows]  # type: ignore[misc]


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


def _candidates_orm(item: Item, release: Release) -> list[Candidate]:
    """``_CANDIDATES_SQL`` with the ORM, for databases other than PostgreSQL."""
    agencies = (
        Agency.objects.filter(is_active=True, country_id__in=release.countries)
        .exclude(pk=item.originator_agency_id)
        .values_list("pk", "country_id")
    )
    receiving = sorted(pk for pk, country in agencies if release.agency_may_see(pk, country))
    rows: list[Candidate] = []
    if item.originator_office_id:
        counterparts = Office.objects.filter(
            counterparts=item.originator_office_id, is_active=True, agency_id__in=receiving
        ).order_by("pk")
        rows += [
            (_COUNTERPART, agency_id, pk, None, "") for agency_id, pk in counterparts.values_list("agency_id", "pk")
        ]
    rows += [
        (_SUBSCRIPTION, sub.agency_id, sub.office_id, sub.user_id, "")
        for sub in _matching_subscriptions(item, receiving)
    ]
    desks = dict(
        Office.objects.filter(agency_id__in=receiving, kind=OfficeKind.DUTY_DESK, is_active=True).values_list(
            "agency_id", "pk"
        )
    )
    rows += [(_AGENCY, agency_id, desks.get(agency_id), None, "") for agency_id in receiving]
    if release.named:
        named = (
            Membership.objects.filter(
                user_id__in=release.named, is_active=True, user__is_active=True, agency__is_active=True
            )
            .exclude(role__in=NO_CONTENT_ROLES)
            .exclude(agency_id=item.originator_agency_id)
            .order_by("user_id")
            .values_list("agency_id", "user_id", "agency__country_id")
        )
        rows += [(_NAMED, agency_id, None, user_id, country) for agency_id, user_id, country in named]
    return rows


def recipients_for(item: Item, release: Release | None = None) -> list[Recipient]:
    """Everyone the item is routed to, each recipient once (the first reason that applies is kept, or CONSENTED in a
    country a consent added)."""
    release = release or release_of(item)
    if not release.active:
        return []
    candidates = _candidates_sql(item, release) if _postgresql() else _candidates_orm(item, release)
    chosen: dict[tuple[int, int | None, int | None], Recipient] = {}

    def add(recipient: Recipient) -> None:
        chosen.setdefault(recipient.key, recipient)

    covered: set[int] = set()  # agencies reached by a counterpart office or a subscription: no duty desk for them
    for step, agency_id, office_id, user_id, country in candidates:
        if step == _COUNTERPART:
            add(Recipient(agency_id, office_id, None, DeliveryReason.COUNTERPART))
            covered.add(agency_id)
        elif step == _SUBSCRIPTION:
            # A person's subscription reaches the person, wherever their office is.
            add(Recipient(agency_id, None if user_id else office_id, user_id, DeliveryReason.SUBSCRIPTION))
            covered.add(agency_id)
        elif step == _AGENCY:
            if agency_id not in covered:
                add(Recipient(agency_id, office_id, None, DeliveryReason.DUTY_DESK))
        elif release.person_may_see(user_id, agency_id, country):  # type: ignore[arg-type]
            add(Recipient(agency_id, None, user_id, DeliveryReason.NAMED))
    return _consented(release, list(chosen.values()))


def _consented(release: Release, recipients: list[Recipient]) -> list[Recipient]:
    """Recipients in a country an approved consent added are there by that consent (CONSENTED), whichever step found
    them; but a person named on the item whose agency the release leaves out is there by being named."""
    if not release.consented:
        return recipients
    countries = dict(Agency.objects.filter(country_id__in=release.consented).values_list("pk", "country_id"))

    def by_consent(recipient: Recipient) -> bool:
        country = countries.get(recipient.agency_id)
        return country is not None and (
            recipient.reason != DeliveryReason.NAMED or release.agency_may_see(recipient.agency_id, country)
        )

    return [replace(r, reason=DeliveryReason.CONSENTED) if by_consent(r) else r for r in recipients]


# The people of offices and of whole agencies (their supervisors and focal points), as (1, office, person) and
# (2, agency, person), and the agencies' systems (``messaging.core.people.agency_systems``) as (3, agency, account):
# active members of active agencies, never auditors.
_MEMBERS_SQL = """
    SELECT 1, member.office_id, member.user_id
    FROM agencies_membership member
    JOIN auth_user person ON person.id = member.user_id
    JOIN agencies_agency agency ON agency.id = member.agency_id
    WHERE member.office_id = ANY(%(offices)s) AND member.is_active AND person.is_active AND agency.is_active
        AND member.role <> ALL(%(no_content)s)
    UNION ALL
    SELECT 2, member.agency_id, member.user_id
    FROM agencies_membership member
    JOIN auth_user person ON person.id = member.user_id
    JOIN agencies_agency agency ON agency.id = member.agency_id
    WHERE member.agency_id = ANY(%(agencies)s) AND member.role = ANY(%(agency_level)s)
        AND member.is_active AND person.is_active AND agency.is_active AND member.role <> ALL(%(no_content)s)
    UNION ALL
    SELECT 3, api.agency_id, api.user_id
    FROM agencies_apikey api
    JOIN agencies_membership member ON member.user_id = api.user_id AND member.agency_id = api.agency_id
    JOIN auth_user person ON person.id = api.user_id
    JOIN agencies_agency agency ON agency.id = api.agency_id
    WHERE api.agency_id = ANY(%(systems)s) AND api.revoked_at IS NULL AND api.expires_at > %(now)s
        AND api.scopes @> %(notified_scope)s::jsonb
        AND member.is_active AND person.is_active AND agency.is_active AND member.role <> ALL(%(no_content)s)
"""


def _members(office_ids: set[int], agency_ids: set[int], system_agency_ids: set[int]) -> list[tuple[int, int, int]]:
    if not office_ids and not agency_ids and not system_agency_ids:
        return []
    if _postgresql():
        return fetch_all(  # type: ignore[return-value]
            _MEMBERS_SQL,
            {
                "offices": sorted(office_ids),
                "agencies": sorted(agency_ids),
                "systems": sorted(system_agency_ids),
                "now": timezone.now(),
                "notified_scope": json.dumps([SYSTEM_NOTIFIED_SCOPE]),
                "agency_level": list(AGENCY_LEVEL_ROLES),
                "no_content": list(NO_CONTENT_ROLES),
            },
        )
    members = content_people()
    of_offices = members.filter(office_id__in=office_ids).values_list("office_id", "user_id")
    of_agencies = members.filter(agency_id__in=agency_ids, role__in=AGENCY_LEVEL_ROLES).values_list(
        "agency_id", "user_id"
    )
    rows = [(1, office_id, user_id) for office_id, user_id in of_offices] if office_ids else []
    rows += [(2, agency_id, user_id) for agency_id, user_id in of_agencies] if agency_ids else []
    rows += [(3, agency_id, user_id) for agency_id, user_id in agency_systems(system_agency_ids)]
    return rows


def people_for(recipients: Iterable[Recipient]) -> dict[tuple[int, int | None, int | None], set[int]]:
    """The people each recipient stands for: an office's members, a person, or an agency's supervisors and focal
    points; auditors and inactive accounts never. Every recipient that brings the item to its agency as such (all but
    a person named on it, who may see it outside the agencies it is released to) stands for the agency's systems too.
    """
    recipients = list(recipients)
    people: dict[tuple[int, int | None, int | None], set[int]] = {recipient.key: set() for recipient in recipients}
    by_office = [r for r in recipients if r.office_id is not None and r.user_id is None]
    whole = [r for r in recipients if r.office_id is None and r.user_id is None]
    for_agency = [r for r in recipients if r.reason != DeliveryReason.NAMED]
    found: dict[tuple[int, int], set[int]] = defaultdict(set)
    members = _members(
        {r.office_id for r in by_office if r.office_id is not None},
        {r.agency_id for r in whole},
        {r.agency_id for r in for_agency},
    )
    for kind, pk, user_id in members:
        found[(kind, pk)].add(user_id)
    for recipient in by_office:
        people[recipient.key] |= found[(1, recipient.office_id)]  # type: ignore[arg-type]
    for recipient in recipients:
        if recipient.user_id is not None:
            people[recipient.key].add(recipient.user_id)
    for recipient in whole:
        people[recipient.key] |= found[(2, recipient.agency_id)]
    for recipient in for_agency:
        people[recipient.key] |= found[(3, recipient.agency_id)]
    return people


def _webhook_agencies(agency_ids: Iterable[int]) -> list[int]:
    agency_ids = sorted(set(agency_ids))
    if not agency_ids:
        return []
    if _postgresql():  # one array parameter rather than one parameter per agency
        sql = "SELECT agency_id FROM messaging_agencywebhook WHERE is_active AND agency_id = ANY(%s) ORDER BY 1"
        return [pk for (pk,) in fetch_all(sql, [agency_ids])]
    return sorted(
        AgencyWebhook.objects.filter(agency_id__in=agency_ids, is_active=True).values_list("agency_id", flat=True)
    )


def notify(item: Item, kind: str, user_ids: Iterable[int], *, release: Release | None = None) -> list[int]:
    """In-portal notifications about an item for those of these people who may read it now
    (``messaging.core.people.readers_among``), with their e-mail queued (see ``notify_people``). Pass the
    ``release`` when it is at hand. For telling people they lost an item, use ``notify_people`` itself."""
    readers = readers_among(release or release_of(item), user_ids)
    return notify_people(kind=kind, user_ids=readers, item=item)


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
    item_id = outbox_take(outbox_id, OutboxKind.ITEM_ROUTE)  # marked processed now, and undone by a rollback
    if item_id is None:
        return None
    item = item_locked_for_delivery(item_id)
    release = release_of(item)  # read under the lock: the recipients are those of the release as it stands
    new = deliver(item, recipients_for(item, release), release=release)
    _pause_for_fault_tests(len(new))
    people = people_for(new)
    notified = notify(item, NotificationKind.ROUTED, (pk for users in people.values() for pk in users), release=release)
    agencies = sorted({r.agency_id for r in new})
    queue_webhooks(item, agencies, WEBHOOK_ROUTED)
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
    return RouteResult(deliveries=len(new), agencies=len(agencies), notified=len(notified))


def queue_webhooks(subject: Item | Rfi, agency_ids: Iterable[int], event: str, **ids: Any) -> None:
    """One webhook outbox row for each of these agencies that has an active webhook: ids and codes only.

    ``subject`` is an item, or a request for information (which need not name one); ``ids`` adds the ids of what
    else the event is about (``consent_id``, ``rfi_id``)."""
    queue_webhook_calls([(subject, pk, event, ids) for pk in sorted(set(agency_ids))])


def queue_webhook_calls(calls: Iterable[tuple[Item | Rfi, int, str, dict[str, Any]]]) -> None:
    """Many webhook events at once, each (subject, agency id, event, ids) as in ``queue_webhooks``: one query for the
    agencies with an active webhook, one insert."""
    calls = list(calls)
    active = set(_webhook_agencies(agency_id for _subject, agency_id, _event, _ids in calls))
    rows = []
    for subject, agency_id, event, ids in calls:
        if agency_id not in active:
            continue
        item_id = subject.item_id if isinstance(subject, Rfi) else subject.pk
        about = {"item_id": None if item_id is None else str(item_id)}
        about |= {name: str(value) for name, value in ids.items() if value is not None}
        rows.append((OutboxKind.NOTIFY_WEBHOOK, subject, {**about, "agency_id": agency_id, "event": event}))
    outbox_add_many(rows)


@transaction.atomic
def item_revoke_notify(*, outbox_id: int) -> RouteResult | None:
    """After a narrowing, withdrawal or expiry: mark the deliveries that lost access and tell their people."""
    message = outbox_claim(outbox_id, OutboxKind.ITEM_REVOKE)
    if message is None:
        return None
    item = Item.objects.get(pk=message.item_id)
    lost, kept = deliveries_revoke_lost(item)

    def as_recipient(delivery: Delivery) -> Recipient:
        return Recipient(delivery.agency_id, delivery.office_id, delivery.user_id, delivery.reason)

    lost_people = {pk for users in people_for(map(as_recipient, lost)).values() for pk in users}
    kept_people = {pk for users in people_for(map(as_recipient, kept)).values() for pk in users}
    notified = notify_people(kind=NotificationKind.REVOKED, user_ids=lost_people - kept_people, item=item)
    agencies_cut_off = sorted({d.agency_id for d in lost} - {d.agency_id for d in kept})
    queue_webhooks(item, agencies_cut_off, WEBHOOK_REVOKED)
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
