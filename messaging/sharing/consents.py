"""Consent requests: the third-party rule.

Another country gets an item only through a consent request that a supervisor or national focal point of the
originating agency approves (``consent_grant``): only then is the item's data key wrapped for that country and the
item routed there. Justifications and decline reasons are sealed under the item's data key. Every act and read is an
audit event filed under the other side's country (``target_country``), the actor's own country being on the event
too, so both countries' national auditors see it. Unanswered requests remind the deciders, then escalate.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from agencies.models import Agency, Country, Membership, Role
from audit.services import record
from isn.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from messaging.core.outbox import outbox_add, outbox_claim, outbox_done
from messaging.core.people import (
    content_membership,
    content_people,
)
from messaging.core.release import release_of
from messaging.core.sealing import (
    consent_text_aad,
    fails_closed,
    item_data_key,
    item_data_key_if_held,
    item_key_wrap,
    item_text_open,
    sealed,
)
from messaging.core.sweep import (
    LAST_LEVEL,
    REMINDED,
    SWEEP_BATCH,
    next_level,
    sweep,
)
from messaging.core.validation import pk_of, text_checked
from messaging.delivery.deliveries import deliver
from messaging.delivery.feed import audience_of, feed_follow, feed_tell_consent
from messaging.delivery.notifications import notify_people
from messaging.delivery.routing import WEBHOOK_ROUTED, RouteResult, notify, people_for, queue_webhooks, recipients_for
from messaging.models import (
    CONSENT_TEXT_MAX_LENGTH,
    ChangeKind,
    ConsentRequest,
    ConsentStatus,
    DeliveryReason,
    Item,
    ItemAgencyGrant,
    ItemCountryGrant,
    ItemStatus,
    NotificationKind,
    OutboxKind,
    Priority,
)
from messaging.selectors.items import is_originator, item_get, released_countries
from messaging.selectors.sharing import CONSENT_NOT_FOUND, consent_get

if TYPE_CHECKING:
    from typing import TypeAlias

    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    Actor: TypeAlias = AbstractBaseUser
    Viewer: TypeAlias = AbstractBaseUser | AnonymousUser


# Who decides on a consent request for the originating agency.
DECIDING_ROLES = (Role.SUPERVISOR, Role.NATIONAL_FOCAL_POINT)


@dataclass(frozen=True)
class ConsentView:
    """A consent request for one of its sides; the texts are None unless opened (with the viewer's country's key)."""

    consent: ConsentRequest
    justification: str | None = None
    decline_reason: str | None = None


def _other_side(consent: ConsentRequest, actor_country: str) -> str:
    """The country an act on a consent request is filed under: the side the actor is not on (the actor's own
    country is on the event already), so both sides' national auditors see it."""
    originator_country = consent.item.originator_country
    return consent.requester_agency.country_id if actor_country == originator_country else originator_country


def _due_at(item: Item, now: datetime) -> datetime:
    if item.priority == Priority.FLASH:
        return now + timedelta(minutes=settings.ISN_CONSENT_FLASH_DUE_MINUTES)
    return now + timedelta(hours=settings.ISN_CONSENT_DUE_HOURS)


def _deciders(agency_id: int, roles: Iterable[str] = (Role.SUPERVISOR,)) -> list[int]:
    return list(content_people().filter(agency_id=agency_id, role__in=list(roles)).values_list("user_id", flat=True))


def _supervisors_of(agency_id: int, *, requester_id: int | None) -> list[int]:
    """Who is asked to decide: the agency's supervisors, or its national focal points when it has none; never the
    person who asked (four eyes), so when they are the only supervisor the focal points are asked."""
    supervisors = [pk for pk in _deciders(agency_id) if pk != requester_id]
    return supervisors or [pk for pk in _deciders(agency_id, (Role.NATIONAL_FOCAL_POINT,)) if pk != requester_id]


def _requester(consent: ConsentRequest) -> list[int]:
    return list(content_people().filter(user_id=consent.requester_user_id).values_list("user_id", flat=True))


def known_holders(viewer: Actor, item: Item, membership: Membership) -> set[str]:
    """The countries the viewer knows hold the item: their own and the originator's, and for the originating agency
    the whole release. A request for any other country is taken whether or not it is released, so that asking
    tells a recipient nothing about the release."""
    countries = {membership.agency.country_id, item.originator_country}
    if is_originator(viewer, item):
        countries |= released_countries(item)
    return countries


@fails_closed
@transaction.atomic
def consent_request_create(
    *, actor: Actor, item_id: object, target_country: str, target_agency: Any = None, justification: str
) -> ConsentView:
    """Ask the originating agency's consent to share an item with a country outside its release (optionally one
    agency of it); its supervisors are told. Nothing is shared until a supervisor approves.

    Long because each refusal says why in words an officer can act on, before anything is written.
    """
    membership = content_membership(actor)
    if membership is None:
        raise PermissionDenied("Only officers of a member agency may ask for consent.")
    item = item_get(actor, item_id=item_id, for_update=True)
    if item.status != ItemStatus.ACTIVE:
        raise Conflict(f"This item is {item.status}; it can no longer be shared.")
    code = str(target_country or "").strip().upper()
    country = Country.objects.filter(code=code).first()
    if country is None:
        raise InvalidInput(
            "Not a member country of the network.", extra={"fields": {"target_country": ["Unknown country."]}}
        )
    agency = None
    if target_agency is not None:
        agency = Agency.objects.filter(pk=pk_of(target_agency), country=country, is_active=True).first()
        if agency is None:
            raise InvalidInput(
                f"No active member agency with that id in {code}.",
                extra={"fields": {"target_agency": ["Not an active agency of the target country."]}},
            )
    justification = text_checked(
        "justification", justification, limit=CONSENT_TEXT_MAX_LENGTH, summary="The consent request was not stored."
    )
    if code in known_holders(actor, item, membership):
        raise Conflict(f"This item is already released to {code}.")
    # Only the asking agency's own requests count: another agency's would not be the caller's to know of.
    if ConsentRequest.objects.filter(
        item=item, target_country=country, requester_agency=membership.agency, status=ConsentStatus.PENDING
    ).exists():
        raise Conflict(f"Your agency's request to share this item with {code} is already waiting for a decision.")
    now = timezone.now()
    consent_id = uuid.uuid4()
    data_key = item_data_key(item, membership.agency.country_id)
    consent = ConsentRequest.objects.create(
        id=consent_id,
        item=item,
        requester_agency=membership.agency,
        requester_user=actor,
        target_country=country,
        target_agency=agency,
        justification_sealed=sealed(
            data_key,
            justification,
            aad=consent_text_aad(item.pk, consent_id, "justification"),
        ),
        due_at=_due_at(item, now),
        created_at=now,
    )
    feed_tell_consent(ChangeKind.CONSENT_REQUESTED, consent)
    notified = notify_people(
        kind=NotificationKind.CONSENT_REQUESTED,
        user_ids=_supervisors_of(item.originator_agency_id, requester_id=actor.pk),
        consent=consent,
    )
    record(
        action="messaging.consent.request",
        actor=actor,
        target=consent,
        target_country=_other_side(consent, membership.agency.country_id),
        details={
            "item_id": str(item.pk),
            "target_country": code,
            "target_agency": agency.pk if agency else None,
            "due_at": consent.due_at.isoformat(),
            "notified_users": notified,
        },
    )
    return ConsentView(consent=consent, justification=justification)


ONLY_DECIDERS = "Only a supervisor or national focal point of the originating agency may decide on a consent request."
FOUR_EYES = (
    "You asked for it, so you cannot decide on it (four eyes): another supervisor or national focal point of the "
    "originating agency decides. You may cancel it."
)


def may_decide(membership: Membership | None, consent: ConsentRequest) -> bool:
    """Whether this member decides on the request: a supervisor or national focal point of the originating agency,
    and not the person who asked for it (four eyes)."""
    return (
        membership is not None
        and membership.agency_id == consent.item.originator_agency_id
        and membership.role in DECIDING_ROLES
        and membership.user_id != consent.requester_user_id
    )


def decision_refusal(membership: Membership | None, consent: ConsentRequest) -> str:
    """Why this member may not decide on the request, in words they can act on ("" when they may)."""
    if may_decide(membership, consent):
        return ""
    if membership is not None and membership.user_id == consent.requester_user_id:
        return FOUR_EYES
    return ONLY_DECIDERS


def _decider(actor: Actor, consent: ConsentRequest) -> Membership:
    """The actor when they may decide for the originating agency (a supervisor or national focal point of it who
    did not ask for the request themselves)."""
    membership = content_membership(actor)
    refusal = decision_refusal(membership, consent)
    if refusal or membership is None:
        raise PermissionDenied(refusal or ONLY_DECIDERS)
    return membership


def _pending(consent: ConsentRequest, act: str) -> None:
    if consent.status != ConsentStatus.PENDING:
        raise Conflict(f"This consent request is {consent.status}; it can no longer be {act}.")


@fails_closed
@transaction.atomic
def consent_grant(*, actor: Actor, consent_id: object) -> ConsentView:
    """Approve a consent request: only now is the item's data key wrapped for the target country, its grant added
    (and the named agency's), and the item routed there from the outbox; the requester is told."""
    consent = consent_get(actor, consent_id=consent_id)
    membership = _decider(actor, consent)
    # The item first, then the request: the order a narrowing locks them in (item_change, then its reach).
    item = Item.objects.select_for_update().get(pk=consent.item_id)
    consent = consent_get(actor, consent_id=consent.pk, for_update=True)
    _pending(consent, "approved")
    if item.status != ItemStatus.ACTIVE:
        raise Conflict(f"This item is {item.status}; it can no longer be shared.")
    country = consent.target_country_id
    # Asked by someone who could not know the country holds it already: approving adds nothing, and the release
    # stays the originator's own (a cut-off of this request takes nothing from it).
    already_released = ItemCountryGrant.objects.filter(item=item, country_id=country).exists()
    before = audience_of(item)
    if not already_released:
        data_key = item_data_key(item, item.originator_country)
        item_key_wrap(item, data_key, country)
        ItemCountryGrant.objects.create(item=item, country_id=country, consent=consent)
        if consent.target_agency_id is not None:
            ItemAgencyGrant.objects.create(
                item=item, agency_id=consent.target_agency_id, country_id=country, consent=consent
            )
    consent.status = ConsentStatus.APPROVED
    consent.decided_by = actor
    consent.decided_at = timezone.now()
    consent.save(update_fields=["status", "decided_by", "decided_at"])
    feed_follow(item, before)
    feed_tell_consent(ChangeKind.CONSENT_GRANTED, consent)
    if not already_released:
        outbox_add(
            kind=OutboxKind.CONSENT_DELIVER,
            item=item,
            payload={"item_id": str(item.pk), "consent_id": str(consent.pk)},
        )
    notified = notify_people(kind=NotificationKind.CONSENT_APPROVED, user_ids=_requester(consent), consent=consent)
    record(
        action="messaging.consent.approve",
        actor=actor,
        target=consent,
        target_country=_other_side(consent, membership.agency.country_id),
        details={
            "item_id": str(item.pk),
            "target_country": country,
            "target_agency": consent.target_agency_id,
            "already_released": already_released,
            "notified_users": notified,
        },
    )
    return ConsentView(consent=consent)


@fails_closed
@transaction.atomic
def consent_decline(*, actor: Actor, consent_id: object, reason: str) -> ConsentView:
    """Decline a consent request with a reason (sealed; only the two sides open it); the requester is told."""
    consent = consent_get(actor, consent_id=consent_id, for_update=True)
    membership = _decider(actor, consent)
    _pending(consent, "declined")
    reason = text_checked(
        "reason", reason, limit=CONSENT_TEXT_MAX_LENGTH, summary="The consent request was not declined."
    )
    item = consent.item
    data_key = item_data_key(item, membership.agency.country_id)
    consent.decline_reason_sealed = sealed(
        data_key,
        reason,
        aad=consent_text_aad(item.pk, consent.pk, "decline_reason"),
    )
    consent.status = ConsentStatus.DECLINED
    consent.decided_by = actor
    consent.decided_at = timezone.now()
    consent.save(update_fields=["decline_reason_sealed", "status", "decided_by", "decided_at"])
    feed_tell_consent(ChangeKind.CONSENT_DECLINED, consent)
    notified = notify_people(kind=NotificationKind.CONSENT_DECLINED, user_ids=_requester(consent), consent=consent)
    record(
        action="messaging.consent.decline",
        actor=actor,
        target=consent,
        target_country=_other_side(consent, membership.agency.country_id),
        details={"item_id": str(item.pk), "target_country": consent.target_country_id, "notified_users": notified},
    )
    return ConsentView(consent=consent, decline_reason=reason)


@transaction.atomic
def consent_cancel(*, actor: Actor, consent_id: object) -> ConsentView:
    """The requesting agency withdraws its request while it is pending."""
    consent = consent_get(actor, consent_id=consent_id, for_update=True)
    membership = content_membership(actor)
    if membership is None or membership.agency_id != consent.requester_agency_id:
        raise PermissionDenied("Only the agency that asked may cancel a consent request.")
    _pending(consent, "cancelled")
    consent.status = ConsentStatus.CANCELLED
    consent.decided_by = actor
    consent.decided_at = timezone.now()
    consent.save(update_fields=["status", "decided_by", "decided_at"])
    feed_tell_consent(ChangeKind.CONSENT_CANCELLED, consent)
    record(
        action="messaging.consent.cancel",
        actor=actor,
        target=consent,
        target_country=_other_side(consent, membership.agency.country_id),
        details={"item_id": str(consent.item_id), "target_country": consent.target_country_id},
    )
    return ConsentView(consent=consent)


@fails_closed
@transaction.atomic
def consent_read(*, actor: Actor, consent_id: object) -> ConsentView:
    """One consent request with its justification and decline reason opened with the viewer's own country's key
    (None once that country no longer holds the item); recorded as ``messaging.consent.read``."""
    consent = consent_get(actor, consent_id=consent_id)
    membership = content_membership(actor)
    if membership is None:  # consent_get found it, so this cannot happen; refuse rather than assume
        raise NotFound(CONSENT_NOT_FOUND)
    country = membership.agency.country_id
    item = consent.item
    data_key = item_data_key_if_held(item, country)
    texts: dict[str, str | None] = {"justification": None, "decline_reason": None}
    if data_key is not None:
        for field_name in texts:
            sealed = getattr(consent, f"{field_name}_sealed")
            if sealed is not None:
                texts[field_name] = item_text_open(
                    data_key,
                    item,
                    country,
                    sealed,
                    aad=consent_text_aad(item.pk, consent.pk, field_name),
                    what=f"consent_{field_name}",
                )
    record(
        action="messaging.consent.read",
        actor=actor,
        target=consent,
        target_country=_other_side(consent, country),
        details={"item_id": str(item.pk), "opened": data_key is not None},
    )
    return ConsentView(consent=consent, **texts)


@transaction.atomic
def consent_list(*, actor: Actor, consents: Sequence[ConsentRequest]) -> list[ConsentView]:
    """One page of the viewer's side's consent requests (metadata only); one event names every request listed."""
    if content_membership(actor) is None:
        raise PermissionDenied("Only officers of a member agency may list consent requests.")
    record(
        action="messaging.consent.list",
        actor=actor,
        target_type=ConsentRequest._meta.label_lower,
        details={"consent_ids": [str(c.pk) for c in consents], "count": len(consents)},
    )
    return [ConsentView(consent=consent) for consent in consents]


@transaction.atomic
def consent_deliver(*, outbox_id: int) -> RouteResult | None:
    """Route an approved consent's item to its new recipients (the ``consent.deliver`` outbox row): the routing rule
    inside the consented country only, each delivery marked CONSENTED. None when the row was already processed."""
    message = outbox_claim(outbox_id, OutboxKind.CONSENT_DELIVER)
    if message is None:
        return None
    consent = ConsentRequest.objects.select_related("item__originator_office").get(pk=message.payload["consent_id"])
    item = consent.item
    if consent.status != ConsentStatus.APPROVED or item.status != ItemStatus.ACTIVE:  # cut off since
        outbox_done(message)
        return RouteResult(deliveries=0, agencies=0, notified=0)
    country = consent.target_country_id
    in_country = set(Agency.objects.filter(country_id=country).values_list("pk", flat=True))
    recipients = [
        replace(recipient, reason=DeliveryReason.CONSENTED)
        for recipient in recipients_for(item)
        if recipient.agency_id in in_country
    ]
    delivered = deliver(item, recipients)
    people = people_for(delivered)
    notified = notify(item, NotificationKind.ROUTED, (pk for users in people.values() for pk in users))
    agencies = sorted({r.agency_id for r in delivered})
    queue_webhooks(item, agencies, WEBHOOK_ROUTED)
    record(
        action="messaging.consent.deliver",
        actor=None,
        target=consent,
        # Filed under the country the item now reaches, so its auditors see it arrive.
        target_country=country,
        details={
            "outbox_id": outbox_id,
            "item_id": str(item.pk),
            "agencies": agencies,
            "deliveries": len(delivered),
            "notified_users": notified,
        },
    )
    outbox_done(message)
    return RouteResult(deliveries=len(delivered), agencies=len(agencies), notified=len(notified))


def consents_escalate_due(*, now: datetime | None = None) -> int:
    """Remind the originating agency's supervisors of every consent request pending at its due time (level 1); as
    long again later, escalate it to the originator country's national focal points (level 2). Returns the steps."""
    now = now or timezone.now()
    due = (
        ConsentRequest.objects.filter(status=ConsentStatus.PENDING, escalation_level__lt=LAST_LEVEL, due_at__lte=now)
        .order_by("due_at", "pk")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    return sweep(due, lambda pk: _consent_escalate(consent_id=pk, now=now))


@transaction.atomic
def _consent_escalate(*, consent_id: uuid.UUID, now: datetime) -> bool:
    # skip_locked: a request being decided right now is not reminded under its feet; the next sweep looks again.
    consent = (
        ConsentRequest.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("item", "requester_agency")
        .filter(pk=consent_id, status=ConsentStatus.PENDING)
        .first()
    )
    if consent is None:
        return False
    period = consent.due_at - consent.created_at  # as long again after the reminder
    level = next_level(consent.escalation_level, now=now, remind_at=consent.due_at, escalate_at=consent.due_at + period)
    if level is None:
        return False
    item = consent.item
    if level == REMINDED:
        kind, action = NotificationKind.CONSENT_REMINDER, "messaging.consent.remind"
        users = _supervisors_of(item.originator_agency_id, requester_id=consent.requester_user_id)
    else:
        kind, action = NotificationKind.CONSENT_ESCALATED, "messaging.consent.escalate"
        release = release_of(item)
        focal_points = content_people().filter(
            agency__country_id=item.originator_country, role=Role.NATIONAL_FOCAL_POINT
        )
        # Only those who may see the item itself: a focal point of an agency the release leaves out is not told;
        # nor the one who asked (four eyes).
        users = [
            user_id
            for user_id, agency_id in focal_points.values_list("user_id", "agency_id")
            if user_id != consent.requester_user_id
            and (
                agency_id == item.originator_agency_id
                or release.person_may_see(user_id, agency_id, item.originator_country)
            )
        ]
    notified = notify_people(kind=kind, user_ids=users, consent=consent)
    consent.escalation_level = level
    consent.escalated_at = now
    consent.save(update_fields=["escalation_level", "escalated_at"])
    record(
        action=action,
        actor=None,
        target=consent,
        target_country=item.originator_country,
        details={"item_id": str(item.pk), "level": level, "notified_users": notified},
    )
    return True
