"""Forwarding inside one's own country, and consent requests (the third-party rule): services and selectors.

A holder of an item may pass it on inside their own country as its handling code allows (``item_forward``): never
TLP:RED, TLP:AMBER+STRICT only to offices of their own agency, and AMBER, GREEN or CLEAR to any active agency or
office of their country. Another country gets an item only through a consent request that a supervisor or national
focal point of the originating agency approves (``consent_grant``): only then is the item's data key wrapped for that
country and the item routed there. Reasons, justifications and decline reasons are sealed under the item's data key.

A consent request is seen by its two sides only, the requesting agency and the originating agency; anyone else gets
the answer an id that does not exist gets. Every act and read is an audit event filed under the other side's country
(``target_country``), the actor's own country being on the event too, so both countries' national auditors see it.

Forwards and consents follow the originator's release: narrowing, withdrawal and expiry cut them off
(``messaging.services._follow_release``), and the ``item.revoke`` outbox row tells their holders.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from agencies.models import Agency, Country, Membership, Office, OfficeKind, Role
from audit.services import record
from isn.crypto import seal
from isn.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from messaging.models import (
    CONSENT_TEXT_MAX_LENGTH,
    FORWARD_REASON_MAX_LENGTH,
    ConsentRequest,
    ConsentStatus,
    Delivery,
    DeliveryReason,
    Forward,
    HandlingCode,
    Item,
    ItemAgencyGrant,
    ItemCountryGrant,
    ItemStatus,
    NotificationKind,
    OutboxKind,
    Priority,
)
from messaging.notifications import notify_people
from messaging.outbox import outbox_add, outbox_claim, outbox_done
from messaging.routing import (
    NO_CONTENT_ROLES,
    WEBHOOK_ROUTED,
    Recipient,
    RouteResult,
    _queue_webhooks,
    notify,
    people_for,
    recipients_for,
    release_of,
)
from messaging.selectors import NOT_FOUND_MESSAGE, content_membership, is_originator, item_get
from messaging.services import (
    consent_text_aad,
    fails_closed,
    forward_reason_aad,
    item_data_key,
    item_data_key_if_held,
    item_key_wrap,
    item_text_open,
    text_checked,
)

if TYPE_CHECKING:
    from typing import TypeAlias

    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    Actor: TypeAlias = AbstractBaseUser
    Viewer: TypeAlias = AbstractBaseUser | AnonymousUser

WEBHOOK_FORWARDED = "item.forwarded"
CONSENT_NOT_FOUND = "No such consent request."
# Who decides on a consent request for the originating agency.
DECIDING_ROLES = (Role.SUPERVISOR, Role.NATIONAL_FOCAL_POINT)


def _pk(value: Any) -> Any:
    """An id given as a model instance or as the id itself."""
    return getattr(value, "pk", value)


def _active_people() -> QuerySet[Membership]:
    """Members who may be told about content: active, of an active agency, and not auditors."""
    return Membership.objects.filter(is_active=True, user__is_active=True, agency__is_active=True).exclude(
        role__in=NO_CONTENT_ROLES
    )


def _deliver(item: Item, recipients: Sequence[Recipient]) -> list[Recipient]:
    """Deliveries for these recipients: new ones made, and ones revoked by an earlier cut-off made live again (a
    copy given anew); recipients already holding a live delivery are left as they are. Returns those delivered."""
    # Locked in the order item_revoke_notify locks them in.
    locked = Delivery.objects.select_for_update().filter(item=item, agency_id__in={r.agency_id for r in recipients})
    existing = {(d.agency_id, d.office_id, d.user_id): d for d in locked.order_by("pk")}
    now = timezone.now()
    fresh = [r for r in recipients if r.key not in existing]
    revived = [r for r in recipients if r.key in existing and existing[r.key].revoked_at is not None]
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
            for r in fresh
        ],
        ignore_conflicts=True,
    )
    for r in revived:
        Delivery.objects.filter(pk=existing[r.key].pk).update(
            revoked_at=None, reason=r.reason, routed_at=now, escalation_level=0, escalated_at=None
        )
    return fresh + revived


# --- forwards: selectors --------------------------------------------------------------------------------------------


def forwards_visible_to(viewer: Viewer, *, item: Item) -> QuerySet[Forward]:
    """The forwards of an item the viewer may list: every one for the originating agency, the viewer's agency's own
    for anyone else (a receiving agency does not see who else got it)."""
    membership = content_membership(viewer)
    if membership is None:
        return Forward.objects.none()
    forwards = Forward.objects.filter(item=item)
    if not is_originator(viewer, item):
        forwards = forwards.filter(from_agency_id=membership.agency_id)
    return forwards.select_related("from_agency", "from_user", "to_agency", "to_office").order_by("created_at", "pk")


# --- forwards: services ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForwardView:
    """A forward as its forwarding agency or the originator sees it; ``reason`` is None once their key is gone."""

    forward: Forward
    reason: str | None

    @property
    def active(self) -> bool:
        return self.forward.revoked_at is None


def _forward_recipient(
    *, item: Item, membership: Membership, to_agency: Any, to_office: Any
) -> tuple[Agency, Office | None]:
    """The agency (and office) to forward to, judged by the item's handling code; refuses with the rule broken."""
    if item.handling_code == HandlingCode.RED:
        raise PermissionDenied(
            "TLP:RED items are for their named recipients only and are never forwarded. Ask the originating agency "
            "if others need it."
        )
    agency = Agency.objects.filter(pk=_pk(to_agency), is_active=True).first() if to_agency is not None else None
    if agency is None:
        raise InvalidInput("No active member agency with that id.", extra={"fields": {"to_agency": ["Not found."]}})
    if agency.pk == item.originator_agency_id:
        raise InvalidInput(
            "The originating agency already has this item.", extra={"fields": {"to_agency": ["The originator."]}}
        )
    own_country = membership.agency.country_id
    if agency.country_id != own_country:
        raise PermissionDenied(
            f"Forwarding stays inside your own country ({own_country}). To share this item with {agency.country_id}, "
            "ask the originating agency's consent with a consent request (the third-party rule)."
        )
    office = None
    if to_office is not None:
        office = Office.objects.filter(pk=_pk(to_office), agency=agency, is_active=True).first()
        if office is None:
            raise InvalidInput(
                f"No active office with that id in {agency.short_name}.",
                extra={"fields": {"to_office": ["Not an active office of the agency."]}},
            )
    if item.handling_code == HandlingCode.AMBER_STRICT and agency.pk != membership.agency_id:
        raise PermissionDenied("TLP:AMBER+STRICT items may only be forwarded to offices of your own agency.")
    if agency.pk == membership.agency_id and office is None:
        raise InvalidInput(
            "Your agency already has this item: name the office of your agency to forward it to.",
            extra={"fields": {"to_office": ["Required when forwarding inside your own agency."]}},
        )
    return agency, office


@fails_closed
@transaction.atomic
def item_forward(*, actor: Actor, item_id: object, to_agency: Any, to_office: Any = None, reason: str) -> ForwardView:
    """Forward an item inside the actor's own country, as its handling code allows; delivered from the outbox."""
    membership = content_membership(actor)
    if membership is None:
        raise NotFound(NOT_FOUND_MESSAGE)
    # Locked: two forwards of one item to one recipient at the same moment make one forward, not a crash.
    item = item_get(actor, item_id=item_id, for_update=True)
    if item.status != ItemStatus.ACTIVE:
        raise Conflict(f"This item is {item.status}; it can no longer be forwarded.")
    agency, office = _forward_recipient(item=item, membership=membership, to_agency=to_agency, to_office=to_office)
    reason = text_checked("reason", reason, limit=FORWARD_REASON_MAX_LENGTH, summary="The item was not forwarded.")
    recipient = Q(item=item, to_agency=agency, to_office=office, revoked_at__isnull=True)
    if Forward.objects.filter(recipient).exists():
        where = f"{office.name} ({agency.short_name})" if office is not None else agency.short_name
        raise Conflict(f"This item has already been forwarded to {where}.")
    country = membership.agency.country_id
    data_key = item_data_key(item, country)
    # The reason's associated data names the forward's id, so it is sealed once the row has one.
    forward = Forward.objects.create(
        item=item,
        from_agency=membership.agency,
        from_user=actor,
        to_agency=agency,
        to_office=office,
        country_id=country,
        reason_sealed=b"",
    )
    forward.reason_sealed = seal(data_key, reason.encode("utf-8"), aad=forward_reason_aad(item.pk, forward.pk))
    forward.save(update_fields=["reason_sealed"])
    outbox_add(kind=OutboxKind.ITEM_FORWARD, item=item, payload={"item_id": str(item.pk), "forward_id": forward.pk})
    record(
        action="messaging.item.forward",
        actor=actor,
        target=item,
        target_country=item.originator_country,
        details={"forward_id": forward.pk, "to_agency": agency.pk, "to_office": office.pk if office else None},
    )
    return ForwardView(forward=forward, reason=reason)


@fails_closed
@transaction.atomic
def item_forwards_view(*, actor: Actor, item_id: object) -> list[ForwardView]:
    """The item's forwards with their reasons opened, for the originating agency and the forwarding agencies; a
    read of sealed text, so recorded like one (``messaging.forward.read``)."""
    item = item_get(actor, item_id=item_id)
    membership = content_membership(actor)
    if membership is None:  # item_get found the item, so this cannot happen; refuse rather than assume
        raise NotFound(NOT_FOUND_MESSAGE)
    country = membership.agency.country_id
    forwards = list(forwards_visible_to(actor, item=item))
    data_key = item_data_key_if_held(item, country) if forwards else None
    views = [
        ForwardView(
            forward=forward,
            reason=None
            if data_key is None
            else item_text_open(
                data_key,
                item,
                country,
                forward.reason_sealed,
                aad=forward_reason_aad(item.pk, forward.pk),
                what="forward_reason",
            ),
        )
        for forward in forwards
    ]
    record(
        action="messaging.forward.read",
        actor=actor,
        target=item,
        target_country=item.originator_country,
        details={"forward_ids": [view.forward.pk for view in views], "count": len(views)},
    )
    return views


@transaction.atomic
def forward_deliver(*, outbox_id: int) -> RouteResult | None:
    """Deliver a forward (the ``item.forward`` outbox row): a delivery for the receiving office or agency, its
    people notified, its agency's webhook called. None when the row was already processed."""
    message = outbox_claim(outbox_id, OutboxKind.ITEM_FORWARD)
    if message is None:
        return None
    forward = Forward.objects.select_related("item").filter(pk=message.payload["forward_id"]).first()
    item = forward.item if forward is not None else None
    # Cut off (or the item ended) between the forward and this message: nothing to deliver.
    if forward is None or item is None or forward.revoked_at is not None or not release_of(item).active:
        outbox_done(message)
        return RouteResult(deliveries=0, agencies=0, notified=0)
    office_id = forward.to_office_id
    if office_id is None:  # the agency as a whole: its duty desk, like routing, or its supervisors without one
        office_id = (
            Office.objects.filter(agency_id=forward.to_agency_id, kind=OfficeKind.DUTY_DESK, is_active=True)
            .values_list("pk", flat=True)
            .first()
        )
    recipient = Recipient(forward.to_agency_id, office_id, None, DeliveryReason.FORWARDED)
    delivered = _deliver(item, [recipient])
    people = people_for([recipient])[recipient.key]
    notified = notify(item, NotificationKind.FORWARDED, people)
    _queue_webhooks(item, [forward.to_agency_id], WEBHOOK_FORWARDED)
    record(
        action="messaging.forward.deliver",
        actor=None,
        target=item,
        target_country=item.originator_country,
        details={
            "outbox_id": outbox_id,
            "forward_id": forward.pk,
            "agency_id": forward.to_agency_id,
            "office_id": office_id,
            "deliveries": len(delivered),
            "notified_users": notified,
        },
    )
    outbox_done(message)
    return RouteResult(deliveries=len(delivered), agencies=1, notified=len(notified))


# --- consent requests: selectors ------------------------------------------------------------------------------------


def consents_visible_to(viewer: Viewer) -> QuerySet[ConsentRequest]:
    """Consent requests the viewer's agency asked or was asked (as the item's originator), newest first; nothing for
    anyone else, auditors included."""
    membership = content_membership(viewer)
    if membership is None:
        return ConsentRequest.objects.none()
    agency = membership.agency_id
    return (
        ConsentRequest.objects.filter(Q(requester_agency_id=agency) | Q(item__originator_agency_id=agency))
        .select_related("item", "requester_agency", "requester_user", "target_agency", "decided_by")
        .order_by("-created_at", "-id")
    )


def consent_get(viewer: Viewer, *, consent_id: object, for_update: bool = False) -> ConsentRequest:
    """One consent request of the viewer's side, or NotFound (the same answer whether hidden, absent or malformed)."""
    try:
        pk = consent_id if isinstance(consent_id, uuid.UUID) else uuid.UUID(str(consent_id))
    except (TypeError, ValueError, AttributeError):
        raise NotFound(CONSENT_NOT_FOUND) from None
    consents = consents_visible_to(viewer)
    if for_update:
        consents = consents.select_for_update(of=("self",))
    consent = consents.filter(pk=pk).first()
    if consent is None:
        raise NotFound(CONSENT_NOT_FOUND)
    return consent


# --- consent requests: services -------------------------------------------------------------------------------------


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
    return list(_active_people().filter(agency_id=agency_id, role__in=list(roles)).values_list("user_id", flat=True))


def _supervisors_of(agency_id: int) -> list[int]:
    """Who is asked to decide: the agency's supervisors, or its national focal points when it has no supervisor."""
    return _deciders(agency_id) or _deciders(agency_id, (Role.NATIONAL_FOCAL_POINT,))


def _requester(consent: ConsentRequest) -> list[int]:
    return list(_active_people().filter(user_id=consent.requester_user_id).values_list("user_id", flat=True))


@fails_closed
@transaction.atomic
def consent_request_create(
    *, actor: Actor, item_id: object, target_country: str, target_agency: Any = None, justification: str
) -> ConsentView:
    """Ask the originating agency's consent to share an item with a country outside its release (optionally one
    agency of it); its supervisors are told. Nothing is shared until a supervisor approves."""
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
        agency = Agency.objects.filter(pk=_pk(target_agency), country=country, is_active=True).first()
        if agency is None:
            raise InvalidInput(
                f"No active member agency with that id in {code}.",
                extra={"fields": {"target_agency": ["Not an active agency of the target country."]}},
            )
    justification = text_checked(
        "justification", justification, limit=CONSENT_TEXT_MAX_LENGTH, summary="The consent request was not stored."
    )
    if ItemCountryGrant.objects.filter(item=item, country=country).exists():
        raise Conflict(f"This item is already released to {code}.")
    if ConsentRequest.objects.filter(item=item, target_country=country, status=ConsentStatus.PENDING).exists():
        raise Conflict(f"A request to share this item with {code} is already waiting for a decision.")
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
        justification_sealed=seal(
            data_key,
            justification.encode("utf-8"),
            aad=consent_text_aad(item.pk, consent_id, "justification"),
        ),
        due_at=_due_at(item, now),
        created_at=now,
    )
    notified = notify_people(
        kind=NotificationKind.CONSENT_REQUESTED, user_ids=_supervisors_of(item.originator_agency_id), consent=consent
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


def _decider(actor: Actor, consent: ConsentRequest) -> Membership:
    """The actor when they may decide for the originating agency (a supervisor or national focal point of it)."""
    membership = content_membership(actor)
    if (
        membership is None
        or membership.agency_id != consent.item.originator_agency_id
        or membership.role not in DECIDING_ROLES
    ):
        raise PermissionDenied(
            "Only a supervisor or national focal point of the originating agency may decide on a consent request."
        )
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
    if ItemCountryGrant.objects.filter(item=item, country_id=country).exists():
        raise Conflict(f"This item is already released to {country}.")
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
    outbox_add(
        kind=OutboxKind.CONSENT_DELIVER, item=item, payload={"item_id": str(item.pk), "consent_id": str(consent.pk)}
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
    consent.decline_reason_sealed = seal(
        data_key,
        reason.encode("utf-8"),
        aad=consent_text_aad(item.pk, consent.pk, "decline_reason"),
    )
    consent.status = ConsentStatus.DECLINED
    consent.decided_by = actor
    consent.decided_at = timezone.now()
    consent.save(update_fields=["decline_reason_sealed", "status", "decided_by", "decided_at"])
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
    delivered = _deliver(item, recipients)
    people = people_for(delivered)
    notified = notify(item, NotificationKind.ROUTED, (pk for users in people.values() for pk in users))
    agencies = sorted({r.agency_id for r in delivered})
    _queue_webhooks(item, agencies, WEBHOOK_ROUTED)
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


# --- consent requests: due times ------------------------------------------------------------------------------------

LAST_LEVEL = 2


def consents_escalate_due(*, now: datetime | None = None) -> int:
    """Remind the originating agency's supervisors of every consent request pending at its due time (level 1); as
    long again later, escalate it to the originator country's national focal points (level 2). Returns the steps."""
    now = now or timezone.now()
    due = (
        ConsentRequest.objects.filter(status=ConsentStatus.PENDING, escalation_level__lt=LAST_LEVEL, due_at__lte=now)
        .order_by("due_at", "pk")
        .values_list("pk", flat=True)
    )
    return sum(_consent_escalate(consent_id=pk, now=now) for pk in due)


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
    # Re-checked under the lock: another sweep may have taken this step a moment ago.
    level = consent.escalation_level
    period = consent.due_at - consent.created_at
    if level >= LAST_LEVEL or (level == 1 and consent.due_at + period > now) or consent.due_at > now:
        return False
    item = consent.item
    level += 1
    if level == 1:
        kind, action = NotificationKind.CONSENT_REMINDER, "messaging.consent.remind"
        users = _supervisors_of(item.originator_agency_id)
    else:
        kind, action = NotificationKind.CONSENT_ESCALATED, "messaging.consent.escalate"
        release = release_of(item)
        focal_points = _active_people().filter(
            agency__country_id=item.originator_country, role=Role.NATIONAL_FOCAL_POINT
        )
        # Only those who may see the item itself: a focal point of an agency the release leaves out is not told.
        users = [
            user_id
            for user_id, agency_id in focal_points.values_list("user_id", "agency_id")
            if agency_id == item.originator_agency_id
            or release.person_may_see(user_id, agency_id, item.originator_country)
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
