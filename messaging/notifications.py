"""Notifications: in the portal (rows a person lists and marks read) and by e-mail, each sent once.

A notification says that something happened to an item and carries only what any handling code allows: the item's
id, priority, category, originating country and a link to it; never its title or body. For TLP:RED items the
category stays out of e-mail too: mail leaves the network's control.

E-mail is sent at most once per notification except in one narrow case: each notification is claimed with a lease
in a committed transaction before sending and marked sent after; a worker killed between sending and marking sends
that e-mail again once the lease has expired. A repeated task message finds everything claimed or sent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agencies.models import Membership
from agencies.selectors import membership_for
from audit.services import record
from isn.errors import NotFound
from messaging.models import (
    Delivery,
    HandlingCode,
    Item,
    Notification,
    NotificationKind,
    OutboxKind,
    OutboxMessage,
    Priority,
)
from messaging.outbox import outbox_claim, outbox_done

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser
    from django.db.models import QuerySet

logger = logging.getLogger(__name__)

_SUBJECTS = {
    NotificationKind.ROUTED: "{priority} item from {country}",
    NotificationKind.ESCALATED: "Not acknowledged: {priority} item from {country}",
    NotificationKind.ESCALATED_NATIONAL: "Still not acknowledged: {priority} item from {country}",
    NotificationKind.REVOKED: "Access removed: item from {country}",
}
_OPENINGS = {
    NotificationKind.ROUTED: "An item has been routed to you in ISN.",
    NotificationKind.ESCALATED: "A FLASH item routed to your agency has not been acknowledged in time.",
    NotificationKind.ESCALATED_NATIONAL: "A FLASH item routed to an agency of your country is still not acknowledged.",
    NotificationKind.REVOKED: "The originator has withdrawn or narrowed an item you received; you no longer have it.",
}


def item_link(item_id: object) -> str:
    return f"{settings.ISN_PORTAL_URL.rstrip('/')}/items/{item_id}/"


@dataclass(frozen=True)
class NotificationFacts:
    """All a notification may say about an item; ``category`` is None when the handling code keeps it back."""

    item_id: str
    priority: str
    category: str | None
    originator_country: str
    link: str


def facts_for(item: Item, *, leaves_network: bool) -> NotificationFacts:
    withheld = leaves_network and item.handling_code == HandlingCode.RED
    return NotificationFacts(
        item_id=str(item.pk),
        priority=item.priority,
        category=None if withheld else item.category,
        originator_country=item.originator_country,
        link=item_link(item.pk),
    )


def _email_for(item: Item, kind: str, address: str) -> EmailMessage:
    facts = facts_for(item, leaves_network=True)
    priority = Priority(facts.priority).label.upper()
    subject = "[ISN] " + _SUBJECTS[NotificationKind(kind)].format(priority=priority, country=facts.originator_country)
    lines = [
        _OPENINGS[NotificationKind(kind)],
        "",
        f"Item: {facts.item_id}",
        f"Priority: {priority}",
        f"Category: {facts.category or 'withheld (TLP:RED)'}",
        f"Originating country: {facts.originator_country}",
        "",
        f"Open it in ISN (sign-in required): {facts.link}",
        "",
        "This message carries no intelligence content. Do not reply to it.",
    ]
    return EmailMessage(subject=subject, body="\n".join(lines), to=[address])


def _claim(item_id: object, kind: str) -> list[tuple[int, int, str]]:
    """Claim the unsent notifications of an item and kind for this worker: (notification id, user id, address)."""
    now = timezone.now()
    lease_over = now - timedelta(seconds=settings.ISN_EMAIL_CLAIM_LEASE_SECONDS)
    rows = list(
        Notification.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(item_id=item_id, kind=kind, emailed_at__isnull=True)
        .filter(Q(email_claimed_at__isnull=True) | Q(email_claimed_at__lt=lease_over))
        .exclude(user__email="")
        .values_list("pk", "user_id", "user__email")
        .order_by("pk")
    )
    Notification.objects.filter(pk__in=[pk for pk, _, _ in rows]).update(email_claimed_at=now)
    return rows


def notification_emails_send(*, outbox_id: int) -> int:
    """Send the e-mails of a ``notify.email`` outbox row: one per person notified; returns how many were sent."""
    with transaction.atomic():
        message = outbox_claim(outbox_id, OutboxKind.NOTIFY_EMAIL)
        if message is None:
            return 0
        item = Item.objects.get(pk=message.item_id)
        kind = message.payload["kind"]
        claimed = _claim(item.pk, kind)
    sent: list[tuple[int, int]] = []
    try:
        if claimed:
            with get_connection() as connection:  # one SMTP session for the batch
                for notification_id, user_id, address in claimed:
                    connection.send_messages([_email_for(item, kind, address)])
                    sent.append((notification_id, user_id))
    finally:
        # Whatever happened, what was sent is marked sent and the rest is released for the retry.
        _finish(message, item, kind, claimed, sent)
    return len(sent)


@transaction.atomic
def _finish(
    message: OutboxMessage, item: Item, kind: str, claimed: Sequence[tuple[int, int, str]], sent: list[tuple[int, int]]
) -> None:
    now = timezone.now()
    sent_ids = {notification_id for notification_id, _ in sent}
    Notification.objects.filter(pk__in=sent_ids).update(emailed_at=now)
    Notification.objects.filter(pk__in=[pk for pk, _, _ in claimed if pk not in sent_ids]).update(email_claimed_at=None)
    if sent:
        user_ids = sorted(user_id for _, user_id in sent)
        agencies = Membership.objects.filter(user_id__in=user_ids).values("agency_id")
        Delivery.objects.filter(item=item, agency_id__in=agencies, notified_at__isnull=True).update(notified_at=now)
        record(
            action="messaging.notification.email",
            actor=None,
            target=item,
            target_country=item.originator_country,
            details={"kind": kind, "user_ids": user_ids, "count": len(sent), "outbox_id": message.pk},
        )
    if len(sent) == len(claimed):
        locked = OutboxMessage.objects.select_for_update().get(pk=message.pk)
        if locked.processed_at is None:
            outbox_done(locked)


# --- the portal's notifications: reads scoped to the viewer ----------------------------------------------------------


def notifications_for(viewer: AbstractBaseUser) -> QuerySet[Notification]:
    """The viewer's own notifications, newest first; nobody else's, ever."""
    if membership_for(viewer) is None:
        return Notification.objects.none()
    return Notification.objects.filter(user_id=viewer.pk).select_related("item").order_by("-created_at", "-id")


def notifications_unread_count(viewer: AbstractBaseUser) -> int:
    return notifications_for(viewer).filter(read_at__isnull=True).count()


@transaction.atomic
def notification_list(*, actor: AbstractBaseUser, notifications: Sequence[Notification]) -> Sequence[Notification]:
    """A page of the viewer's notifications: a list naming items, so recorded like the inbox."""
    record(
        action="messaging.notification.list",
        actor=actor,
        target_type="messaging.notification",
        details={"item_ids": [str(n.item_id) for n in notifications], "count": len(notifications)},
    )
    return notifications


@transaction.atomic
def notification_mark_read(*, actor: AbstractBaseUser, notification_id: object) -> Notification:
    """Mark one of the viewer's own notifications read (idempotent); someone else's is NotFound."""
    try:
        pk = int(str(notification_id))
    except ValueError:
        raise NotFound("No such notification.") from None
    notification = notifications_for(actor).select_for_update(of=("self",)).filter(pk=pk).first()
    if notification is None:
        raise NotFound("No such notification.")
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
        record(
            action="messaging.notification.read",
            actor=actor,
            target=notification,
            target_country=notification.item.originator_country,
            details={"item_id": str(notification.item_id)},
        )
    return notification


def notifications_mark_read_for_item(*, actor: AbstractBaseUser, item: Item) -> None:
    """Opening an item reads its notifications (called inside ``item_read``'s transaction)."""
    Notification.objects.filter(user_id=actor.pk, item=item, read_at__isnull=True).update(read_at=timezone.now())
