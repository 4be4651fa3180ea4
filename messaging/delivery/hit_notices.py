"""Telling an item's originating agency of the hits on it: at once for FLASH and PRIORITY items, in a daily digest
otherwise (issue 15: the originator is in control and told of every hit).

A notice says who asked (agency and country), what type of identifier, the hit reference and a link to the item's
tracking page; never the identifier's value, the item's title or anything else of its content. It goes to the
officers of the originating agency (every content member: all of them may read their agency's items), in the portal
and by e-mail, through the notification machinery (``notify_people``), so per-officer e-mail preferences
(``Membership.email_notifications``) apply as for every other notice. Agencies' systems are not notified here: they
read hits from the change feed.

The digest sends each officer one e-mail listing the hits on their agency's items since the last digest, and sets
each hit's ``notified_at``. It works agency by agency, each in a transaction of its own that holds the agency's hits
locked while it sends: a failed SMTP session rolls that agency back (nothing is lost; the next run sends it again)
and leaves the agencies already done as they are.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime

from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.utils import timezone

from audit.services import record
from messaging.core.people import content_people
from messaging.delivery.notifications import hit_fact_line, notify_people, tracking_link
from messaging.models import Hit, Notification, NotificationKind, Priority

logger = logging.getLogger(__name__)

# Hits on items of these priorities are told at once; the rest wait for the daily digest.
IMMEDIATE_PRIORITIES = frozenset({Priority.FLASH, Priority.PRIORITY})


def holder_officers(agency_id: int) -> list[int]:
    """The people told of hits on an agency's items: its content members, people only (never a key's account)."""
    people = content_people().filter(agency_id=agency_id).filter(user__api_key__isnull=True)
    return sorted(people.values_list("user_id", flat=True))


@transaction.atomic
def hits_notify(hits: Iterable[Hit]) -> int:
    """Tell the holders of these hits at once where the item is FLASH or PRIORITY (in the portal, with e-mail queued
    through the outbox); the others are left for the daily digest. Called in the check's transaction, so a notice
    exists exactly when its hit does. Returns how many hits were told now."""
    # Only hits on FLASH and PRIORITY items are told now: the rest need no query here.
    ids = [hit.pk for hit in hits if hit.item.priority in IMMEDIATE_PRIORITIES]
    if not ids:
        return 0
    pending = list(
        Hit.objects.filter(pk__in=ids, notified_at__isnull=True, item__priority__in=IMMEDIATE_PRIORITIES)
        .select_related("item", "asker_agency")
        .order_by("id")
    )
    officers: dict[int, list[int]] = {}
    for hit in pending:
        if hit.holder_agency_id not in officers:
            officers[hit.holder_agency_id] = holder_officers(hit.holder_agency_id)
        notify_people(kind=NotificationKind.HIT_ON_ITEM, user_ids=officers[hit.holder_agency_id], hit=hit)
    if pending:
        Hit.objects.filter(pk__in=[hit.pk for hit in pending]).update(notified_at=timezone.now())
    return len(pending)


def _digest_message(address: str, hits: Sequence[Hit]) -> EmailMessage:
    lines = [
        f"Identifier checks by officers of other agencies matched items of your agency {len(hits)} time(s) since the "
        "last digest. Each asker was told only that your agency holds something, and a hit reference.",
        "",
    ]
    for hit in hits:
        lines += [
            f"- {hit.created_at:%Y-%m-%d %H:%M} UTC: {hit_fact_line(hit)}",
            f"  Open (sign-in required): {tracking_link(hit.item_id)}",
        ]
    lines += ["", "This message carries no intelligence content. Do not reply to it."]
    subject = f"[ISN] Daily digest: {len(hits)} identifier check hit(s) on your agency's items"
    return EmailMessage(subject=subject, body="\n".join(lines), to=[address])


def _addresses(user_ids: Sequence[int]) -> list[tuple[int, str]]:
    """(user id, address) of the officers who take e-mail: an address, and e-mail notices not turned off."""
    people = (
        content_people()
        .filter(user_id__in=user_ids)
        .exclude(user__email="")
        .exclude(email_notifications=False)
        .values_list("user_id", "user__email")
        .order_by("user_id")
    )
    return list(people)


def _digest_agency(agency_id: int, until: datetime) -> tuple[int, int]:
    """One agency's digest in one transaction: (hits told, e-mails sent)."""
    with transaction.atomic():
        hits = list(
            Hit.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(holder_agency_id=agency_id, notified_at__isnull=True, created_at__lte=until)
            .select_related("item", "asker_agency")
            .order_by("created_at", "id")
        )
        if not hits:
            return 0, 0
        officers = holder_officers(agency_id)
        for hit in hits:
            notify_people(kind=NotificationKind.HIT_ON_ITEM, user_ids=officers, hit=hit, email=False)
        recipients = _addresses(officers)
        if recipients:
            with get_connection() as connection:  # one SMTP session for the agency
                connection.send_messages([_digest_message(address, hits) for _, address in recipients])
        now = timezone.now()
        emailed = [user_id for user_id, _ in recipients]
        hit_ids = [hit.pk for hit in hits]
        Notification.objects.filter(hit_id__in=hit_ids, user_id__in=emailed).update(emailed_at=now)
        Hit.objects.filter(pk__in=hit_ids).update(notified_at=now)
        record(
            action="messaging.notification.email",
            actor=None,
            target_type="messaging.hit",
            target_country=hits[0].holder_country,
            details={
                "kind": "hit_digest",
                "agency_id": agency_id,
                "hit_ids": hit_ids,
                "user_ids": emailed,
                "count": len(emailed),
            },
        )
        return len(hits), len(emailed)


def hits_digest_send(*, until: datetime | None = None) -> int:
    """The daily digest: for every agency with hits not told yet (up to ``until``), one e-mail per officer listing
    them, the portal's notifications, and each hit's ``notified_at``. Returns how many hits were told."""
    until = until or timezone.now()
    agency_ids = sorted(
        set(
            Hit.objects.filter(notified_at__isnull=True, created_at__lte=until).values_list(
                "holder_agency_id", flat=True
            )
        )
    )
    told: dict[str, int] = defaultdict(int)
    for agency_id in agency_ids:
        hits, emails = _digest_agency(agency_id, until)
        told["hits"] += hits
        told["emails"] += emails
    if told["hits"]:
        logger.info("messaging: hit digest told %d hits in %d e-mails", told["hits"], told["emails"])
    return told["hits"]
