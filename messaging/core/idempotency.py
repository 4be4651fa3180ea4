"""Exactly-once API writes: an ``Idempotency-Key`` claimed in the write's own transaction.

The claim is a row inserted before the write, in the same transaction. A concurrent request with the same caller and
key blocks on that row's unique index until the first commits (then it finds the first's record and replays it) or
rolls back (then its own insert goes through and it performs the write). A record holds no content: a hash of the
request and the status, type and id of what the write made.

**Claimed by the write itself.** Posting an item is the hot path of ingest, and a claim before it, a savepoint around
it and the outcome after it cost a keyed post four round trips more than a plain one (BENCHMARKS.md, "Agency
systems"). So ``item_create`` claims the key with its outcome in its own rows' statement: the API hands the claim
down (``idempotency_in_service``), the service takes it (``idempotency_pending``) and either claims the key with its
outcome at once or, finding it held, raises ``IdempotencyKeyHeld`` so that its whole write rolls back; the API then
takes the usual path, which replays, refuses or (a key past its window) performs the write again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from isn.errors import ApplicationError, InvalidInput
from messaging.core.sql import fetch_one
from messaging.models import IDEMPOTENCY_KEY_MAX_LENGTH, IdempotencyKey

# How long a key gives its first outcome again; older records may be purged (``idempotency_keys_purge``).
REPLAY_WINDOW = timedelta(hours=24)
# Visible ASCII: a UUID, a ULID or a client's own token; nothing that could break a log line.
_KEY = re.compile(rf"^[\x21-\x7e]{{1,{IDEMPOTENCY_KEY_MAX_LENGTH}}}$")


class IdempotencyKeyReused(ApplicationError):
    """The key was used before by this caller for a different request."""

    code = "idempotency_key_reused"
    status = 422


@dataclass(frozen=True)
class Caller:
    """Whose keys these are: a person, or one API key (acting through its service account ``user_id``)."""

    user_id: int
    api_key_id: int | None = None


@dataclass(frozen=True)
class Claim:
    """``record`` is this request's own (to complete) or, when ``earlier`` is true, the first outcome to replay."""

    record: IdempotencyKey
    earlier: bool


@dataclass
class PendingClaim:
    """A claim handed down to the service that writes ``resource_type``: it sets ``claimed`` once its write holds it."""

    caller: Caller
    key: str
    request_hash: str
    resource_type: str
    claimed: bool = False


class IdempotencyKeyHeld(Exception):
    """The service found its claim's key held already: its write rolls back, and the API takes the usual path."""


_PENDING: ContextVar[PendingClaim | None] = ContextVar("isn_idempotency_pending", default=None)


@contextmanager
def idempotency_in_service(claim: PendingClaim) -> Iterator[PendingClaim]:
    """Hand ``claim`` down to the service the block calls (see the module's docstring)."""
    token = _PENDING.set(claim)
    try:
        yield claim
    finally:
        _PENDING.reset(token)


def idempotency_pending(resource_type: str) -> PendingClaim | None:
    """For a service writing ``resource_type``: the claim handed down to it, when there is one not yet taken."""
    claim = _PENDING.get()
    if claim is None or claim.claimed or claim.resource_type != resource_type:
        return None
    return claim


def idempotency_key_checked(key: str) -> str:
    """The key as sent, or InvalidInput (400) when it is empty, too long or not visible ASCII."""
    if not _KEY.match(key):
        raise InvalidInput(
            f"The Idempotency-Key header must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} visible ASCII characters."
        )
    return key


def request_fingerprint(*, method: str, path: str, body: bytes) -> str:
    """SHA-256 (hex) of what makes two requests the same request."""
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def idempotency_claim(*, caller: Caller, key: str, request_hash: str) -> Claim:
    """Claim ``key`` for ``caller`` inside the write's transaction, or return the earlier outcome to replay.

    Waits while another transaction holds the same claim. The same key for another request is IdempotencyKeyReused.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("An idempotency key is claimed inside the transaction of the write it guards.")
    # Nearly every key is new: one statement claims it. Only a key held already takes the steps below.
    fresh = _claim_new(caller, key, request_hash)
    if fresh is not None:
        return Claim(record=fresh, earlier=False)
    mine = IdempotencyKey.objects.filter(user_id=caller.user_id, api_key_id=caller.api_key_id, key=key)
    mine.filter(created_at__lt=timezone.now() - REPLAY_WINDOW).delete()
    # ON CONFLICT DO NOTHING: blocks on a concurrent uncommitted claim of the same key, then does nothing if it
    # committed; the read below (a new statement, so a new snapshot) then sees the committed record.
    IdempotencyKey.objects.bulk_create(
        [IdempotencyKey(key=key, user_id=caller.user_id, api_key_id=caller.api_key_id, request_hash=request_hash)],
        ignore_conflicts=True,
    )
    record = mine.get()
    # A committed record always has its status (it is set in the claim's own transaction): null means ours.
    if record.response_status is None:
        return Claim(record=record, earlier=False)
    if record.request_hash != request_hash:
        raise IdempotencyKeyReused("This Idempotency-Key was used for a different request.")
    return Claim(record=record, earlier=True)


# The claim's fields in the order _claim_new gives their values.
_FIELDS = [
    "id", "key", "user_id", "api_key_id", "request_hash",
    "response_status", "resource_type", "resource_id", "created_at",
]  # fmt: skip
# ON CONFLICT DO NOTHING waits for a concurrent uncommitted claim of the same key, as the claim's insert does; a row
# back means the key was free (or that other claim rolled back) and is now this transaction's.
_CLAIM_SQL = """
    INSERT INTO messaging_idempotencykey
        (key, user_id, api_key_id, request_hash, response_status, resource_type, resource_id, created_at)
    VALUES (%(key)s, %(user)s, %(api_key)s, %(hash)s, NULL, '', '', %(now)s)
    ON CONFLICT DO NOTHING
    RETURNING id
"""


def _claim_new(caller: Caller, key: str, request_hash: str) -> IdempotencyKey | None:
    """The key claimed for ``caller`` in one statement, or None when a record holds it already."""
    now = timezone.now()
    params = {"key": key, "user": caller.user_id, "api_key": caller.api_key_id, "hash": request_hash, "now": now}
    row = fetch_one(_CLAIM_SQL, params)
    if row is None:
        return None
    values = [row[0], key, caller.user_id, caller.api_key_id, request_hash, None, "", "", now]
    return IdempotencyKey.from_db(connection.alias, _FIELDS, values)


def idempotency_complete(claim: Claim, *, status: int, resource_type: str, resource_id: str) -> None:
    """Record what the write made, in its transaction: the status and the resource's type and id, nothing else."""
    record = claim.record
    record.response_status = status
    record.resource_type = resource_type
    record.resource_id = resource_id
    record.save(update_fields=["response_status", "resource_type", "resource_id"])


def idempotency_release(claim: Claim) -> None:
    """The write was refused: drop the claim, so a retry performs it."""
    claim.record.delete()


def idempotency_keys_purge(*, now: datetime | None = None) -> int:
    """Delete records older than the replay window; the number deleted."""
    cutoff = (now or timezone.now()) - REPLAY_WINDOW
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
