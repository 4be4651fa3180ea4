"""Notifications: in the portal (rows a person, or an agency's system through the API, lists and marks read) and by
e-mail to people (never to a system), each sent once.

A notification says that something happened to an item, a consent request or a request for information, and
carries only what any handling code allows: ids, priority, category, countries and a link; never a title, body,
question, reason or justification. For TLP:RED items the category stays out of e-mail too: mail leaves the network's
control. ``notify_people`` is the one way to notify: once per person, subject and kind, with the e-mail queued.

E-mail is sent at most once per notification except in one narrow case: each notification is claimed with a lease
in a committed transaction before sending and marked sent after; a worker killed between sending and marking sends
that e-mail again once the lease has expired. A repeated task message finds everything claimed or sent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone, translation

from agencies.models import Membership
from agencies.selectors import membership_for
from audit.services import record
from isn.errors import NotFound
from messaging.core.labels import entity_type_label
from messaging.core.outbox import outbox_add_many, outbox_claim, outbox_done_unless_done
from messaging.core.sql import execute, fetch_all
from messaging.models import (
    ConsentRequest,
    HandlingCode,
    Hit,
    Item,
    Notification,
    NotificationKind,
    OutboxKind,
    OutboxMessage,
    Priority,
    Rfi,
)
from messaging.models.delivery import Delivery

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser
    from django.db.models import QuerySet

logger = logging.getLogger(__name__)

# E-mail subjects and first lines per kind. {priority} and {country} (the originating or asking country) are filled
# in; nothing else of the subject is ever put in a message.
_SUBJECTS = {
    NotificationKind.ROUTED: "{priority} item from {country}",
    NotificationKind.ESCALATED: "Not acknowledged: {priority} item from {country}",
    NotificationKind.ESCALATED_NATIONAL: "Still not acknowledged: {priority} item from {country}",
    NotificationKind.REVOKED: "Access removed: item from {country}",
    NotificationKind.FORWARDED: "Forwarded to you: {priority} item from {country}",
    NotificationKind.CONSENT_REQUESTED: "Consent requested: {priority} item of your agency",
    NotificationKind.CONSENT_REMINDER: "Consent request due: {priority} item of your agency",
    NotificationKind.CONSENT_ESCALATED: "Consent request overdue: {priority} item of your country",
    NotificationKind.CONSENT_APPROVED: "Consent approved: {priority} item from {country}",
    NotificationKind.CONSENT_DECLINED: "Consent declined: {priority} item from {country}",
    NotificationKind.RFI_RECEIVED: "{priority} request for information from {country}",
    NotificationKind.RFI_REPLIED: "New reply: request for information ({country})",
    NotificationKind.RFI_REMINDER: "Due: {priority} request for information from {country}",
    NotificationKind.RFI_ESCALATED: "Overdue: {priority} request for information from {country}",
    NotificationKind.RFI_CLOSED: "Closed: request for information ({country})",
    NotificationKind.HIT_ON_ITEM: "{priority} item of your agency: an identifier check from {country} matched it",
}
_OPENINGS = {
    NotificationKind.ROUTED: "An item has been routed to you in ISN.",
    NotificationKind.ESCALATED: "A FLASH item routed to your agency has not been acknowledged in time.",
    NotificationKind.ESCALATED_NATIONAL: "A FLASH item routed to an agency of your country is still not acknowledged.",
    NotificationKind.REVOKED: "The originator has withdrawn or narrowed an item you received; you no longer have it.",
    NotificationKind.FORWARDED: "An item has been forwarded to you in ISN.",
    NotificationKind.CONSENT_REQUESTED: "A holder of an item of your agency asks consent to share it with another "
    "country. It waits for a supervisor's decision.",
    NotificationKind.CONSENT_REMINDER: "A consent request about an item of your agency is due and not decided.",
    NotificationKind.CONSENT_ESCALATED: "A consent request about an item of your country is overdue and not decided.",
    NotificationKind.CONSENT_APPROVED: "The originating agency approved your request to share an item.",
    NotificationKind.CONSENT_DECLINED: "The originating agency declined your request to share an item.",
    NotificationKind.RFI_RECEIVED: "A request for information has been sent to you in ISN.",
    NotificationKind.RFI_REPLIED: "A request for information you take part in has a new reply.",
    NotificationKind.RFI_REMINDER: "A request for information sent to you is due and not answered.",
    NotificationKind.RFI_ESCALATED: "A request for information sent to your agency is overdue and not answered.",
    NotificationKind.RFI_CLOSED: "A request for information you answered has been closed by the asker.",
    NotificationKind.HIT_ON_ITEM: "An officer of another agency checked an identifier that matches one of your "
    "agency's items. They were told only that your agency holds something, and its hit reference.",
}


def item_link(item_id: object) -> str:
    return f"{settings.ISN_PORTAL_URL.rstrip('/')}/items/{item_id}/"


def consent_link(consent_id: object) -> str:
    return f"{settings.ISN_PORTAL_URL.rstrip('/')}/consents/{consent_id}/"


def rfi_link(rfi_id: object) -> str:
    return f"{settings.ISN_PORTAL_URL.rstrip('/')}/rfis/{rfi_id}/"


def tracking_link(item_id: object) -> str:
    """The originator's tracking page of an item: who received and read it, and the hits on it."""
    return f"{settings.ISN_PORTAL_URL.rstrip('/')}/items/{item_id}/tracking/"


def hit_fact_line(hit: Hit) -> str:
    """One hit as a line of a message to its holder: who asked, about what type of identifier, and its reference;
    never the identifier's value, and nothing of the item but the link its holder signs in to open."""
    with translation.override("en"):  # e-mails are in English, whoever's request queued them
        entity_type = entity_type_label(hit.entity_type).lower()
    asker = f"{hit.asker_agency.short_name}, {hit.asker_country}"
    article = "an" if entity_type[:1] in "aeiou" else "a"
    return (
        f"An officer of {asker} checked {article} {entity_type} that matches one of your items; "
        f"reference {hit.reference}."
    )


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


Subject = Item | ConsentRequest | Rfi | Hit


def _subject_of(notification_subject: dict[str, Any]) -> Subject:
    """The item, consent request, request for information or hit an e-mail outbox row is about."""
    if notification_subject.get("hit_id"):
        return Hit.objects.select_related("item", "asker_agency").get(pk=notification_subject["hit_id"])
    if notification_subject.get("rfi_id"):
        return Rfi.objects.get(pk=notification_subject["rfi_id"])
    if notification_subject.get("consent_id"):
        return ConsentRequest.objects.select_related("item").get(pk=notification_subject["consent_id"])
    return Item.objects.get(pk=notification_subject["item_id"])


def _subject_filter(subject: Subject) -> dict[str, Any]:
    if isinstance(subject, Hit):
        return {"hit": subject}
    if isinstance(subject, Rfi):
        return {"rfi": subject, "consent": None, "item": None}
    if isinstance(subject, ConsentRequest):
        return {"consent": subject, "rfi": None}
    return {"item": subject, "consent": None, "rfi": None, "hit": None}


def _email_lines(subject: Subject) -> tuple[str, str, list[str], str]:
    """(priority, country, fact lines, link) for an e-mail: ids, codes and countries only."""
    if isinstance(subject, Hit):
        facts = [hit_fact_line(subject), f"Item: {subject.item_id}"]
        return subject.item.priority, subject.asker_country, facts, tracking_link(subject.item_id)
    if isinstance(subject, Rfi):
        facts = [
            f"Request for information: {subject.pk}",
            f"From: {subject.requester_country}  To: {subject.target_country}",
            f"Due: {subject.due_at:%Y-%m-%d %H:%M} UTC",
        ]
        return subject.priority, subject.requester_country, facts, rfi_link(subject.pk)
    item = subject.item if isinstance(subject, ConsentRequest) else subject
    item_facts = facts_for(item, leaves_network=True)
    facts = [
        f"Item: {item_facts.item_id}",
        f"Category: {item_facts.category or 'withheld (TLP:RED)'}",
        f"Originating country: {item_facts.originator_country}",
    ]
    if isinstance(subject, ConsentRequest):
        facts += [f"Consent request: {subject.pk}", f"To share with: {subject.target_country_id}"]
        return item.priority, item.originator_country, facts, consent_link(subject.pk)
    return item.priority, item.originator_country, facts, item_facts.link


def _email_for(subject: Subject, kind: str, address: str) -> EmailMessage:
    priority_code, country, facts, link = _email_lines(subject)
    priority = Priority(priority_code).label.upper()
    heading = "[ISN] " + _SUBJECTS[NotificationKind(kind)].format(priority=priority, country=country)
    lines = [
        _OPENINGS[NotificationKind(kind)],
        "",
        *facts,
        f"Priority: {priority}",
        "",
        f"Open it in ISN (sign-in required): {link}",
        "",
        "This message carries no intelligence content. Do not reply to it.",
    ]
    return EmailMessage(subject=heading, body="\n".join(lines), to=[address])


# The e-mail path on PostgreSQL: each step one statement (messaging.core.sql), as it runs for every item routed.
# The notifications of one subject: an item's own, a consent request's, or a request for information's.
_OF_SUBJECT = {
    Item: "note.item_id = %(subject)s AND note.consent_id IS NULL AND note.rfi_id IS NULL AND note.hit_id IS NULL",
    ConsentRequest: "note.consent_id = %(subject)s AND note.rfi_id IS NULL",
    Rfi: "note.rfi_id = %(subject)s AND note.consent_id IS NULL AND note.item_id IS NULL",
    Hit: "note.hit_id = %(subject)s",
}
# Unsent, unclaimed (or with a lapsed lease), to an address, for a person who has not turned e-mail off; never for an
# agency system (an API key's service account: no person reads its mail, whatever address it may carry).
_CLAIM_SQL = """
    UPDATE messaging_notification claimed SET email_claimed_at = %(now)s
    FROM auth_user person
    WHERE person.id = claimed.user_id AND claimed.id IN (
        SELECT note.id FROM messaging_notification note
        JOIN auth_user person ON person.id = note.user_id
        LEFT JOIN agencies_membership member ON member.user_id = note.user_id
        WHERE {subject} AND note.kind = %(kind)s AND note.emailed_at IS NULL
            AND (note.email_claimed_at IS NULL OR note.email_claimed_at < %(lease_over)s)
            AND person.email <> '' AND member.email_notifications IS DISTINCT FROM false
            AND NOT EXISTS (SELECT 1 FROM agencies_apikey api WHERE api.user_id = note.user_id)
        FOR UPDATE OF note SKIP LOCKED
    )
    RETURNING claimed.id, claimed.user_id, person.email
"""
_MAILED_SQL = "UPDATE messaging_notification SET emailed_at = %s WHERE id = ANY(%s)"
_DELIVERIES_NOTIFIED_SQL = """
    UPDATE messaging_delivery SET notified_at = %(now)s
    WHERE item_id = %(item)s AND notified_at IS NULL
        AND agency_id IN (SELECT agency_id FROM agencies_membership WHERE user_id = ANY(%(users)s))
"""


def _claim(subject: Subject, kind: str) -> list[tuple[int, int, str]]:
    """Claim the unsent notifications of a subject and kind for this worker: (notification id, user id, address)."""
    now = timezone.now()
    lease_over = now - timedelta(seconds=settings.ISN_EMAIL_CLAIM_LEASE_SECONDS)
    if connection.vendor == "postgresql":
        of_subject = next(where for model, where in _OF_SUBJECT.items() if isinstance(subject, model))
        sql = _CLAIM_SQL.format(subject=of_subject)
        claimed = fetch_all(sql, {"now": now, "subject": subject.pk, "kind": kind, "lease_over": lease_over})
        return sorted(claimed)  # type: ignore[arg-type]
    rows = list(
        Notification.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(**_subject_filter(subject), kind=kind, emailed_at__isnull=True)
        .filter(Q(email_claimed_at__isnull=True) | Q(email_claimed_at__lt=lease_over))
        .exclude(user__email="")
        .exclude(user__membership__email_notifications=False)
        .filter(user__api_key__isnull=True)
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
        subject = _subject_of(message.payload)
        kind = message.payload["kind"]
        claimed = _claim(subject, kind)
    sent: list[tuple[int, int]] = []
    try:
        if claimed:
            with get_connection() as connection:  # one SMTP session for the batch
                for notification_id, user_id, address in claimed:
                    connection.send_messages([_email_for(subject, kind, address)])
                    sent.append((notification_id, user_id))
    finally:
        # Whatever happened, what was sent is marked sent and the rest is released for the retry.
        _finish(message, subject, kind, claimed, sent)
    return len(sent)


@transaction.atomic
def _finish(
    message: OutboxMessage,
    subject: Subject,
    kind: str,
    claimed: Sequence[tuple[int, int, str]],
    sent: list[tuple[int, int]],
) -> None:
    now = timezone.now()
    sent_ids = {notification_id for notification_id, _ in sent}
    postgresql = connection.vendor == "postgresql"
    if postgresql and sent_ids:
        execute(_MAILED_SQL, [now, sorted(sent_ids)])
    else:
        Notification.objects.filter(pk__in=sent_ids).update(emailed_at=now)
    Notification.objects.filter(pk__in=[pk for pk, _, _ in claimed if pk not in sent_ids]).update(email_claimed_at=None)
    if sent:
        user_ids = sorted(user_id for _, user_id in sent)
        if isinstance(subject, Item) and postgresql:
            execute(_DELIVERIES_NOTIFIED_SQL, {"now": now, "item": subject.pk, "users": user_ids})
        elif isinstance(subject, Item):
            agencies = Membership.objects.filter(user_id__in=user_ids).values("agency_id")
            Delivery.objects.filter(item=subject, agency_id__in=agencies, notified_at__isnull=True).update(
                notified_at=now
            )
        record(
            action="messaging.notification.email",
            actor=None,
            target=subject,
            target_country=_country_of(subject),
            details={"kind": kind, "user_ids": user_ids, "count": len(sent), "outbox_id": message.pk},
        )
    if len(sent) == len(claimed):
        outbox_done_unless_done(message.pk)


def _country_of(subject: Subject) -> str:
    """The country an audit event about this subject is filed under (its originator's, or the asked country's)."""
    if isinstance(subject, Hit):
        return subject.holder_country
    if isinstance(subject, Rfi):
        return subject.target_country
    if isinstance(subject, ConsentRequest):
        return subject.item.originator_country
    return subject.originator_country


_NOTIFY_SQL = """
    INSERT INTO messaging_notification (user_id, item_id, consent_id, rfi_id, hit_id, kind, created_at)
    SELECT person, %(item)s::uuid, %(consent)s::uuid, %(rfi)s::uuid, %(hit)s::bigint, %(kind)s, %(now)s
    FROM unnest(%(users)s::bigint[]) AS person
    ON CONFLICT DO NOTHING
    RETURNING user_id
"""


def _pk(subject: Subject | None) -> object:
    return None if subject is None else subject.pk


def notify_people(
    *,
    kind: str,
    user_ids: Iterable[int],
    item: Item | None = None,
    consent: ConsentRequest | None = None,
    rfi: Rfi | None = None,
    hit: Hit | None = None,
    email: bool = True,
) -> list[int]:
    """In-portal notifications for these people, once per person, subject and kind, with their e-mail queued.

    The subject is an item, a consent request (its item is filled in), a request for information or a hit on an item
    (its item is filled in). ``email=False`` queues no e-mail: the caller sends its own (the daily digest of hits).
    Returns the people newly notified; the caller records the act that calls for it.
    """
    if consent is not None:
        item = consent.item
    if hit is not None:
        item = hit.item
    subject: Subject | None = hit or rfi or consent or item
    if subject is None:
        raise ValueError("notify_people needs an item, a consent request or a request for information")
    user_ids = sorted(set(user_ids))
    if not user_ids:
        return []
    now = timezone.now()
    if connection.vendor == "postgresql":
        # One statement (routing notifies many people per item): the unique constraint, nulls equal, skips those
        # already notified, and the rows inserted are the people newly notified.
        rows = fetch_all(
            _NOTIFY_SQL,
            {
                "users": user_ids,
                "item": _pk(item),
                "consent": _pk(consent),
                "rfi": _pk(rfi),
                "hit": _pk(hit),
                "kind": kind,
                "now": now,
            },
        )
        new = sorted(pk for (pk,) in rows)
    else:
        where = _subject_filter(subject)
        already = set(
            Notification.objects.filter(**where, kind=kind, user_id__in=user_ids).values_list("user_id", flat=True)
        )
        new = [pk for pk in user_ids if pk not in already]
        Notification.objects.bulk_create(
            [
                Notification(user_id=pk, item=item, consent=consent, rfi=rfi, hit=hit, kind=kind, created_at=now)
                for pk in new
            ],
            ignore_conflicts=True,
        )
    if new and email:
        payload: dict[str, Any] = {"kind": kind}
        if hit is not None:
            payload["item_id"] = str(hit.item_id)
            payload["hit_id"] = hit.pk
        elif rfi is not None:
            payload["rfi_id"] = str(rfi.pk)
        else:
            payload["item_id"] = str(item.pk)  # type: ignore[union-attr]
            if consent is not None:
                payload["consent_id"] = str(consent.pk)
        outbox_add_many([(OutboxKind.NOTIFY_EMAIL, rfi or item, payload)])  # type: ignore[list-item]
    return new


# --- the portal's notifications: reads scoped to the viewer ----------------------------------------------------------


def notifications_for(viewer: AbstractBaseUser) -> QuerySet[Notification]:
    """The viewer's own notifications, newest first; nobody else's, ever."""
    if membership_for(viewer) is None:
        return Notification.objects.none()
    return (
        Notification.objects.filter(user_id=viewer.pk)
        .select_related("item", "rfi", "consent")
        .order_by("-created_at", "-id")
    )


def portal_path(notification: Notification) -> str:
    """Where in the portal the notification leads: its request for information, consent request, item, or for a hit
    the item's tracking page."""
    if notification.hit_id:
        return f"/items/{notification.item_id}/tracking/"
    if notification.rfi_id:
        return f"/rfis/{notification.rfi_id}/"
    if notification.consent_id:
        return f"/consents/{notification.consent_id}/"
    return f"/items/{notification.item_id}/"


def notifications_unread_count(viewer: AbstractBaseUser) -> int:
    return notifications_for(viewer).filter(read_at__isnull=True).count()


@transaction.atomic
def notification_list(*, actor: AbstractBaseUser, notifications: Sequence[Notification]) -> Sequence[Notification]:
    """A page of the viewer's notifications: a list naming items, so recorded like the inbox."""
    record(
        action="messaging.notification.list",
        actor=actor,
        target_type="messaging.notification",
        details={
            "item_ids": [str(n.item_id) for n in notifications if n.item_id],
            "consent_ids": sorted({str(n.consent_id) for n in notifications if n.consent_id}),
            "rfi_ids": sorted({str(n.rfi_id) for n in notifications if n.rfi_id}),
            "count": len(notifications),
        },
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
            target_country=_country_of(notification.rfi or notification.consent or notification.item),
            details={
                "item_id": str(notification.item_id or ""),
                "consent_id": str(notification.consent_id or ""),
                "rfi_id": str(notification.rfi_id or ""),
            },
        )
    return notification


def notifications_mark_read_for_item(*, actor: AbstractBaseUser, item: Item) -> None:
    """Opening an item reads its notifications (called inside ``item_read``'s transaction)."""
    Notification.objects.filter(user_id=actor.pk, item=item, read_at__isnull=True).update(read_at=timezone.now())
