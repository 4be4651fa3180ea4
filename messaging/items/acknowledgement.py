"""Acknowledging an item, and the originator's view of where it went and who acknowledged it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import (
    IntegrityError,
    transaction,
)
from django.utils import timezone

from agencies.models import Agency
from audit.services import record
from isn.errors import Conflict, PermissionDenied
from messaging.core.sealing import (
    ack_note_aad,
    fails_closed,
    item_data_key,
    item_text_open,
    sealed,
)
from messaging.core.validation import (
    Problems,
    check_choice,
    check_text,
)
from messaging.delivery.deliveries import deliveries_acknowledge, deliveries_for_acknowledging
from messaging.delivery.feed import feed_tell
from messaging.models import (
    ACKNOWLEDGEMENT_TEXT_MAX_LENGTH,
    Acknowledgement,
    AcknowledgementNote,
    ChangeKind,
)
from messaging.selectors.items import (
    item_delivery_states,
    item_get,
    item_get_as_originator,
    reader_required,
)

if TYPE_CHECKING:
    from typing import TypeAlias

    from django.contrib.auth.models import AbstractBaseUser

    Actor: TypeAlias = AbstractBaseUser

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import TypeAlias

    from django.contrib.auth.models import AbstractBaseUser

    Actor: TypeAlias = AbstractBaseUser


class AlreadyAcknowledged(Conflict):
    code = "already_acknowledged"


@fails_closed
@transaction.atomic
def item_acknowledge(*, actor: Actor, item_id: object, note: str = "", note_text: str = "") -> Acknowledgement:
    """A receiving agency acknowledges the item, once per agency; a second attempt is ``AlreadyAcknowledged`` (409).

    Any agency that can see the item, other than its originator, may acknowledge it as soon as it sees it: a FLASH
    item is in the inbox before the routing task has made the agency's deliveries, and those are made acknowledged.

    ``note`` is one of ``AcknowledgementNote``; ``note_text`` is sealed under the item's data key (it may say what
    the agency is doing about it), so only the originator and the acknowledging agency's country can open it.
    """
    reader = reader_required(actor)
    item = item_get(reader, item_id=item_id)
    if reader.originates(item):
        raise PermissionDenied("The originating agency does not acknowledge its own item.")
    problems = Problems()
    note = (note or "").strip()
    if note:
        check_choice(problems, "note", note, AcknowledgementNote.values)
    note_text = (note_text or "").strip()
    if note_text:
        note_text = check_text(problems, "note_text", note_text, limit=ACKNOWLEDGEMENT_TEXT_MAX_LENGTH, multiline=True)
    problems.raise_if_any("The acknowledgement was not stored.")
    deliveries = deliveries_for_acknowledging(item, reader.agency_id)
    existing = Acknowledgement.objects.filter(item=item, agency_id=reader.agency_id).first()
    if existing is not None:
        raise AlreadyAcknowledged(
            f"Your agency already acknowledged this item at {existing.created_at.isoformat(timespec='seconds')}."
        )
    now = timezone.now()
    note_sealed = None
    if note_text:
        data_key = item_data_key(item, reader.country)
        note_sealed = sealed(data_key, note_text, aad=ack_note_aad(item.pk, reader.agency_id))
    try:
        with transaction.atomic():  # two officers of an agency the item is not routed to yet: nothing else to lock
            acknowledgement = Acknowledgement.objects.create(
                item=item,
                agency_id=reader.agency_id,
                user=actor,
                note=note,
                note_text_sealed=note_sealed,
                created_at=now,
            )
    except IntegrityError:
        raise AlreadyAcknowledged("Your agency has just acknowledged this item.") from None
    deliveries_acknowledge(deliveries, now=now)
    feed_tell(ChangeKind.ITEM_ACKNOWLEDGED, [item.originator_agency_id], subject=item, item_id=item.pk)
    record(
        action="messaging.item.acknowledge",
        actor=actor,
        target=item,
        target_country=item.originator_country,
        details={"agency_id": reader.agency_id, "note": note, "has_text": bool(note_text)},
    )
    return acknowledgement


@dataclass(frozen=True)
class AgencyDeliveryState:
    """What the originator sees of one recipient agency: when it was routed, told, read and acknowledged."""

    agency: Agency
    routed_at: datetime
    notified_at: datetime | None
    read_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    note: str
    note_text: str | None
    escalation_level: int
    revoked: bool


@fails_closed
@transaction.atomic
def item_deliveries_view(*, actor: Actor, item_id: object) -> list[AgencyDeliveryState]:
    """The originator's view of routing, per recipient agency; recorded like the view of who read the item."""
    item = item_get_as_originator(actor, item_id=item_id)
    states = list(item_delivery_states(actor, item=item))
    agencies = Agency.objects.in_bulk([state["agency_id"] for state in states])
    acknowledgements = {ack.agency_id: ack for ack in Acknowledgement.objects.filter(item=item).select_related("user")}
    data_key = None
    result = []
    for state in states:
        ack = acknowledgements.get(state["agency_id"])
        text = None
        if ack is not None and ack.note_text_sealed is not None:
            data_key = data_key or item_data_key(item, item.originator_country)
            aad = ack_note_aad(item.pk, ack.agency_id)
            text = item_text_open(
                data_key, item, item.originator_country, ack.note_text_sealed, aad=aad, what="acknowledgement_note"
            )
        result.append(
            AgencyDeliveryState(
                agency=agencies[state["agency_id"]],
                routed_at=state["routed_at"],
                notified_at=state["notified_at"],
                read_at=state["read_at"],
                acknowledged_at=ack.created_at if ack is not None else None,
                acknowledged_by=ack.user.get_username() if ack is not None else None,
                note=ack.note if ack is not None else "",
                note_text=text,
                escalation_level=state["escalation_level"],
                revoked=bool(state["revoked"]),
            )
        )
    record(
        action="messaging.item.deliveries_view",
        actor=actor,
        target=item,
        target_country=item.originator_country,
        details={"agencies": len(result)},
    )
    return result
