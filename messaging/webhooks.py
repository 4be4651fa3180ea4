"""Webhooks: telling an agency's own system about items, by a signed HTTP POST.

The body is JSON with the same facts as any notification (id, priority, category, originating country, link) and
never content. It is signed with HMAC-SHA256 under the agency's secret over ``timestamp + "." + body``; the
receiver checks ``X-ISN-Signature: sha256=<hex>`` and rejects an old ``X-ISN-Timestamp`` (replay).
``X-ISN-Delivery`` is the same on every retry of one call, so a receiver can drop a repeat: delivery is at least
once (a worker killed after the POST and before recording it sends the call again).

A failed call is retried with exponential back-off up to ``ISN_WEBHOOK_MAX_ATTEMPTS`` tries, then dead-lettered: a
``WebhookDeadLetter`` row the agency's admins see. The attempt count lives on the outbox row, not in the broker, so
a lost retry message is picked up by the relay and carries on from the same count.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from agencies.models import Role
from agencies.selectors import membership_for
from audit.models import Outcome
from audit.services import record
from isn.crypto import associated_data, open_sealed, seal
from isn.errors import InvalidInput, PermissionDenied
from messaging.models import (
    AgencyWebhook,
    Delivery,
    Item,
    OutboxKind,
    OutboxMessage,
    WebhookDeadLetter,
)
from messaging.notifications import facts_for
from messaging.outbox import outbox_done

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser
    from django.db.models import QuerySet

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-ISN-Signature"
TIMESTAMP_HEADER = "X-ISN-Timestamp"
DELIVERY_HEADER = "X-ISN-Delivery"
EVENT_HEADER = "X-ISN-Event"


def _secret_aad(agency_id: int) -> bytes:
    return associated_data("webhook-secret", agency_id)


def webhook_secret(webhook: AgencyWebhook) -> bytes:
    return open_sealed(settings.ISN_MASTER_KEY, bytes(webhook.secret_sealed), aad=_secret_aad(webhook.agency_id))


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header's value for a body sent at ``timestamp`` (Unix seconds, as text)."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: bytes, timestamp: str, body: bytes, signature: str, *, tolerance: int = 300) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent. Used by ISN's tests."""
    try:
        fresh = abs(time.time() - int(timestamp)) <= tolerance
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


def _check_url(url: str) -> str:
    url = (url or "").strip()
    parts = urlsplit(url)
    schemes = ("https", "http") if settings.ISN_WEBHOOK_ALLOW_HTTP else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise InvalidInput("The webhook URL must be an https:// URL.", extra={"fields": {"url": ["Not https."]}})
    if parts.username or parts.password:
        raise InvalidInput("Put no credentials in the webhook URL; the signature authenticates ISN.")
    return url


@transaction.atomic
def webhook_configure(*, actor: AbstractBaseUser, url: str, is_active: bool = True) -> tuple[AgencyWebhook, str]:
    """An agency admin sets their agency's webhook URL; a new signing secret is made and returned this once."""
    membership = membership_for(actor)
    if membership is None or membership.role != Role.AGENCY_ADMIN:
        raise PermissionDenied("Only an agency admin may configure the agency's webhook.")
    url = _check_url(url)
    secret = secrets.token_urlsafe(32)
    webhook, created = AgencyWebhook.objects.update_or_create(
        agency_id=membership.agency_id,
        defaults={
            "url": url,
            "is_active": is_active,
            "secret_sealed": seal(
                settings.ISN_MASTER_KEY, secret.encode("ascii"), aad=_secret_aad(membership.agency_id)
            ),
        },
    )
    record(
        action="messaging.webhook.configure",
        actor=actor,
        target=webhook,
        target_country=membership.agency.country_id,
        # The host only: a URL's path or query may itself be a credential.
        details={"host": urlsplit(url).hostname, "is_active": is_active, "created": created},
    )
    return webhook, secret


def webhook_dead_letters_for(viewer: AbstractBaseUser) -> QuerySet[WebhookDeadLetter]:
    """Dead-lettered calls of the viewer's own agency, for its agency admins only."""
    membership = membership_for(viewer)
    if membership is None or membership.role != Role.AGENCY_ADMIN:
        raise PermissionDenied("Only an agency admin may see the agency's failed webhook calls.")
    return WebhookDeadLetter.objects.filter(agency_id=membership.agency_id).select_related("item")


@transaction.atomic
def webhook_dead_letter_list(
    *, actor: AbstractBaseUser, dead_letters: list[WebhookDeadLetter]
) -> list[WebhookDeadLetter]:
    record(
        action="messaging.webhook.dead_letter_list",
        actor=actor,
        target_type="messaging.webhookdeadletter",
        details={"ids": [letter.pk for letter in dead_letters], "count": len(dead_letters)},
    )
    return dead_letters


# --- sending -----------------------------------------------------------------------------------------------------


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is a failure: the signed body must not be replayed to wherever a receiver points."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def _post(url: str, body: bytes, headers: dict[str, str]) -> str | None:
    """POST once; None on a 2xx answer, else a short reason (status or error class, never a response body)."""
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310 - scheme checked
    try:
        with _opener.open(request, timeout=settings.ISN_WEBHOOK_TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        return type(exc).__name__
    return None if 200 <= status < 300 else f"HTTP {status}"


@dataclass(frozen=True)
class WebhookOutcome:
    status: str  # "sent", "retry", "dead", "skipped"
    attempts: int = 0
    retry_in: float = 0.0


def backoff(attempts: int) -> float:
    """Seconds before try ``attempts + 1``: the base doubled per failure, capped."""
    return float(min(settings.ISN_WEBHOOK_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0), 3600))


def _claim(outbox_id: int) -> tuple[OutboxMessage, AgencyWebhook | None] | None:
    """Take the row for one try: its ``available_at`` becomes a lease, so a duplicate message waits its turn."""
    now = timezone.now()
    lease = settings.ISN_WEBHOOK_TIMEOUT_SECONDS + 30
    with transaction.atomic():
        message = (
            OutboxMessage.objects.select_for_update()
            .filter(
                pk=outbox_id,
                kind=OutboxKind.NOTIFY_WEBHOOK,
                processed_at__isnull=True,
                # A retry's message may arrive a moment before the time it was scheduled for.
                available_at__lte=now + timedelta(seconds=1),
            )
            .first()
        )
        if message is None:
            return None
        message.available_at = now + timedelta(seconds=lease)
        message.save(update_fields=["available_at"])
        webhook = AgencyWebhook.objects.filter(agency_id=message.payload["agency_id"], is_active=True).first()
        if webhook is None:
            outbox_done(message)  # switched off since: nothing to send
        return message, webhook


def webhook_send(*, outbox_id: int) -> WebhookOutcome:
    """One try of a ``notify.webhook`` outbox row; the task retries after ``retry_in`` when told to."""
    claimed = _claim(outbox_id)
    if claimed is None:
        return WebhookOutcome("skipped")
    message, webhook = claimed
    if webhook is None:
        return WebhookOutcome("skipped")
    item = Item.objects.get(pk=message.item_id)
    event = message.payload["event"]
    body = json.dumps(
        {
            "event": event,
            "delivery": str(message.pk),
            "agency": webhook.agency_id,
            "item": asdict(facts_for(item, leaves_network=True)),
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode("utf-8")
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "ISN-webhook/1",
        EVENT_HEADER: event,
        DELIVERY_HEADER: str(message.pk),
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(webhook_secret(webhook), timestamp, body),
    }
    failure = _post(webhook.url, body, headers)
    return _after_try(message.pk, item, webhook, event, failure)


@transaction.atomic
def _after_try(outbox_id: int, item: Item, webhook: AgencyWebhook, event: str, failure: str | None) -> WebhookOutcome:
    message = OutboxMessage.objects.select_for_update().get(pk=outbox_id)
    attempts = message.attempts + 1
    details = {"event": event, "agency_id": webhook.agency_id, "outbox_id": outbox_id, "attempt": attempts}
    if failure is None:
        outbox_done(message)
        Delivery.objects.filter(item=item, agency_id=webhook.agency_id, notified_at__isnull=True).update(
            notified_at=timezone.now()
        )
        record(
            action="messaging.notification.webhook",
            actor=None,
            target=item,
            target_country=item.originator_country,
            details=details,
        )
        return WebhookOutcome("sent", attempts)
    if attempts >= settings.ISN_WEBHOOK_MAX_ATTEMPTS:
        outbox_done(message)
        WebhookDeadLetter.objects.create(
            agency_id=webhook.agency_id,
            item=item,
            outbox_message=message,
            event=event,
            attempts=attempts,
            last_error=failure[:100],
        )
        record(
            action="messaging.notification.dead_letter",
            actor=None,
            target=item,
            target_country=item.originator_country,
            outcome=Outcome.ERROR,
            details={**details, "error": failure},
        )
        logger.warning("webhook: agency %s gave up after %d tries (%s)", webhook.agency_id, attempts, failure)
        return WebhookOutcome("dead", attempts)
    retry_in = backoff(attempts)
    record(
        action="messaging.notification.webhook",
        actor=None,
        target=item,
        target_country=item.originator_country,
        outcome=Outcome.ERROR,
        details={**details, "error": failure, "retry_in": retry_in},
    )
    message.attempts = attempts
    message.available_at = timezone.now() + timedelta(seconds=retry_in)
    message.save(update_fields=["attempts", "available_at"])
    return WebhookOutcome("retry", attempts, retry_in)
