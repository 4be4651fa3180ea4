"""Forwarding inside one's own country, as the item's handling code allows.

A holder of an item may pass it on inside their own country (``item_forward``): never TLP:RED, TLP:AMBER+STRICT only to
offices of their own agency, and AMBER, GREEN or CLEAR to any active agency or office of their country. Only what their
agency or their office holds: a person named on an item reads it alone and passes it to nobody. A forward to an office
opens the item to that office's people only; to an agency, to all of it (``messaging.core.release``). The reason is
sealed under the item's data key. Forwards follow the originator's release: narrowing, withdrawal and expiry cut them
off (``messaging.sharing.reach``), and the ``item.revoke`` outbox row tells their holders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Q

from agencies.models import Agency, Membership, Office, OfficeKind
from audit.services import record
from isn.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from messaging.core.outbox import outbox_add, outbox_claim, outbox_done
from messaging.core.people import (
    content_membership,
)
from messaging.core.release import release_of
from messaging.core.sealing import (
    fails_closed,
    forward_reason_aad,
    item_data_key,
    item_data_key_if_held,
    item_text_open,
    sealed,
)
from messaging.core.validation import pk_of, text_checked
from messaging.delivery.deliveries import Recipient, deliver
from messaging.delivery.feed import audience_of, feed_follow
from messaging.delivery.routing import RouteResult, notify, people_for, queue_webhooks
from messaging.models import (
    FORWARD_REASON_MAX_LENGTH,
    DeliveryReason,
    Forward,
    HandlingCode,
    Item,
    ItemStatus,
    NotificationKind,
    OutboxKind,
)
from messaging.selectors.items import NOT_FOUND_MESSAGE, item_get, item_not_found
from messaging.selectors.sharing import forwards_visible_to

if TYPE_CHECKING:
    from typing import TypeAlias

    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    Actor: TypeAlias = AbstractBaseUser
    Viewer: TypeAlias = AbstractBaseUser | AnonymousUser


WEBHOOK_FORWARDED = "item.forwarded"


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
    agency = Agency.objects.filter(pk=pk_of(to_agency), is_active=True).first() if to_agency is not None else None
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
        office = Office.objects.filter(pk=pk_of(to_office), agency=agency, is_active=True).first()
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
        raise item_not_found(item_id)
    # Locked: two forwards of one item to one recipient at the same moment make one forward, not a crash.
    item = item_get(actor, item_id=item_id, for_update=True)
    if item.status != ItemStatus.ACTIVE:
        raise Conflict(f"This item is {item.status}; it can no longer be forwarded.")
    country = membership.agency.country_id
    if not release_of(item).office_holds(membership.agency_id, membership.office_id, country):
        raise PermissionDenied(
            "This item was shared with you by name, not with your agency or office, so you cannot forward it. Ask "
            "the originating agency to release it to whoever else needs it."
        )
    agency, office = _forward_recipient(item=item, membership=membership, to_agency=to_agency, to_office=to_office)
    reason = text_checked("reason", reason, limit=FORWARD_REASON_MAX_LENGTH, summary="The item was not forwarded.")
    recipient = Q(item=item, to_agency=agency, to_office=office, revoked_at__isnull=True)
    if Forward.objects.filter(recipient).exists():
        where = f"{office.name} ({agency.short_name})" if office is not None else agency.short_name
        raise Conflict(f"This item has already been forwarded to {where}.")
    data_key = item_data_key(item, country)
    before = audience_of(item)
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
    forward.reason_sealed = sealed(data_key, reason, aad=forward_reason_aad(item.pk, forward.pk))
    forward.save(update_fields=["reason_sealed"])
    feed_follow(item, before)
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
    delivered = deliver(item, [recipient])
    people = people_for([recipient])[recipient.key]
    release = release_of(item)
    notified = notify(item, NotificationKind.FORWARDED, people, release=release)
    # The agency's own system reads as the agency: told only when the agency holds the item as a whole.
    if release.agency_holds(forward.to_agency_id, forward.country_id):
        queue_webhooks(item, [forward.to_agency_id], WEBHOOK_FORWARDED)
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
