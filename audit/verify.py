"""Verification of the audit chain: recompute every hash, and check the signed checkpoints and the archives.

``verify_chain`` is what ``manage.py audit_verify`` runs. It reads inside one snapshot, streams events through a
server-side cursor (memory stays flat), and stops at the first bad event, saying whether it was altered, is missing,
was moved, or whether the chain stops short of a checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction

from audit.chain import (
    GENESIS_HASH,
    HASH_INDEX,
    PREV_HASH_INDEX,
    ROW_FIELDS,
    event_hash,
    is_postgresql,
)
from audit.checkpoints import CheckpointClaim, checkpoint_signature_valid
from audit.keys import trusted_public_keys
from audit.models import AuditArchive, AuditCheckpoint, AuditEvent

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
    content = row[1:PREV_HASH_INDEX]
    window = (
        AuditEvent.objects.filter(id__gte=event_id - 256, id__lte=event_id + 256)
        .exclude(id=event_id)
        .order_by("id")
        .values_list("id", "prev_hash", "hash")
    )
    for other_id, other_prev, other_hash in window:
        # Moved together with its chain fields, or moved alone into the other event's place in the chain.
        if event_hash((other_id, *content), row[PREV_HASH_INDEX]) == row[HASH_INDEX] or (
            other_hash and event_hash((other_id, *content), other_prev) == other_hash
        ):
            return ChainError(event_id, REORDERED, f"it holds the content of event #{other_id}")
    return ChainError(event_id, ALTERED, "its content does not match its hash")


def _check_claim(claim: CheckpointClaim, trusted_keys: set[str] | None) -> ChainError | None:
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
    for name in ROW_FIELDS
)


def _event_rows(start_id: int | None, chunk_size: int) -> Iterator[tuple[Any, ...]]:
    """Events as tuples of ROW_FIELDS in id order, streamed through a server-side cursor: memory stays flat."""
    if not is_postgresql():
        queryset = AuditEvent.objects.order_by("id")
        if start_id is not None:
            queryset = queryset.filter(id__gte=start_id)
        yield from queryset.values_list(*ROW_FIELDS).iterator(chunk_size=chunk_size)
        return
    connection.ensure_connection()
    loads = json.loads
    details = PREV_HASH_INDEX - 1
    with connection.connection.cursor(name="audit_verify_events") as cursor:
        cursor.itersize = chunk_size
        cursor.execute(
            f"SELECT {_PG_ROW_COLUMNS} FROM audit_auditevent WHERE id >= %s ORDER BY id",  # noqa: S608 - fixed text
            [start_id if start_id is not None else -(2**63)],
        )
        for row in cursor:
            yield (*row[:details], loads(row[details]), row[PREV_HASH_INDEX], row[HASH_INDEX])


def verify_chain(
    *, checkpoint: CheckpointClaim | None = None, chunk_size: int = 10_000, trusted_keys: set[str] | None = None
) -> VerifyReport:
    """Recompute the chain from its start (or from the latest archive) and stop at the first bad event."""
    started = time.perf_counter()
    report = VerifyReport()
    keys = trusted_keys if trusted_keys is not None else trusted_public_keys()
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and is_postgresql():
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


_ACTION_INDEX, _DETAILS_INDEX = ROW_FIELDS.index("action"), ROW_FIELDS.index("details")
RESTORE_ACTION = "audit.restore"


def _restore_note(event_id: int, details: Any) -> str:
    details = details if isinstance(details, dict) else {}
    applied = details.get("ledger_entries_applied")
    return (
        f"event #{event_id}: restored from the backup taken at event #{details.get('backup_last_event_id')}"
        f" ({applied} revocation ledger entries applied again)"
    )


def _verify_events(
    report: VerifyReport, claims: list[CheckpointClaim], archives: list[AuditArchive], chunk_size: int
) -> ChainError | None:
    """Check every event's link and hash, and every checkpoint's claim as the stream passes its event id.

    Long because it is one pass over the chain, in chunks; split, the pass would be repeated or its state passed
    around."""
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
            stored_hash = row[HASH_INDEX]
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
            if event_hash(row, row[PREV_HASH_INDEX]) != stored_hash:
                error = _classify_mismatch(row)
                break
            if row[PREV_HASH_INDEX] != prev:
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
            if row[_ACTION_INDEX] == RESTORE_ACTION:
                report.notes.append(_restore_note(event_id, row[_DETAILS_INDEX]))
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
