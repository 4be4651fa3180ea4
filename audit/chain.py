"""The hash chain over audit events: sealing, verification and archiving.

``record`` inserts events with ids from the sequence and no lock, so audited requests never queue behind each
other. Shortly after commit one sealer (a PostgreSQL advisory lock keeps it to one) links the unsealed events in
``id`` order: ``hash = SHA-256(canonical encoding of the event's content and the previous event's hash)``. An id
that never committed (a rolled-back act, or an event deleted before it was sealed) stalls sealing until the event
after it is older than ``ISN_AUDIT_GAP_GRACE_SECONDS``; the sealer then writes an explicit ``audit.chain.gap``
event with that id, so every number is accounted for and a silent deletion cannot hide between two sealed events.

The canonical encoding is the compact, key-sorted, ASCII JSON array ``[format, id, created_at, <content fields in
HASH_FIELDS order>, prev_hash]``: JSON strings are escaped and delimited, so no two different events encode alike.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from audit.models import AuditArchive, AuditCheckpoint, AuditEvent, Outcome

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
_ROW_FIELDS = (*HASH_FIELDS, "prev_hash", "hash")
_PREV, _HASH = len(HASH_FIELDS), len(HASH_FIELDS) + 1
# Any fixed 64-bit number, the same in every process: the key of the sealer's advisory lock.
SEALER_LOCK_KEY = 0x15A_A0D1_7C4A_1500
_encode = json.JSONEncoder(ensure_ascii=True, sort_keys=True, separators=(",", ":"), allow_nan=False).encode
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
    payload = [FORMAT, values[0], created_at, *values[2:_PREV], prev_hash]
    return _sha256(_encode(payload).encode("ascii")).hexdigest()


def _is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def _try_sealer_lock() -> bool:
    """Take the sealer's lock for this transaction, or say another sealer holds it. SQLite serialises writers."""
    if not _is_postgresql():
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SEALER_LOCK_KEY])
        return bool(cursor.fetchone()[0])


def _wait_for_sealer_lock() -> None:
    if _is_postgresql():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEALER_LOCK_KEY])


def latest_archive() -> AuditArchive | None:
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
    stalled_at: int | None = None  # an id not yet committed and not yet old enough to be declared a gap
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
        if not _try_sealer_lock():
            result.busy = True
            return result
        if _is_postgresql():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '2s'")
        head_id, head_hash = chain_head()
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


# --- verification ------------------------------------------------------------------------------------------------
ALTERED = "altered"
MISSING = "missing"
REORDERED = "reordered"
TRUNCATED = "truncated"
BAD_CHECKPOINT = "bad checkpoint"
BAD_ARCHIVE = "bad archive"


@dataclass(frozen=True)
class ChainError:
    event_id: int
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"event #{self.event_id}: {self.kind} ({self.detail})"


@dataclass(frozen=True)
class CheckpointClaim:
    """A signed checkpoint, from the database or from a file a member kept."""

    last_event_id: int
    chain_hash: str
    created_at: str
    public_key: str
    signature: str
    source: str = "database"

    @classmethod
    def from_row(cls, row: AuditCheckpoint) -> CheckpointClaim:
        return cls(row.last_event_id, row.chain_hash, iso_utc(row.created_at), row.public_key, row.signature)


@dataclass
class VerifyReport:
    checked: int = 0
    first_id: int | None = None
    last_id: int | None = None
    last_hash: str = GENESIS_HASH
    pending: int = 0
    checkpoints_checked: int = 0
    archived_through: int | None = None
    seconds: float = 0.0
    error: ChainError | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    def summary(self) -> str:
        if self.error is not None:
            return f"audit chain broken at {self.error}"
        rate = self.checked / self.seconds if self.seconds > 0 else 0.0
        span = f"#{self.first_id}-#{self.last_id}" if self.checked else "no sealed events"
        parts = [
            f"audit chain intact: {self.checked:,} events ({span}) in {self.seconds:.2f} s ({rate:,.0f} events/s)",
            f"{self.checkpoints_checked} checkpoints consistent",
        ]
        if self.archived_through is not None:
            parts.append(f"continues from the archive through #{self.archived_through}")
        parts.append(f"{self.pending} events awaiting sealing")
        return "; ".join(parts + self.notes)


def _classify_mismatch(row: Sequence[Any]) -> ChainError:
    """An event fails its hash: say whether its content belongs at another position (reordered) or was altered."""
    event_id = row[0]
    content = row[1:_PREV]
    window = (
        AuditEvent.objects.filter(id__gte=event_id - 256, id__lte=event_id + 256)
        .exclude(id=event_id)
        .order_by("id")
        .values_list("id", "prev_hash", "hash")
    )
    for other_id, other_prev, other_hash in window:
        # Moved together with its chain fields, or moved alone into the other event's place in the chain.
        if event_hash((other_id, *content), row[_PREV]) == row[_HASH] or (
            other_hash and event_hash((other_id, *content), other_prev) == other_hash
        ):
            return ChainError(event_id, REORDERED, f"it holds the content of event #{other_id}")
    return ChainError(event_id, ALTERED, "its content does not match its hash")


def _check_claim(claim: CheckpointClaim, trusted_keys: set[str] | None) -> ChainError | None:
    from audit.signing import checkpoint_signature_valid

    if trusted_keys is not None and claim.public_key not in trusted_keys:
        return ChainError(claim.last_event_id, BAD_CHECKPOINT, f"{claim.source} checkpoint is signed by an unknown key")
    if not checkpoint_signature_valid(claim):
        return ChainError(claim.last_event_id, BAD_CHECKPOINT, f"{claim.source} checkpoint signature is invalid")
    return None


def _check_archives(archives: list[AuditArchive], claims: dict[int, CheckpointClaim]) -> ChainError | None:
    """Archives follow each other without a hole, and each ends exactly at a checkpoint it agrees with."""
    expected_first: int | None = None
    for archive in sorted(archives, key=lambda a: a.last_event_id):
        if expected_first is not None and archive.first_event_id != expected_first:
            return ChainError(expected_first, MISSING, f"the archives skip from #{expected_first - 1}")
        claim = claims.get(archive.last_event_id)
        if claim is None or claim.chain_hash != archive.last_hash:
            return ChainError(archive.last_event_id, BAD_ARCHIVE, "its last hash is not a checkpoint's hash")
        expected_first = archive.last_event_id + 1
    return None


# PostgreSQL spells created_at exactly as iso_utc does, and hands over details as text: decoding timestamps and
# going through the ORM's converters cost more per row than hashing, and audit_verify must do >= 100,000 events/s.
_PG_ROW_COLUMNS = ", ".join(
    {
        "created_at": """to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')""",
        "details": "details::text",
    }.get(name, name)
    for name in _ROW_FIELDS
)


def _event_rows(start_id: int | None, chunk_size: int) -> Iterator[tuple[Any, ...]]:
    """Events as tuples of _ROW_FIELDS in id order, streamed through a server-side cursor: memory stays flat."""
    if not _is_postgresql():
        queryset = AuditEvent.objects.order_by("id")
        if start_id is not None:
            queryset = queryset.filter(id__gte=start_id)
        yield from queryset.values_list(*_ROW_FIELDS).iterator(chunk_size=chunk_size)
        return
    connection.ensure_connection()
    loads = json.loads
    details = _PREV - 1
    with connection.connection.cursor(name="audit_verify_events") as cursor:
        cursor.itersize = chunk_size
        cursor.execute(
            f"SELECT {_PG_ROW_COLUMNS} FROM audit_auditevent WHERE id >= %s ORDER BY id",  # noqa: S608 - fixed text
            [start_id if start_id is not None else -(2**63)],
        )
        for row in cursor:
            yield (*row[:details], loads(row[details]), row[_PREV], row[_HASH])


def verify_chain(
    *, checkpoint: CheckpointClaim | None = None, chunk_size: int = 10_000, trusted_keys: set[str] | None = None
) -> VerifyReport:
    """Recompute the chain from its start (or from the latest archive) and stop at the first bad event."""
    from audit.signing import trusted_public_keys

    started = time.perf_counter()
    report = VerifyReport()
    keys = trusted_keys if trusted_keys is not None else trusted_public_keys()
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and _is_postgresql():
            # One snapshot for checkpoints, archives and events: a concurrent archive cannot look like a hole.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        rows = AuditCheckpoint.objects.all()
        claims = {row.last_event_id: CheckpointClaim.from_row(row) for row in rows}
        archives = list(AuditArchive.objects.all())
        errors: list[ChainError] = []
        valid_claims = []
        for claim in [*claims.values(), *([checkpoint] if checkpoint else [])]:
            error = _check_claim(claim, keys if claim.source == "database" else None)
            if error is None:
                valid_claims.append(claim)
            else:
                errors.append(error)
        if (error := _check_archives(archives, claims)) is not None:
            errors.append(error)
        if (error := _verify_events(report, valid_claims, archives, chunk_size)) is not None:
            errors.append(error)
    report.error = min(errors, key=lambda e: e.event_id) if errors else None
    report.seconds = time.perf_counter() - started
    return report


def _verify_events(
    report: VerifyReport, claims: list[CheckpointClaim], archives: list[AuditArchive], chunk_size: int
) -> ChainError | None:
    archive = max(archives, key=lambda a: a.last_event_id, default=None)
    expected: int | None = None
    prev = GENESIS_HASH
    if archive is not None:
        expected, prev = archive.last_event_id + 1, archive.last_hash
        report.archived_through = archive.last_event_id
    # The hash each checkpoint claims at its event id, compared as the stream passes that id.
    wanted: dict[int, list[CheckpointClaim]] = {}
    for claim in claims:
        if archive is not None and claim.last_event_id <= archive.last_event_id:
            if claim.last_event_id == archive.last_event_id:
                if claim.chain_hash != archive.last_hash:
                    return ChainError(claim.last_event_id, BAD_CHECKPOINT, f"the {claim.source} checkpoint differs")
                report.checkpoints_checked += 1
            elif claim.source != "database":
                report.notes.append(f"the checkpoint file's #{claim.last_event_id} is archived: check the archive")
            continue
        wanted.setdefault(claim.last_event_id, []).append(claim)

    checked = 0
    first_unsealed: int | None = None
    last_id: int | None = None
    error: ChainError | None = None
    # Closed explicitly, also when we stop early: a server-side cursor must not outlive its transaction.
    with contextlib.closing(_event_rows(expected, chunk_size)) as rows:
        for row in rows:
            event_id = row[0]
            stored_hash = row[_HASH]
            if not stored_hash:
                if first_unsealed is None:
                    first_unsealed = event_id
                report.pending += 1
                continue
            if first_unsealed is not None:
                error = ChainError(first_unsealed, ALTERED, f"it is unsealed but the later event #{event_id} is sealed")
                break
            if expected is not None and event_id != expected:
                error = ChainError(expected, MISSING, f"the chain jumps from #{expected - 1} to #{event_id}")
                break
            if event_hash(row, row[_PREV]) != stored_hash:
                error = _classify_mismatch(row)
                break
            if row[_PREV] != prev:
                if last_id is None and archive is None:
                    detail = f"#{event_id} does not start the chain: events before it are gone"
                    error = ChainError(event_id - 1, MISSING, detail)
                else:
                    after = f"event #{last_id}" if last_id is not None else "the archive"
                    error = ChainError(event_id, REORDERED, f"it does not link to {after}")
                break
            if event_id in wanted:
                for claim in wanted.pop(event_id):
                    if claim.chain_hash != stored_hash:
                        detail = f"the chain differs from the {claim.source} checkpoint"
                        error = ChainError(event_id, BAD_CHECKPOINT, detail)
                        break
                    report.checkpoints_checked += 1
                if error is not None:
                    break
            if last_id is None:
                report.first_id = event_id
            prev, last_id, expected = stored_hash, event_id, event_id + 1
            checked += 1
    report.checked, report.last_id, report.last_hash = checked, last_id, prev
    if error is None and wanted:
        covered = min(wanted)
        end = f"#{last_id}" if last_id is not None else "nothing"
        source = wanted[covered][0].source
        error = ChainError(
            (last_id or 0) + 1, TRUNCATED, f"the chain ends at {end}; the {source} checkpoint covers #{covered}"
        )
    return error


# --- archiving ---------------------------------------------------------------------------------------------------
ARCHIVE_FIELDS = (*_ROW_FIELDS, "sealed_at")


def _archive_line(row: Sequence[Any]) -> bytes:
    event = dict(zip(ARCHIVE_FIELDS, row, strict=True))
    event["created_at"] = iso_utc(event["created_at"])
    event["sealed_at"] = iso_utc(event["sealed_at"])
    return _encode(event).encode("ascii") + b"\n"


def archive_create(*, before: datetime, actor: Any = None) -> AuditArchive:
    """Move sealed events older than ``before`` up to a checkpoint into a JSONL file, in one transaction.

    Only events older than ISN_AUDIT_RETENTION_DAYS go, and only up to a checkpoint made before ``before``, so the
    remaining chain starts exactly where a signed checkpoint (and the archive row) says the archived one ended.
    """
    from audit.services import record
    from isn.errors import Conflict, InvalidInput

    retention = timedelta(days=settings.ISN_AUDIT_RETENTION_DAYS)
    oldest_allowed = timezone.now() - retention
    if before > oldest_allowed:
        raise InvalidInput(
            f"events are kept {settings.ISN_AUDIT_RETENTION_DAYS} days (ISN_AUDIT_RETENTION_DAYS): "
            f"archive before {oldest_allowed.date().isoformat()} at the latest"
        )
    folder = Path(settings.ISN_AUDIT_ARCHIVE_DIR)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path: Path | None = None
    try:
        with transaction.atomic():
            _wait_for_sealer_lock()  # the sealer must not read the head while it moves into the archive
            previous = latest_archive()
            after = previous.last_event_id if previous is not None else 0
            checkpoint = (
                AuditCheckpoint.objects.filter(created_at__lt=before, last_event_id__gt=after)
                .order_by("-last_event_id")
                .first()
            )
            if checkpoint is None:
                raise InvalidInput(f"no checkpoint made before {iso_utc(before)} covers events not yet archived")
            rows = contextlib.closing(
                AuditEvent.objects.filter(id__gt=after, id__lte=checkpoint.last_event_id)
                .order_by("id")
                .values_list(*ARCHIVE_FIELDS)
                .iterator(chunk_size=10_000)
            )
            prev = previous.last_hash if previous is not None else GENESIS_HASH
            expected: int | None = after + 1 if previous is not None else None
            first_id: int | None = None
            count = 0
            digest = hashlib.sha256()
            path = folder / f"audit-events-{after + 1:012d}-{checkpoint.last_event_id:012d}.jsonl"
            # Closed explicitly: a server-side cursor left open past a rollback would poison the transaction.
            with open(path, "xb") as handle, rows as events:
                for row in events:
                    # Verify while writing: a broken chain must never be archived (its evidence would leave).
                    if (expected is not None and row[0] != expected) or row[_PREV] != prev or not row[_HASH]:
                        raise Conflict(f"the chain is broken near event #{row[0]}: run audit_verify")
                    if event_hash(row, prev) != row[_HASH]:
                        raise Conflict(f"the chain is broken at event #{row[0]}: run audit_verify")
                    line = _archive_line(row)
                    handle.write(line)
                    digest.update(line)
                    first_id = first_id or row[0]
                    prev, expected, count = row[_HASH], row[0] + 1, count + 1
                handle.flush()
                os.fsync(handle.fileno())
            if first_id is None or prev != checkpoint.chain_hash or expected != checkpoint.last_event_id + 1:
                raise Conflict(f"the chain does not reach checkpoint #{checkpoint.last_event_id}: run audit_verify")
            archive = AuditArchive.objects.create(
                first_event_id=first_id,
                last_event_id=checkpoint.last_event_id,
                last_hash=checkpoint.chain_hash,
                event_count=count,
                file_name=path.name,
                file_sha256=digest.hexdigest(),
                created_at=timezone.now(),
            )
            record(
                action="audit.archive.create",
                actor=actor,
                target=archive,
                details={
                    "first_event_id": first_id,
                    "last_event_id": checkpoint.last_event_id,
                    "event_count": count,
                    "file_sha256": archive.file_sha256,
                },
            )
            with connection.cursor() as cursor:
                if _is_postgresql():
                    cursor.execute("SET LOCAL isn.audit_archiving = 'on'")
                cursor.execute(
                    "DELETE FROM audit_auditevent WHERE id BETWEEN %s AND %s", [first_id, checkpoint.last_event_id]
                )
                if cursor.rowcount != count:
                    raise Conflict("events changed while they were archived; nothing was archived")
    except BaseException:
        if path is not None:
            path.unlink(missing_ok=True)
        raise
    logger.info("audit: archived events #%s-#%s (%d) to %s", first_id, archive.last_event_id, count, path.name)
    return archive
