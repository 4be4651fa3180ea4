"""``record``: the one way any part of ISN writes an audit event."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from agencies.selectors import membership_for
from audit.actions import kind_of
from audit.chain import SEAL_TASK
from audit.ledger import LEDGER_ACTIONS, ledger_on_commit
from audit.models import AuditEvent, Outcome
from isn import broker
from isn.middleware import current_request

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

# Control characters, and Unicode line and paragraph separators: none may reach a log line or an export.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MAX_DETAIL_TEXT = 500

logger = logging.getLogger(__name__)
# Sealing is queued at most this often per process (beat seals every 5 s in any case), and not at all for a while
# after the broker failed, so a broker outage costs one request at most one connection timeout per back-off.
_SEAL_QUEUE_INTERVAL = 0.5
_next_seal_queue_at = 0.0


def neutralise(text: str, *, limit: int = _MAX_DETAIL_TEXT) -> str:
    """Text from a request made safe for logs and exports: no line breaks or control characters, bounded length."""
    return _UNSAFE.sub(" ", str(text))[:limit]


def _clean_details(value: Any) -> Any:
    if isinstance(value, str):
        return neutralise(value)
    if isinstance(value, Mapping):
        return {neutralise(str(key), limit=100): _clean_details(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean_details(item) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return neutralise(str(value))


def _queue_sealing() -> None:
    """After commit: ask a worker to seal the new events into the chain now, rather than at beat's next tick.

    Through the shared broker breaker, so a broker outage costs this process one failed attempt per back-off in
    all, whoever publishes; beat seals whatever this would have.
    """
    global _next_seal_queue_at  # per-process throttle; a race only sends one task too many
    now = time.monotonic()
    if now < _next_seal_queue_at:
        return
    _next_seal_queue_at = now + _SEAL_QUEUE_INTERVAL
    broker.publish(SEAL_TASK, [], queue="default")


def _actor_fields(actor: AbstractBaseUser | AnonymousUser | None) -> dict[str, Any]:
    if actor is None:
        return {"actor_label": "ISN"}
    if not actor.is_authenticated:
        return {"actor_label": "anonymous"}
    fields: dict[str, Any] = {
        "actor_user_id": actor.pk,
        "actor_label": neutralise(actor.get_username(), limit=150),
        "actor_api_key_id": getattr(actor, "isn_api_key_id", None),  # set by agencies.authentication
    }
    membership = membership_for(actor)
    if membership is not None:
        fields["actor_agency_id"] = membership.agency_id
        fields["actor_country"] = membership.agency.country_id
    return fields


def record(
    *,
    action: str,
    actor: AbstractBaseUser | AnonymousUser | None,
    target: Model | None = None,
    target_type: str = "",
    target_id: str | int = "",
    target_country: str = "",
    outcome: str = Outcome.OK,
    details: Mapping[str, Any] | None = None,
    actor_label: str = "",
) -> AuditEvent:
    """Write one audit event in the caller's transaction; if this fails, the caller's act fails with it.

    ``action`` is a stable dotted code (``messaging.item.read``) registered in ``audit.actions``: any other code
    raises UnregisteredActionError and nothing is written. ``actor`` None means ISN itself; an anonymous
    user is recorded as anonymous with ``actor_label`` (e.g. the username tried at a failed sign-in).
    ``details`` must never hold intelligence content or secrets: ids, codes and counts only.
    """
    kind_of(action)  # refuses an unregistered code before anything is written
    if not connection.in_atomic_block:
        # Outside a transaction there is no act to bind to: make one, so the event is at least atomic.
        with transaction.atomic():
            return record(
                action=action,
                actor=actor,
                target=target,
                target_type=target_type,
                target_id=target_id,
                target_country=target_country,
                outcome=outcome,
                details=details,
                actor_label=actor_label,
            )
    event = _event(
        action=action,
        actor_fields=_actor_fields(actor),
        target=target,
        target_type=target_type,
        target_id=target_id,
        target_country=target_country,
        outcome=outcome,
        details=details,
        actor_label=actor_label,
    )
    event.save(force_insert=True)
    _after_insert([event])
    return event


def record_each(
    *,
    action: str,
    actor: AbstractBaseUser | AnonymousUser | None,
    targets: Sequence[tuple[Model, str, Mapping[str, Any]]],
    outcome: str = Outcome.OK,
) -> list[AuditEvent]:
    """One event of ``action`` per (target, target country, details), written in one statement in the caller's
    transaction: an act that touches many things at once (the hits of one check, each filed under its holder's
    country). Same rules as ``record``; the caller must be in a transaction."""
    kind_of(action)
    if not connection.in_atomic_block:
        raise RuntimeError("record_each writes in the caller's transaction; open one first")
    if not targets:
        return []
    actor_fields = _actor_fields(actor)
    events = [
        _event(
            action=action,
            actor_fields=actor_fields,
            target=target,
            target_country=target_country,
            outcome=outcome,
            details=details,
        )
        for target, target_country, details in targets
    ]
    AuditEvent.objects.bulk_create(events)
    _after_insert(events)
    return events


def _event(
    *,
    action: str,
    actor_fields: dict[str, Any],
    target: Model | None,
    target_type: str = "",
    target_id: str | int = "",
    target_country: str = "",
    outcome: str,
    details: Mapping[str, Any] | None,
    actor_label: str = "",
) -> AuditEvent:
    """An unsaved event, every field made safe."""
    if outcome not in Outcome.values:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target_id or target.pk
    context = current_request()
    fields = dict(actor_fields)
    if actor_label:
        fields["actor_label"] = neutralise(actor_label, limit=150)
    return AuditEvent(
        created_at=timezone.now(),
        action=action,
        target_type=neutralise(target_type, limit=50),
        target_id=neutralise(str(target_id), limit=64),
        target_country=neutralise(target_country, limit=2),
        outcome=outcome,
        ip_address=context.ip,
        user_agent=neutralise(context.user_agent, limit=256),
        request_id=context.request_id if context.request_id != "-" else "",
        details=_clean_details(dict(details or {})),
        **fields,
    )


def _after_insert(events: Sequence[AuditEvent]) -> None:
    transaction.on_commit(_queue_sealing)
    for event in events:
        if event.action in LEDGER_ACTIONS:
            ledger_on_commit(event)  # a shred (or a checkpoint) goes to the revocation ledger once it has committed
