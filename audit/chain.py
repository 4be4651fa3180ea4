"""The hash chain over audit events: the canonical encoding, the chain head, the sealer's lock, and sealing.

``record`` inserts events with ids from the sequence and no lock, so audited requests never queue behind each
other. Shortly after commit one sealer (a PostgreSQL advisory lock keeps it to one; on SQLite, the write lock that
every transaction takes at BEGIN IMMEDIATE, see isn.settings) links the unsealed events in
``id`` order: ``hash = SHA-256(canonical encoding of the event's content and the previous event's hash)``. An id
that never committed (a rolled-back act, or an event deleted before it was sealed) stalls sealing until the event
after it is older than ``ISN_AUDIT_GAP_GRACE_SECONDS``; the sealer then writes an explicit ``audit.chain.gap``
event with that id, so every number is accounted for and a silent deletion cannot hide between two sealed events.
While nothing is sealed yet, the chain starts only once no lower id can still commit (``_may_start_chain``).

The canonical encoding is the compact, key-sorted, ASCII JSON array ``[format, id, created_at, <content fields in
HASH_FIELDS order>, prev_hash]``: JSON strings are escaped and delimited, so no two different events encode alike.
Checkpoints (``audit.checkpoints``), verification (``audit.verify``) and archiving (``audit.archive``) build on this.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from audit.models import AuditArchive, AuditEvent, Outcome

logger = logging.getLogger(__name__)

FORMAT = "isn-audit-v1"
GENESIS_HASH = "0" * 64
GAP_ACTION = "audit.chain.gap"
GAP_DETAILS = {"reason": "id never committed"}
# Content covered by an event's hash, in encoding order. ``sealed_at`` is the sealer's bookkeeping, not content.
HASH_FIELDS: tuple[str, ...] = (
    "id",
    "created_at",
    "actor_user_id",
    "actor_api_key_id",
    "actor_label",
    "actor_agency_id",
    "actor_country",
    "action",
    "target_type",
    "target_id",
    "target_country",
    "outcome",
    "ip_address",
    "user_agent",
    "request_id",
    "details",
)
# An event as verification and archiving read it: its content, then its place in the chain.
ROW_FIELDS = (*HASH_FIELDS, "prev_hash", "hash")
PREV_HASH_INDEX, HASH_INDEX = len(HASH_FIELDS), len(HASH_FIELDS) + 1
# Any fixed 64-bit number, the same in every process: the key of the sealer's advisory lock.
SEALER_LOCK_KEY = 0x15A_A0D1_7C4A_1500
# The Celery task that runs seal_pending (audit.tasks): queued by name, so recording never imports the tasks.
SEAL_TASK = "audit.tasks.seal_events"
canonical_json = json.JSONEncoder(ensure_ascii=True, sort_keys=True, separators=(",", ":"), allow_nan=False).encode
_sha256 = hashlib.sha256


def iso_utc(moment: datetime) -> str:
    """A moment as ISO 8601 in UTC with microseconds: one spelling per instant."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def event_hash(values: Sequence[Any], prev_hash: str) -> str:
    """The hash of one event: ``values`` are its HASH_FIELDS as read from the database.

    ``created_at`` may come as a datetime or already spelled by ``iso_utc`` (verification has PostgreSQL spell it).
    """
    created_at = values[1]
    if type(created_at) is not str:
        created_at = iso_utc(created_at)
    payload = [FORMAT, values[0], created_at, *values[2:PREV_HASH_INDEX], prev_hash]
    return _sha256(canonical_json(payload).encode("ascii")).hexdigest()


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def try_sealer_lock() -> bool:
    """Take the sealer's lock for this transaction, or say another sealer holds it.

    On SQLite the transaction already holds the database's write lock (it began IMMEDIATE), so no other sealer,
    and no other writer, runs until it ends.
    """
    if not is_postgresql():
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SEALER_LOCK_KEY])
        return bool(cursor.fetchone()[0])


def wait_for_sealer_lock() -> None:
    """Take the sealer's lock for this transaction, waiting for a running sealer: the chain head stays put.

    On SQLite the transaction's BEGIN IMMEDIATE already waited for the write lock, and holds it.
    """
    if is_postgresql():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEALER_LOCK_KEY])


def latest_archive() -> AuditArchive | None:
    """The archive the chain in the database continues from, if events were ever archived."""
    return AuditArchive.objects.order_by("-last_event_id").first()


def chain_head() -> tuple[int | None, str]:
    """The id and hash of the last sealed event (or of the latest archive), or (None, GENESIS_HASH)."""
    head = AuditEvent.objects.exclude(hash="").order_by("-id").values_list("id", "hash").first()
    if head is not None:
        return head
    archive = latest_archive()
    if archive is not None:
        return archive.last_event_id, archive.last_hash
    return None, GENESIS_HASH


# --- sealing -----------------------------------------------------------------------------------------------------
@dataclass
class SealResult:
    sealed: int = 0
    gaps_filled: int = 0
    busy: bool = False  # another sealer held the lock; it will seal what this one would have
    # Where sealing waits: an id not yet committed and not yet old enough to be declared a gap, or, while nothing is
    # sealed, the first committed event, until no lower id can still commit.
    stalled_at: int | None = None
    head_id: int | None = None


def _unsealed(after: int | None, limit: int) -> list[tuple[Any, ...]]:
    queryset = AuditEvent.objects.filter(hash="")
    if after is not None:
        queryset = queryset.filter(id__gt=after)
    return list(queryset.order_by("id").values_list(*HASH_FIELDS)[:limit])


def _write_seals(seals: list[tuple[str, str, datetime, int]]) -> None:
    if not seals:
        return
    with connection.cursor() as cursor:
        cursor.executemany(
            "UPDATE audit_auditevent SET prev_hash = %s, hash = %s, sealed_at = %s WHERE id = %s AND hash = ''",
            seals,
        )
        if cursor.rowcount != len(seals):
            # Only possible if something else sealed under our lock: roll back rather than fork the chain.
            raise DatabaseError(f"audit sealer: expected to seal {len(seals)} events, sealed {cursor.rowcount}")


def _other_writers_in_flight() -> bool:
    """Whether another transaction has inserted audit events it has not yet committed (or rolled back).

    An insert draws its id from the sequence inside the INSERT, which first takes the table's ROW EXCLUSIVE lock and
    keeps it to the end of its transaction: with no such lock held elsewhere, every id drawn so far is committed or
    gone, and every id drawn later is higher than all of them. On SQLite the sealer holds the write lock.
    """
    if not is_postgresql():
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'relation' AND relation = %s::regclass"
            " AND mode = 'RowExclusiveLock' AND pid <> pg_backend_pid())",
            [AuditEvent._meta.db_table],
        )
        return bool(cursor.fetchone()[0])


def _may_start_chain(grace: timedelta) -> bool:
    """Whether an empty chain may start at the first committed unsealed event.

    Ids are drawn before commit, so a lower id may still commit after a higher one: the chain starts only when no
    other writer is in flight (checked before the events are read), or when its first event is older than the grace
    period that also governs gaps.
    """
    if not _other_writers_in_flight():
        return True
    first = _unsealed(None, 1)
    return bool(first) and timezone.now() - first[0][1] >= grace


def _fill_gap(first_id: int, next_id: int) -> bool:
    """Write gap events for ids first_id..next_id-1; False when one of them turns out to be in flight."""
    now = timezone.now()
    gaps = [
        AuditEvent(
            id=gap_id,
            created_at=now,
            actor_label="ISN",
            action=GAP_ACTION,
            outcome=Outcome.ERROR,
            details=dict(GAP_DETAILS),
        )
        for gap_id in range(first_id, next_id)
    ]
    try:
        # A savepoint: if the id's own transaction is still open, our insert waits for it (bounded by the
        # lock_timeout set by the sealer) and then either fails (it committed) or succeeds (it rolled back).
        with transaction.atomic():
            AuditEvent.objects.bulk_create(gaps, batch_size=1000)
    except (IntegrityError, DatabaseError):
        logger.info("audit sealer: ids %s-%s are still in flight; sealing waits for them", first_id, next_id - 1)
        return False
    logger.warning("audit sealer: ids %s-%s never committed; recorded as gap events", first_id, next_id - 1)
    return True


def seal_pending(*, batch_size: int = 2000, max_events: int = 200_000) -> SealResult:
    """Link unsealed events into the chain in id order; one sealer at a time, idempotent, safe to run anywhere."""
    result = SealResult()
    grace = timedelta(seconds=settings.ISN_AUDIT_GAP_GRACE_SECONDS)
    with transaction.atomic():
        if not try_sealer_lock():
            result.busy = True
            return result
        if is_postgresql():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '2s'")
        head_id, head_hash = chain_head()
        if head_id is None and not _may_start_chain(grace):
            first = _unsealed(None, 1)
            result.stalled_at = first[0][0] if first else None
            return result
        while result.sealed < max_events:
            rows = _unsealed(head_id, min(batch_size, max_events - result.sealed))
            if not rows:
                break
            now = timezone.now()
            seals: list[tuple[str, str, datetime, int]] = []
            gap: tuple[int, int] | None = None
            for row in rows:
                event_id = row[0]
                if head_id is not None and event_id != head_id + 1:
                    gap = (head_id + 1, event_id)
                    break
                digest = event_hash(row, head_hash)
                seals.append((head_hash, digest, now, event_id))
                head_id, head_hash = event_id, digest
            _write_seals(seals)
            result.sealed += len(seals)
            if gap is not None:
                first_missing, next_present = gap
                next_created_at = rows[len(seals)][1]
                if timezone.now() - next_created_at < grace or not _fill_gap(first_missing, next_present):
                    result.stalled_at = first_missing
                    break
                result.gaps_filled += next_present - first_missing
            elif len(rows) < batch_size:
                break
        result.head_id = head_id
    return result
