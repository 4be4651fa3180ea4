"""Requests for information (RFIs): an agency asks another country's agency (often its BLO counterpart) a question,
about an item or free-standing, and the two sides talk it through in a thread until the asker closes it.

Subject, question and replies are sealed under the request's own data key, wrapped for the asking and the asked
country only (``RfiKey``), like an item's. Only active content members of the two agencies see a request, and, once
it has escalated to them, the asked country's national focal points (read only): anyone else, auditors included, gets
the answer a request that does not exist gets. The other side never sees an item the question is about, only its id.

Every act and every read is an audit event filed under the other side's country (``target_country``); the actor's own
country is on the event too, so both countries' national auditors see it. Details hold ids and codes only.

An open request past its due time reminds the asked side (level 1); as long again later it escalates to the asked
agency's supervisors and its country's national focal points (level 2). Decryption fails closed: the service's
transaction is rolled back, ``messaging.rfi.decrypt_failed`` is recorded in a transaction of its own and the caller
gets ``ContentUnavailable``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from agencies.models import Agency, Membership, Office, OfficeKind, Role
from audit.services import record
from isn.errors import Conflict, NotFound, PermissionDenied, Probed
from messaging.core.outbox import outbox_add
from messaging.core.people import (
    content_membership,
    content_people,
)
from messaging.core.sealing import (
    RFI,
    Unreadable,
    data_key_new,
    decrypt_failure_record,
    fails_closed,
    opened_text,
    primary_keks,
    rfi_data_key,
    rfi_keys_wrapped,
    rfi_reply_aad,
    rfi_text_aad,
    sealed,
)
from messaging.core.sweep import ESCALATED, REMINDED, SWEEP_BATCH, next_level, sweep
from messaging.core.validation import Problems, check_choice, check_text
from messaging.delivery.feed import feed_tell_rfi
from messaging.delivery.notifications import notify_people
from messaging.models import (
    RFI_SUBJECT_MAX_LENGTH,
    RFI_TEXT_MAX_LENGTH,
    ChangeKind,
    Hit,
    Item,
    ItemAgencyGrant,
    ItemCountryGrant,
    ItemStatus,
    Notification,
    NotificationKind,
    OutboxKind,
    Priority,
    Rfi,
    RfiKey,
    RfiReply,
    RfiStatus,
)
from messaging.selectors.items import items_visible_to, parse_item_id

if TYPE_CHECKING:
    from typing import TypeAlias

    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    Actor: TypeAlias = AbstractBaseUser
    Viewer: TypeAlias = AbstractBaseUser | AnonymousUser


# One message for "does not exist", "not yours to see" and "not an id": a caller must not tell them apart.
NOT_FOUND_MESSAGE = "No such request for information."
# The same for a hit reference: unknown, or received by another agency.
HIT_NOT_FOUND_MESSAGE = "No hit with this reference was received by your agency."

SENT, RECEIVED = "sent", "received"
DIRECTIONS = ((SENT, "Sent by your agency"), (RECEIVED, "Received by your agency"))
_MAX_ID = 2**31 - 1


# --- opening (sealing itself is ``messaging.core.sealing``) ---------------------------------------------------------


def _open_text(data_key: bytes, rfi: Rfi, field_name: str, country_code: str) -> str:
    ciphertext = rfi.subject_sealed if field_name == "subject" else rfi.question_sealed
    failure = Unreadable.of_rfi(rfi, country_code, f"{field_name}_does_not_open")
    return opened_text(data_key, ciphertext, aad=rfi_text_aad(rfi.pk, field_name), failure=failure)


def _open_reply(data_key: bytes, rfi: Rfi, reply: RfiReply, country_code: str) -> str:
    failure = Unreadable.of_rfi(rfi, country_code, "reply_does_not_open")
    return opened_text(data_key, reply.body_sealed, aad=rfi_reply_aad(rfi.pk, reply.pk), failure=failure)


# --- selectors: reads scoped to the viewer in SQL ----------------------------------------------------------------


def rfis_visible_to(viewer: Viewer) -> QuerySet[Rfi]:
    """Every request the viewer may see, newest first: their agency asked or was asked; for the asked country's
    national focal points, also those escalated to them."""
    membership = content_membership(viewer)
    if membership is None:
        return Rfi.objects.none()
    mine = Q(requester_agency_id=membership.agency_id) | Q(target_agency_id=membership.agency_id)
    if membership.role == Role.NATIONAL_FOCAL_POINT:
        mine |= Q(target_country=membership.agency.country_id, escalation_level__gte=ESCALATED)
    return Rfi.objects.filter(mine).order_by("-created_at", "-id")


def rfis_for_listing(viewer: Viewer) -> QuerySet[Rfi]:
    """``rfis_visible_to`` shaped for a list: agencies and offices joined, only the viewer's own country's wrapped key
    prefetched (one more query per page), questions not loaded."""
    membership = content_membership(viewer)
    if membership is None:
        return Rfi.objects.none()
    own_keys = RfiKey.objects.filter(country_id=membership.agency.country_id)
    return (
        rfis_visible_to(viewer)
        .select_related("requester_agency", "requester_office", "target_agency", "target_office", "hit")
        .defer("question_sealed")
        .prefetch_related(Prefetch("keys", queryset=own_keys, to_attr="viewer_keys"))
    )


def rfis_in_direction(rfis: QuerySet[Rfi], viewer: Viewer, direction: str) -> QuerySet[Rfi]:
    """``sent``: asked by the viewer's agency; ``received``: every other visible request (asked of it)."""
    membership = content_membership(viewer)
    if membership is None:
        return rfis.none()
    if direction == SENT:
        return rfis.filter(requester_agency_id=membership.agency_id)
    return rfis.exclude(requester_agency_id=membership.agency_id)


def parse_rfi_id(value: object) -> uuid.UUID:
    """A UUID from a URL or request; anything else is NotFound, exactly like an unknown id."""
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        raise NotFound(NOT_FOUND_MESSAGE) from None


def rfi_get(viewer: Viewer, *, rfi_id: object, for_update: bool = False) -> Rfi:
    """One visible request, or NotFound (the same answer whether it is hidden, absent or malformed)."""
    rfis = rfis_visible_to(viewer).select_related(
        "requester_agency", "requester_office", "target_agency", "target_office", "hit"
    )
    if for_update:
        rfis = rfis.select_for_update(of=("self",))
    pk = parse_rfi_id(rfi_id)
    rfi = rfis.filter(pk=pk).first()
    if rfi is None:
        # For the record of the refusal only: filed under the asked country (one lookup by primary key, for a hidden
        # and an absent request alike), whose auditors answer for what it was asked.
        country = Rfi.objects.filter(pk=pk).values_list("target_country", flat=True).first() or ""
        raise NotFound(NOT_FOUND_MESSAGE, probed=Probed(type=Rfi._meta.label_lower, id=str(pk), country=country))
    return rfi


def _side(rfi: Rfi, membership: Membership | None) -> str | None:
    """SENT for the asking agency, RECEIVED for the asked one, None for a focal point brought in by escalation."""
    if membership is None:
        return None
    if membership.agency_id == rfi.requester_agency_id:
        return SENT
    if membership.agency_id == rfi.target_agency_id:
        return RECEIVED
    return None


# --- who is told ---------------------------------------------------------------------------------------------------


def _stand_ins(agency_id: int, office_id: int | None) -> set[int]:
    """Who answers for an office of an agency: the office's people, else the agency's duty desk, else its
    supervisors (as routing does for items)."""
    members = content_people().filter(agency_id=agency_id)
    if office_id is not None:
        people = set(members.filter(office_id=office_id, office__is_active=True).values_list("user_id", flat=True))
        if people:
            return people
    desk = set(
        members.filter(office__kind=OfficeKind.DUTY_DESK, office__is_active=True).values_list("user_id", flat=True)
    )
    return desk or set(members.filter(role=Role.SUPERVISOR).values_list("user_id", flat=True))


def _asked_people(rfi: Rfi) -> set[int]:
    """Who answers for the asked side: the stand-ins of the office asked (or the agency); for a request from a hit,
    also the office that posted the item hit and its poster, who know it best. The asker is never told who they are:
    the request names no office of the holder."""
    people = _stand_ins(rfi.target_agency_id, rfi.target_office_id)
    if rfi.hit_id:
        item = Item.objects.filter(pk=rfi.hit.item_id).values("originator_office_id", "originator_user_id").first()
        if item is not None:
            posters = content_people().filter(agency_id=rfi.target_agency_id)
            office = item["originator_office_id"]
            people |= set(
                posters.filter(
                    Q(user_id=item["originator_user_id"]) | Q(office_id=office, office__isnull=False)
                ).values_list("user_id", flat=True)
            )
    return people


def _side_people(rfi: Rfi, side: str) -> set[int]:
    """The people of one side of the thread: its stand-ins (for the asker, the person who asked) and whoever of that
    agency has replied, as long as they are still active members."""
    agency_id = rfi.requester_agency_id if side == SENT else rfi.target_agency_id
    authors = set(RfiReply.objects.filter(rfi=rfi, author_agency_id=agency_id).values_list("author_user_id", flat=True))
    base = {rfi.requester_user_id} if side == SENT else _asked_people(rfi)
    people = set(
        content_people()
        .filter(agency_id=agency_id)
        .filter(user_id__in=base | authors)
        .values_list("user_id", flat=True)
    )
    if not people and side == SENT:  # the asker has left: their office (or desk, or supervisors) stands in
        people = _stand_ins(agency_id, rfi.requester_office_id)
    return people


def _notify(rfi: Rfi, kind: str, user_ids: Iterable[int]) -> list[int]:
    """``notify_people`` for a request, plus: whoever had already read an earlier notification of this kind gets it
    back unread, dated now and e-mailed again, so a new reply (or a new reminder after a reopening) is seen. An unread
    one is left as it is: nobody is told twice about what they have not looked at yet."""
    user_ids = set(user_ids)
    if not user_ids:
        return []
    renewed = list(
        Notification.objects.filter(rfi=rfi, kind=kind, user_id__in=user_ids, read_at__isnull=False).values_list(
            "pk", "user_id"
        )
    )
    if renewed:
        Notification.objects.filter(pk__in=[pk for pk, _ in renewed]).update(
            read_at=None, created_at=timezone.now(), emailed_at=None, email_claimed_at=None
        )
    new = notify_people(kind=kind, user_ids=user_ids, rfi=rfi)
    if renewed and not new:  # notify_people queued no e-mail: queue the renewed ones' here
        outbox_add(kind=OutboxKind.NOTIFY_EMAIL, item=rfi, payload={"kind": kind, "rfi_id": str(rfi.pk)})
    return sorted(set(new) | {user_id for _, user_id in renewed})


# --- results -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RfiReplyContent:
    reply: RfiReply
    body: str


@dataclass(frozen=True)
class RfiContent:
    """A request opened for one viewer, with its thread in order. ``direction`` is from the viewer's agency."""

    rfi: Rfi
    subject: str
    question: str
    direction: str
    replies: list[RfiReplyContent]
    # For a request opened from a hit: the item the hit named, for the holder agency's eyes only (None for anyone
    # else, the asker included).
    hit_item_id: uuid.UUID | None = None

    @property
    def hit_reference(self) -> str | None:
        return self.rfi.hit.reference if self.rfi.hit_id else None


@dataclass(frozen=True)
class RfiSummary:
    """A line of a list. ``subject`` is None when it did not open (that failure is recorded)."""

    rfi: Rfi
    subject: str | None
    direction: str


def hit_item_for(rfi: Rfi, membership: Membership | None) -> uuid.UUID | None:
    """The item a request's hit named, for a member of the agency holding it (the asked agency); else None."""
    if not rfi.hit_id or membership is None or membership.agency_id != rfi.target_agency_id:
        return None
    return rfi.hit.item_id if rfi.hit.holder_agency_id == membership.agency_id else None


def _direction(rfi: Rfi, membership: Membership | None) -> str:
    return SENT if membership is not None and membership.agency_id == rfi.requester_agency_id else RECEIVED


# --- validation ----------------------------------------------------------------------------------------------------


def _as_id(value: object) -> int | None:
    if isinstance(value, Agency | Office):
        return value.pk
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if 0 < number <= _MAX_ID else None


def hit_received(membership: Membership, reference: object) -> Hit:
    """A hit the member's agency received, by its reference; NotFound (one answer for unknown and foreign) else."""
    text = str(reference or "").strip().upper()
    hit = (
        Hit.objects.filter(reference=text, asker_agency_id=membership.agency_id).select_related("holder_agency").first()
        if text
        else None
    )
    if hit is None:
        raise NotFound(HIT_NOT_FOUND_MESSAGE)
    return hit


def _check_target(
    problems: Problems, target_agency: object, target_office: object, own_country: str, hit: Hit | None = None
) -> tuple[Agency | None, Office | None]:
    if hit is not None and target_agency in (None, ""):
        target_agency = hit.holder_agency_id
    if target_agency in (None, ""):
        problems.add("target_agency", "Required: the agency asked, or a hit reference your agency received.")
        return None, None
    agency_id = _as_id(target_agency)
    agency = Agency.objects.filter(pk=agency_id, is_active=True).first() if agency_id else None
    if agency is None:
        problems.add("target_agency", f"No active member agency with id {target_agency}.")
        return None, None
    if hit is not None:
        # The holder is the only agency that can tell which item the hit named; it may be of the asker's own country
        # (an item not released to the asker's agency), where forwarding is no answer: the asker cannot read it.
        if agency.pk != hit.holder_agency_id:
            problems.add(
                "target_agency",
                f"A request from hit {hit.reference} goes to the agency holding the item, "
                f"{hit.holder_agency.short_name} ({hit.holder_country}).",
            )
    elif agency.country_id == own_country:
        problems.add(
            "target_agency",
            f"A request for information goes to another country's agency; {agency.short_name} is of your own "
            f"country ({own_country}). Within your country, forward the item instead.",
        )
    office = None
    if target_office not in (None, ""):
        office_id = _as_id(target_office)
        office = Office.objects.filter(pk=office_id, agency=agency, is_active=True).first() if office_id else None
        if office is None:
            problems.add("target_office", f"Office {target_office} is not an active office of {agency.short_name}.")
    return agency, office


def _check_item_readable(problems: Problems, actor: Actor, item_id: object) -> Item | None:
    try:
        wanted = parse_item_id(item_id)
    except NotFound:
        wanted = None
    item = items_visible_to(actor).filter(pk=wanted).first() if wanted else None
    if item is None:
        problems.add("item", "No such item, or not one you may read.")
    return item


def _check_due_at(problems: Problems, due_at: Any) -> None:
    now = timezone.now()
    latest = now + timedelta(days=settings.ISN_RFI_MAX_DUE_DAYS)
    if not isinstance(due_at, datetime) or timezone.is_naive(due_at):
        problems.add("due_at", "A date and time with a time zone is required.")
    elif not now < due_at <= latest:
        problems.add("due_at", f"Must be in the future and no later than {latest.isoformat(timespec='minutes')}.")


def _answer_time(priority: str) -> timedelta:
    return timedelta(seconds=settings.ISN_RFI_DUE_SECONDS[priority])


def _escalation_interval(priority: str) -> timedelta:
    """From the reminder to the escalation: the configured interval, else the priority's answer time again."""
    configured = settings.ISN_RFI_ESCALATE_AFTER_SECONDS
    return timedelta(seconds=configured) if configured else _answer_time(priority)


def _check_attached_item(
    problems: Problems, actor: Actor, membership: Membership, rfi: Rfi, side: str, item_id: object
) -> Item | None:
    """An item attached to a reply: posted by the replier's agency, active, and already released to the other side."""
    try:
        wanted = parse_item_id(item_id)
    except NotFound:
        wanted = None
    item = (
        items_visible_to(actor).filter(pk=wanted, originator_agency_id=membership.agency_id).first() if wanted else None
    )
    if item is None:
        problems.add("item", "No such item of your agency: a reply can attach only an item your agency posted.")
        return None
    if item.status != ItemStatus.ACTIVE:
        problems.add("item", f"This item is {item.status}; only an active item can be attached.")
        return item
    other = rfi.target_agency if side == SENT else rfi.requester_agency
    released = ItemCountryGrant.objects.filter(item=item, country_id=other.country_id).exists()
    restricted = set(
        ItemAgencyGrant.objects.filter(item=item, country_id=other.country_id).values_list("agency_id", flat=True)
    )
    if not released or (restricted and other.pk not in restricted):
        problems.add(
            "item",
            f"This item is not released to {other.short_name} ({other.country_id}), so they could not open it. "
            f"Release it to them first (post it with {other.country_id} in its countries), then attach it.",
        )
    return item


# --- services ------------------------------------------------------------------------------------------------------


@transaction.atomic
def rfi_create(
    *,
    actor: Actor,
    target_agency: object = None,
    target_office: object = None,
    item_id: object = None,
    hit_reference: object = None,
    subject: str,
    question: str,
    priority: str = Priority.ROUTINE,
    due_at: datetime | None = None,
) -> RfiContent:
    """Ask another country's agency (optionally one of its offices) a question, sealed for the two countries.

    With ``hit_reference`` (a hit the actor's agency received) the request goes to the agency holding the item hit
    (``target_agency`` may be left out) and carries the hit, so the holder, and only the holder, sees which of its
    items is meant. A reference unknown or received by another agency is NotFound, and nothing is written.

    Long because the request, its two wrapped keys, the notices and the event are one act, written in one transaction.
    """
    membership = content_membership(actor)
    if membership is None:
        raise PermissionDenied("Only officers of a member agency may send requests for information.")
    own_country = membership.agency.country_id
    hit = hit_received(membership, hit_reference) if hit_reference not in (None, "") else None
    problems = Problems()
    agency, office = _check_target(problems, target_agency, target_office, own_country, hit)
    item = _check_item_readable(problems, actor, item_id) if item_id not in (None, "") else None
    subject = check_text(problems, "subject", subject, limit=RFI_SUBJECT_MAX_LENGTH, multiline=False)
    question = check_text(problems, "question", question, limit=RFI_TEXT_MAX_LENGTH, multiline=True)
    check_choice(problems, "priority", priority, Priority.values)
    if due_at is not None:
        _check_due_at(problems, due_at)
    problems.raise_if_any("The request for information was not sent.")
    if agency is None:  # raise_if_any has refused a missing agency; this keeps the type checker honest
        raise NotFound("No such agency.")

    rfi_id = uuid.uuid4()
    data_key = data_key_new()
    now = timezone.now()
    countries = [own_country, agency.country_id]
    keks = primary_keks(countries)
    rfi = Rfi.objects.create(
        id=rfi_id,
        requester_agency=membership.agency,
        requester_office=membership.office,
        requester_user=actor,
        target_agency=agency,
        target_office=office,
        requester_country=own_country,
        target_country=agency.country_id,
        item=item,
        hit=hit,
        priority=priority,
        subject_sealed=sealed(data_key, subject, aad=rfi_text_aad(rfi_id, "subject")),
        question_sealed=sealed(data_key, question, aad=rfi_text_aad(rfi_id, "question")),
        due_at=due_at or now + _answer_time(priority),
        created_at=now,
    )
    RfiKey.objects.bulk_create(rfi_keys_wrapped(rfi_id, data_key, keks))
    feed_tell_rfi(ChangeKind.RFI_OPENED, rfi)
    notified = _notify(rfi, NotificationKind.RFI_RECEIVED, _asked_people(rfi))
    record(
        action="messaging.rfi.create",
        actor=actor,
        target=rfi,
        target_country=rfi.target_country,
        details={
            "target_agency_id": agency.pk,
            "target_office_id": rfi.target_office_id,
            "item_id": str(item.pk) if item is not None else None,
            "hit_id": hit.pk if hit is not None else None,
            "priority": priority,
            "due_at": rfi.due_at.isoformat(),
            "notified_users": notified,
        },
    )
    return RfiContent(rfi=rfi, subject=subject, question=question, direction=SENT, replies=[])


@fails_closed
@transaction.atomic
def rfi_read(*, actor: Actor, rfi_id: object) -> RfiContent:
    """Open a request and its thread with the viewer's own country's key; recorded as ``messaging.rfi.read``."""
    rfi = rfi_get(actor, rfi_id=rfi_id)
    membership = content_membership(actor)
    if membership is None:  # rfi_get has refused such a viewer already; this keeps the type checker honest
        raise NotFound(NOT_FOUND_MESSAGE)
    country = membership.agency.country_id
    data_key = rfi_data_key(rfi, country)
    subject = _open_text(data_key, rfi, "subject", country)
    question = _open_text(data_key, rfi, "question", country)
    replies = [
        RfiReplyContent(reply=reply, body=_open_reply(data_key, rfi, reply, country))
        for reply in RfiReply.objects.filter(rfi=rfi).select_related("author_agency").order_by("created_at", "id")
    ]
    Notification.objects.filter(user_id=actor.pk, rfi=rfi, read_at__isnull=True).update(read_at=timezone.now())
    record(
        action="messaging.rfi.read",
        actor=actor,
        target=rfi,
        target_country=rfi.other_country(country),
        details={"replies": len(replies), "status": rfi.status},
    )
    return RfiContent(
        rfi=rfi,
        subject=subject,
        question=question,
        direction=_direction(rfi, membership),
        replies=replies,
        hit_item_id=hit_item_for(rfi, membership),
    )


@transaction.atomic
def rfi_list(*, actor: Actor, rfis: Sequence[Rfi]) -> list[RfiSummary]:
    """One page of requests with subjects opened; one ``messaging.rfi.list`` event names every request returned.

    ``rfis`` come from ``rfis_for_listing(actor)``. A subject that does not open is returned as None and its failure
    recorded; the rest of the page is still served.
    """
    membership = content_membership(actor)
    if membership is None:
        raise PermissionDenied("Only officers of a member agency may list requests for information.")
    country = membership.agency.country_id
    summaries = []
    for rfi in rfis:
        subject: str | None
        try:
            wrapped = next(iter(rfi.viewer_keys), None)  # type: ignore[attr-defined]
            if wrapped is None:
                raise Unreadable.of_rfi(rfi, country, "no_key")
            subject = _open_text(rfi_data_key(rfi, country, wrapped), rfi, "subject", country)
        except Unreadable as failure:
            decrypt_failure_record(actor, failure, during="rfi_list")
            subject = None
        summaries.append(RfiSummary(rfi=rfi, subject=subject, direction=_direction(rfi, membership)))
    record(
        action="messaging.rfi.list",
        actor=actor,
        target_type=RFI,
        details={"rfi_ids": [str(rfi.pk) for rfi in rfis], "count": len(rfis)},
    )
    return summaries


@fails_closed
@transaction.atomic
def rfi_reply(*, actor: Actor, rfi_id: object, body: str, item_id: object = None) -> RfiReplyContent:
    """Add a message to the thread. The asked side's reply answers an open request; the asker's reopens an answered
    one (with a fresh due time); a closed request takes no more replies.

    Long because the reply, the state change it causes, the notices and the event are one act, written in one
    transaction.
    """
    rfi = rfi_get(actor, rfi_id=rfi_id, for_update=True)
    membership = content_membership(actor)
    side = _side(rfi, membership)
    if membership is None or side is None:
        raise PermissionDenied("Only the asking and the asked agency write in a request's thread.")
    if rfi.status == RfiStatus.CLOSED:
        raise Conflict(
            "This request for information was closed by the asking agency and takes no more replies; "
            "send a new request if there is more to ask."
        )
    problems = Problems()
    body = check_text(problems, "body", body, limit=RFI_TEXT_MAX_LENGTH, multiline=True)
    item = None
    if item_id not in (None, ""):
        item = _check_attached_item(problems, actor, membership, rfi, side, item_id)
    problems.raise_if_any("The reply was not stored.")

    country = membership.agency.country_id
    data_key = rfi_data_key(rfi, country)
    now = timezone.now()
    reply = RfiReply.objects.create(
        rfi=rfi, author_agency_id=membership.agency_id, author_user=actor, body_sealed=b"", item=item, created_at=now
    )
    # Sealed once the reply has its id: the associated data binds the body to this reply and no other.
    reply.body_sealed = sealed(data_key, body, aad=rfi_reply_aad(rfi.pk, reply.pk))
    reply.save(update_fields=["body_sealed"])
    reply.author_agency = membership.agency

    status_before = rfi.status
    if side == RECEIVED and rfi.status == RfiStatus.OPEN:
        rfi.status = RfiStatus.ANSWERED
        rfi.answered_at = now
    elif side == SENT and rfi.status == RfiStatus.ANSWERED:
        # A follow-up question: the asked side gets the priority's answer time again, and the reminders start over.
        rfi.status = RfiStatus.OPEN
        rfi.due_at = max(rfi.due_at, now + _answer_time(rfi.priority))
        rfi.escalation_level = 0
        rfi.escalated_at = None
    rfi.save(update_fields=["status", "answered_at", "due_at", "escalation_level", "escalated_at", "updated_at"])
    feed_tell_rfi(ChangeKind.RFI_REPLIED, rfi)

    other = RECEIVED if side == SENT else SENT
    notified = _notify(rfi, NotificationKind.RFI_REPLIED, _side_people(rfi, other) - {actor.pk})
    record(
        action="messaging.rfi.reply",
        actor=actor,
        target=rfi,
        target_country=rfi.other_country(country),
        details={
            "reply_id": reply.pk,
            "side": side,
            "status_before": status_before,
            "status": rfi.status,
            "item_id": str(item.pk) if item is not None else None,
            "notified_users": notified,
        },
    )
    return RfiReplyContent(reply=reply, body=body)


@transaction.atomic
def rfi_close(*, actor: Actor, rfi_id: object) -> Rfi:
    """The asking agency closes its request: the thread takes no more replies and the asked side is told."""
    rfi = rfi_get(actor, rfi_id=rfi_id, for_update=True)
    membership = content_membership(actor)
    if _side(rfi, membership) != SENT:
        raise PermissionDenied("Only the asking agency may close a request for information.")
    if rfi.status == RfiStatus.CLOSED:
        raise Conflict("This request for information is already closed.")
    status_before = rfi.status
    rfi.status = RfiStatus.CLOSED
    rfi.closed_at = timezone.now()
    rfi.save(update_fields=["status", "closed_at", "updated_at"])
    feed_tell_rfi(ChangeKind.RFI_CLOSED, rfi)
    notified = _notify(rfi, NotificationKind.RFI_CLOSED, _side_people(rfi, RECEIVED))
    record(
        action="messaging.rfi.close",
        actor=actor,
        target=rfi,
        target_country=rfi.target_country,
        details={"status_before": status_before, "notified_users": notified},
    )
    return rfi


# --- due times: reminder, then escalation --------------------------------------------------------------------------


def _due(now: datetime) -> Q:
    due = Q(escalation_level=0, due_at__lte=now)
    for priority in Priority.values:
        due |= Q(escalation_level=REMINDED, priority=priority, due_at__lte=now - _escalation_interval(priority))
    return due


def rfis_escalate_due(*, now: datetime | None = None) -> int:
    """Remind, then escalate, every open request past its due time (one transaction each); returns the steps taken."""
    now = now or timezone.now()
    pending = list(
        Rfi.objects.filter(status=RfiStatus.OPEN)
        .filter(_due(now))
        .order_by("due_at", "id")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    return sweep(pending, lambda pk: _rfi_escalate(rfi_id=pk, now=now))


@transaction.atomic
def _rfi_escalate(*, rfi_id: uuid.UUID, now: datetime) -> bool:
    # skip_locked: a request being answered right now is not escalated under its feet; the next sweep looks again.
    rfi = Rfi.objects.select_for_update(skip_locked=True).filter(pk=rfi_id, status=RfiStatus.OPEN).first()
    if rfi is None:
        return False
    level = next_level(
        rfi.escalation_level,
        now=now,
        remind_at=rfi.due_at,
        escalate_at=rfi.due_at + _escalation_interval(rfi.priority),
    )
    if level == REMINDED:
        kind, action = NotificationKind.RFI_REMINDER, "messaging.rfi.remind"
        people = _side_people(rfi, RECEIVED)
    elif level == ESCALATED:
        kind, action = NotificationKind.RFI_ESCALATED, "messaging.rfi.escalate"
        supervisors = Q(agency_id=rfi.target_agency_id, role=Role.SUPERVISOR)
        focal_points = Q(agency__country_id=rfi.target_country, role=Role.NATIONAL_FOCAL_POINT)
        people = set(
            Membership.objects.filter(supervisors | focal_points)
            .filter(is_active=True, user__is_active=True, agency__is_active=True)
            .values_list("user_id", flat=True)
        )
    else:
        return False
    rfi.escalation_level = level
    rfi.escalated_at = now
    rfi.save(update_fields=["escalation_level", "escalated_at", "updated_at"])
    notified = _notify(rfi, kind, people)
    record(
        action=action,
        actor=None,
        target=rfi,
        target_country=rfi.target_country,
        details={
            "level": level,
            "target_agency_id": rfi.target_agency_id,
            "due_at": rfi.due_at.isoformat(),
            "notified_users": notified,
        },
    )
    return True
