"""Webhooks: telling an agency's own system about items, by a signed HTTP POST.

The body is JSON with the same facts as any notification (id, priority, category, originating country, link) and
never content. It is signed with HMAC-SHA256 under the agency's secret over ``timestamp + "." + body``; the
receiver checks ``X-ISN-Signature: sha256=<hex>`` and rejects an old ``X-ISN-Timestamp`` (replay).
``X-ISN-Delivery`` is the same on every retry of one call, so a receiver can drop a repeat: delivery is at least
once (a worker killed after the POST and before recording it sends the call again).

A failed call is retried with exponential back-off up to ``ISN_WEBHOOK_MAX_ATTEMPTS`` tries, then dead-lettered: a
``WebhookDeadLetter`` row the agency's admins see. The attempt count lives on the outbox row, not in the broker, so
a lost retry message is picked up by the relay and carries on from the same count.

Where a call may go (server-side request forgery): the URL is https without credentials, and unless
``ISN_WEBHOOK_ALLOW_PRIVATE_TARGETS`` (development and tests only, by default) its host must resolve to public
unicast addresses only: no loopback, private, shared, link-local, multicast, reserved or unique-local address, no
IPv4-mapped, 6to4 or NAT64 form of one, no cloud metadata address. It is checked when an admin sets the URL and
again at every call, which connects to the very addresses it just checked (TLS still verifies the host name, sent
as SNI and ``Host``), so a name that resolves elsewhere a second later (DNS rebinding) cannot redirect the call.
Redirects are never followed and no proxy from the environment is used.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import secrets
import socket
import ssl
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from agencies.models import Membership
from agencies.selectors import delivery_admin_membership
from audit.models import Outcome
from audit.services import record
from isn.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from messaging.core.outbox import outbox_add, outbox_done, outbox_publish
from messaging.core.release import release_of
from messaging.core.sealing import webhook_secret_opened, webhook_secret_sealed
from messaging.delivery.notifications import facts_for
from messaging.delivery.routing import WEBHOOK_REVOKED
from messaging.models import (
    AgencyWebhook,
    Item,
    OutboxKind,
    OutboxMessage,
    WebhookDeadLetter,
)
from messaging.models.delivery import Delivery

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser
    from django.db.models import QuerySet

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-ISN-Signature"
TIMESTAMP_HEADER = "X-ISN-Timestamp"
DELIVERY_HEADER = "X-ISN-Delivery"
EVENT_HEADER = "X-ISN-Event"
# Ids an event may carry beside its item's facts, sent as ``consent`` and ``rfi``.
ABOUT_IDS = ("consent_id", "rfi_id")
# What else an event may name, sent under its own name: a hit's reference (``hit.on_item``).
ABOUT_NAMES = ("hit_reference",)


def _new_secret(agency_id: int) -> tuple[str, int, bytes]:
    """A fresh signing secret, and the same sealed under the master key for storing (with the key's version)."""
    secret = secrets.token_urlsafe(32)
    return secret, *webhook_secret_sealed(agency_id, secret)


def webhook_secret(webhook: AgencyWebhook) -> bytes:
    return webhook_secret_opened(webhook.agency_id, webhook.secret_master_version, webhook.secret_sealed)


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


# --- where a call may go -------------------------------------------------------------------------------------------

# Cloud instance metadata services (AWS, Azure, GCP, Oracle; ECS tasks; Alibaba; AWS over IPv6). Most are link-local
# or shared space anyway; named so that no future change to the general rules lets them through.
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in ("169.254.169.254", "169.254.170.2", "169.254.170.23", "100.100.100.200", "fd00:ec2::254")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known prefix: the last 32 bits are an IPv4 address
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")  # a network's own translator: never public
_MAX_ADDRESSES = 4  # tried in turn at connect time; bounds one call's time to a few timeouts


class WebhookTargetRefused(InvalidInput):
    """The webhook URL may not be called: wrong scheme, credentials, or a host that is not public.

    ``reason`` is a short code, safe for a dead letter's ``last_error``."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message, extra={"fields": {"url": [message]}})
        self.reason = reason


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A public unicast address, on its own and in any IPv4 form it embeds."""
    if address in _METADATA_ADDRESSES:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if address in _LOCAL_NAT64 or address.is_site_local:
            return False
        if address in _NAT64:  # a DNS64 resolver's answer: as public as the IPv4 address it stands for
            return is_public_address(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None and not is_public_address(embedded):
            return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


@dataclass(frozen=True)
class WebhookTarget:
    """A checked webhook URL: where to connect (``addresses``) and what to call it (``host``, ``path``)."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


def _parse_url(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit((url or "").strip())
    schemes = ("https", "http") if settings.ISN_WEBHOOK_ALLOW_HTTP else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise WebhookTargetRefused("The webhook URL must be an https:// URL.", reason="scheme")
    if parts.username is not None or parts.password is not None:
        raise WebhookTargetRefused(
            "Put no credentials in the webhook URL; the signature authenticates ISN.", reason="credentials"
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise WebhookTargetRefused("The webhook URL's port is not valid.", reason="port") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port, path


def _resolve(host: str, port: int) -> tuple[str, ...]:
    """Every address the host resolves to (an IP literal resolves to itself), in the resolver's order, once each."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise WebhookTargetRefused("The webhook URL's host name could not be resolved.", reason="unresolved") from None
    return tuple(dict.fromkeys(str(info[4][0]) for info in infos))


def webhook_target(url: str, *, resolve: bool = True) -> WebhookTarget:
    """Check a webhook URL and resolve its host once; WebhookTargetRefused says why it may not be called.

    Unless private targets are allowed, every address the name resolves to must be public: a name with one public
    and one internal address is refused, since either could be the one connected to."""
    scheme, host, port, path = _parse_url(url)
    if not resolve:
        return WebhookTarget(scheme, host, port, path, ())
    addresses = _resolve(host, port)
    if not addresses:
        raise WebhookTargetRefused("The webhook URL's host name could not be resolved.", reason="unresolved")
    if not settings.ISN_WEBHOOK_ALLOW_PRIVATE_TARGETS:
        for address in addresses:
            if not is_public_address(ipaddress.ip_address(address)):
                raise WebhookTargetRefused(
                    "The webhook URL must point to a public address, not to a loopback, private, link-local or "
                    "other internal one.",
                    reason="not a public address",
                )
    return WebhookTarget(scheme, host, port, path, addresses[:_MAX_ADDRESSES])


def _check_url(url: str) -> str:
    url = (url or "").strip()
    # With private targets allowed (development, tests) there is nothing to learn from resolving now; the call
    # resolves anyway.
    webhook_target(url, resolve=not settings.ISN_WEBHOOK_ALLOW_PRIVATE_TARGETS)
    return url


@transaction.atomic
def webhook_configure(*, actor: AbstractBaseUser, url: str, is_active: bool = True) -> tuple[AgencyWebhook, str]:
    """An agency admin (or an agency system by a key with the admin scope) sets the agency's webhook URL; a new
    signing secret is made and returned this once."""
    membership = delivery_admin_membership(actor)
    if membership is None:
        raise PermissionDenied("Only an agency admin may configure the agency's webhook.")
    url = _check_url(url)
    secret, master_version, sealed = _new_secret(membership.agency_id)
    webhook, created = AgencyWebhook.objects.update_or_create(
        agency_id=membership.agency_id,
        defaults={"url": url, "is_active": is_active, "secret_sealed": sealed, "secret_master_version": master_version},
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
    membership = delivery_admin_membership(viewer)
    if membership is None:
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


# --- an agency admin's view of the webhook ----------------------------------------------------------------------

WEBHOOK_NOT_FOUND = "No such webhook."
DEAD_LETTER_NOT_FOUND = "No such failed webhook call."
_MAX_ID = 2**63 - 1


def _admin_membership(actor: AbstractBaseUser, message: str) -> Membership:
    membership = delivery_admin_membership(actor)
    if membership is None:
        raise PermissionDenied(message)
    return membership


def _as_id(value: object) -> int | None:
    text = str(value)
    return int(text) if text.isdigit() and int(text) <= _MAX_ID else None


def webhooks_visible_to(viewer: AbstractBaseUser) -> QuerySet[AgencyWebhook]:
    """The webhook of the viewer's own agency (at most one), for its agency admins and admin-scoped keys; nobody else
    sees any."""
    membership = delivery_admin_membership(viewer)
    if membership is None:
        return AgencyWebhook.objects.none()
    return AgencyWebhook.objects.filter(agency_id=membership.agency_id)


def _visible_webhook(actor: AbstractBaseUser, webhook_id: object, *, lock: bool) -> AgencyWebhook:
    pk = _as_id(webhook_id)
    webhooks = webhooks_visible_to(actor)
    webhook = (webhooks.select_for_update() if lock else webhooks).filter(pk=pk).first() if pk else None
    if webhook is None:
        raise NotFound(WEBHOOK_NOT_FOUND)
    return webhook


@transaction.atomic
def webhook_view(*, actor: AbstractBaseUser, webhook_id: object | None = None) -> list[AgencyWebhook]:
    """The agency's webhook as its admin sees it (URL and state, never the secret), recorded."""
    _admin_membership(actor, "Only an agency admin may see the agency's webhook.")
    webhooks = (
        list(webhooks_visible_to(actor)) if webhook_id is None else [_visible_webhook(actor, webhook_id, lock=False)]
    )
    record(
        action="messaging.webhook.view",
        actor=actor,
        target_type="messaging.agencywebhook",
        target_id=webhooks[0].pk if len(webhooks) == 1 else "",
        details={"ids": [webhook.pk for webhook in webhooks]},
    )
    return webhooks


@transaction.atomic
def webhook_delete(*, actor: AbstractBaseUser, webhook_id: object) -> None:
    """An agency admin removes the agency's webhook; calls still queued are dropped when their turn comes."""
    membership = _admin_membership(actor, "Only an agency admin may remove the agency's webhook.")
    webhook = _visible_webhook(actor, webhook_id, lock=True)
    record(
        action="messaging.webhook.delete",
        actor=actor,
        target=webhook,
        target_country=membership.agency.country_id,
        details={"host": urlsplit(webhook.url).hostname, "agency_id": webhook.agency_id},
    )
    webhook.delete()


@transaction.atomic
def webhook_rotate_secret(*, actor: AbstractBaseUser, webhook_id: object) -> tuple[AgencyWebhook, str]:
    """A new signing secret for the agency's webhook, returned this once; the old one stops signing at once."""
    membership = _admin_membership(actor, "Only an agency admin may rotate the webhook's secret.")
    webhook = _visible_webhook(actor, webhook_id, lock=True)
    secret, webhook.secret_master_version, webhook.secret_sealed = _new_secret(webhook.agency_id)
    webhook.save(update_fields=["secret_sealed", "secret_master_version", "updated_at"])
    record(
        action="messaging.webhook.rotate_secret",
        actor=actor,
        target=webhook,
        target_country=membership.agency.country_id,
        details={"agency_id": webhook.agency_id},
    )
    return webhook, secret


def _news_of_item(letter: WebhookDeadLetter) -> bool:
    """Whether the call told an agency about an item it held (routed, forwarded, changed, escalated): such news is
    sent again only while the agency may still see the item. Losing it (``item.revoked``), its own item's
    acknowledgement, and consent and RFI events are the agency's whatever it holds now."""
    return (
        letter.item is not None
        and letter.event.startswith("item.")
        and letter.event not in (WEBHOOK_REVOKED, "item.acknowledged")
        and letter.agency_id != letter.item.originator_agency_id
    )


@transaction.atomic
def webhook_dead_letter_retry(*, actor: AbstractBaseUser, dead_letter_id: object) -> OutboxMessage:
    """Queue a dead-lettered call again (with its original delivery id when its outbox row is still kept).

    Only while the agency's webhook is active and, for news of an item, the item is still released to the agency:
    a retry must not tell an agency about an item it has lost since."""
    membership = _admin_membership(actor, "Only an agency admin may retry the agency's failed webhook calls.")
    pk = _as_id(dead_letter_id)
    letter = (
        WebhookDeadLetter.objects.select_for_update(of=("self",))
        .filter(pk=pk, agency_id=membership.agency_id)
        .select_related("item", "rfi")
        .first()
        if pk
        else None
    )
    if letter is None:
        raise NotFound(DEAD_LETTER_NOT_FOUND)
    if not AgencyWebhook.objects.filter(agency_id=letter.agency_id, is_active=True).exists():
        raise Conflict("Your agency has no active webhook to call; set one first.")
    if _news_of_item(letter) and not release_of(letter.item).agency_holds(
        letter.agency_id, membership.agency.country_id
    ):
        raise Conflict("The item is no longer released to your agency: there is nothing to send again.")
    now = timezone.now()
    message = (
        OutboxMessage.objects.select_for_update().filter(pk=letter.outbox_message_id).first()
        if letter.outbox_message_id
        else None
    )
    if message is not None:
        # The same row, so the same X-ISN-Delivery: a receiver that did get an earlier try can drop this one.
        message.attempts = 0
        message.available_at = now
        message.published_at = None
        message.processed_at = None
        message.save(update_fields=["attempts", "available_at", "published_at", "processed_at"])
        queued = message.pk
        transaction.on_commit(lambda: outbox_publish([queued]))
    else:  # pruned since (ISN_OUTBOX_KEEP_DAYS): a new row, a new delivery id
        message = outbox_add(
            kind=OutboxKind.NOTIFY_WEBHOOK,
            item=letter.item if letter.item is not None else letter.rfi,
            payload=letter.payload
            or {"item_id": str(letter.item_id), "agency_id": letter.agency_id, "event": letter.event},
        )
    record(
        action="messaging.webhook.dead_letter_retry",
        actor=actor,
        target=letter.item if letter.item is not None else letter.rfi,
        target_country=membership.agency.country_id if letter.item is None else letter.item.originator_country,
        details={
            "dead_letter_id": letter.pk,
            "agency_id": letter.agency_id,
            "event": letter.event,
            "outbox_id": message.pk,
        },
    )
    letter.delete()
    return message


# --- sending -----------------------------------------------------------------------------------------------------


def _connect(addresses: tuple[str, ...], port: int, timeout: float) -> socket.socket:
    """A TCP connection to the first of these checked addresses that answers; never a fresh name lookup."""
    failure: OSError = OSError("no address to connect to")
    for address in addresses:
        try:
            sock = socket.create_connection((address, port), timeout=timeout)
        except OSError as exc:
            failure = exc
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise failure


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Plain HTTP (development only) to a checked address, with the URL's name in ``Host``."""

    def __init__(self, target: WebhookTarget, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._isn_addresses = target.addresses

    def connect(self) -> None:
        self.sock = _connect(self._isn_addresses, self.port, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a checked address; the certificate is verified for the URL's name, which is also the SNI."""

    def __init__(self, target: WebhookTarget, timeout: float) -> None:
        self._isn_context = ssl.create_default_context()
        super().__init__(target.host, target.port, timeout=timeout, context=self._isn_context)
        self._isn_addresses = target.addresses

    def connect(self) -> None:
        sock = _connect(self._isn_addresses, self.port, self.timeout)
        try:
            self.sock = self._isn_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


def post_to(target: WebhookTarget, body: bytes, headers: dict[str, str]) -> str | None:
    """POST once to a checked target; None on a 2xx answer, else a short reason (status or error class, never a
    response body). http.client follows no redirect: a 3xx is a failure, so the signed body is never replayed to
    wherever a receiver points, and no proxy from the environment is involved."""
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(target, timeout=settings.ISN_WEBHOOK_TIMEOUT_SECONDS)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return type(exc).__name__
    finally:
        connection.close()
    return None if 200 <= status < 300 else f"HTTP {status}"


def _post(url: str, body: bytes, headers: dict[str, str]) -> str | None:
    """Check the URL and resolve its host again (what was public when configured may not be now), then POST."""
    try:
        target = webhook_target(url)
    except WebhookTargetRefused as exc:
        return f"refused: {exc.reason}"
    return post_to(target, body, headers)


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
    item = Item.objects.filter(pk=message.item_id).first() if message.item_id else None
    event = message.payload["event"]
    body = json.dumps(
        {
            "event": event,
            "delivery": str(message.pk),
            "agency": webhook.agency_id,
            "item": None if item is None else asdict(facts_for(item, leaves_network=True)),
            # What else the event is about, by id: a consent request, a request for information.
            **{name[: -len("_id")]: message.payload[name] for name in ABOUT_IDS if message.payload.get(name)},
            **{name: message.payload[name] for name in ABOUT_NAMES if message.payload.get(name)},
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
def _after_try(
    outbox_id: int, item: Item | None, webhook: AgencyWebhook, event: str, failure: str | None
) -> WebhookOutcome:
    message = OutboxMessage.objects.select_for_update(of=("self",)).select_related("rfi").get(pk=outbox_id)
    attempts = message.attempts + 1
    details = {"event": event, "agency_id": webhook.agency_id, "outbox_id": outbox_id, "attempt": attempts}
    # Filed under the item's originating country, or for a free-standing request, the asking country.
    subject = item if item is not None else message.rfi
    country = item.originator_country if item is not None else message.rfi.requester_country
    if failure is None:
        outbox_done(message)
        if item is not None:
            Delivery.objects.filter(item=item, agency_id=webhook.agency_id, notified_at__isnull=True).update(
                notified_at=timezone.now()
            )
        record(
            action="messaging.notification.webhook",
            actor=None,
            target=subject,
            target_country=country,
            details=details,
        )
        return WebhookOutcome("sent", attempts)
    if attempts >= settings.ISN_WEBHOOK_MAX_ATTEMPTS:
        outbox_done(message)
        WebhookDeadLetter.objects.create(
            agency_id=webhook.agency_id,
            item=item,
            rfi=message.rfi,
            payload=message.payload,
            outbox_message=message,
            event=event,
            attempts=attempts,
            last_error=failure[:100],
        )
        record(
            action="messaging.notification.dead_letter",
            actor=None,
            target=subject,
            target_country=country,
            outcome=Outcome.ERROR,
            details={**details, "error": failure},
        )
        logger.warning("webhook: agency %s gave up after %d tries (%s)", webhook.agency_id, attempts, failure)
        return WebhookOutcome("dead", attempts)
    retry_in = backoff(attempts)
    record(
        action="messaging.notification.webhook",
        actor=None,
        target=subject,
        target_country=country,
        outcome=Outcome.ERROR,
        details={**details, "error": failure, "retry_in": retry_in},
    )
    message.attempts = attempts
    message.available_at = timezone.now() + timedelta(seconds=retry_in)
    message.save(update_fields=["attempts", "available_at"])
    return WebhookOutcome("retry", attempts, retry_in)
