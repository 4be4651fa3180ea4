"""The revocation ledger: a signed, hash-chained, append-only file of every shred, kept outside the database.

A backup holds the database as it was. Whatever was shredded after it (an item withdrawn or expired, a release
narrowed, a country key version retired) would come back with it; ``restore`` prevents that by applying every
ledger line whose act the restored database does not hold. The ledger also notes each signed checkpoint and each
restore, with the highest audit event id drawn at that moment, so a restore never hands out an event number that a
member may have checkpointed.

Lines are content-free: event ids, action codes, item and key ids, country codes, agency and user ids, times.

When a line is written: after the act commits (``transaction.on_commit``), from the act's own audit event, which
the act wrote in its transaction and which already carries every id the line needs. Not before commit: a
withdrawal must never be refused because a file (ideally on another host) is unreachable, and a line must never
name an act that was rolled back (a restore would then cut off readers the originator kept). If the append fails,
an error is logged (event id and action code only) and ``ledger_reconcile`` (beat, every minute, and at the start
of every backup) appends every ledger event of the audit trail the file lacks. What is left is the window between
a failed append and the next reconciliation, during which the database itself would have to be lost.

A line is canonical JSON with ``seq`` (1, 2, ...), ``prev`` (SHA-256 of the previous line, without its newline),
``key`` (the hex public key) and ``sig`` (Ed25519 by ``ISN_AUDIT_SIGNING_KEY`` over the line without ``sig``): a
line changed, dropped or moved in the middle breaks the chain. Dropping lines at the end is caught only as far as
a backup's manifest names a later line; ship the file to another host as it grows (README).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.chain import canonical_json, is_postgresql, iso_utc
from audit.keys import public_key_hex, signing_key, trusted_public_keys
from audit.models import AuditEvent

logger = logging.getLogger(__name__)

FORMAT = "isn-revocations-v1"
GENESIS = "0" * 64
_SIGNED_PREFIX = b"isn-revocation-ledger-v1\n"
RESTORE_ACTION = "audit.restore"
CHECKPOINT_ACTION = "audit.checkpoint.create"
# The acts that shred, and the details (ids and codes only) their lines keep.
REVOCATIONS: Mapping[str, tuple[str, ...]] = {
    "messaging.item.withdraw": ("shredded_countries",),
    "messaging.item.expire": ("shredded_countries",),
    "messaging.item.release_narrow": (
        "removed_countries",
        "removed_agencies",
        "restricted_to_agencies",
        "removed_named_users",
        "consented_countries_cut",
    ),
    "agencies.country_key.retire": ("version",),
}
# Every action whose event gets a line: the shreds, and the marks of how far the audit trail had gone.
LEDGER_ACTIONS: Mapping[str, tuple[str, ...]] = {
    **REVOCATIONS,
    CHECKPOINT_ACTION: ("last_event_id",),
    RESTORE_ACTION: ("backup_last_event_id", "ledger_entries_applied", "lost_from", "lost_to"),
}
_EVENT_FIELDS = ("id", "created_at", "action", "target_type", "target_id", "target_country", "details")


class LedgerError(Exception):
    """The ledger cannot be read, or does not verify: the message names the line and what is wrong."""


def ledger_path() -> Path:
    return Path(settings.ISN_REVOCATION_LEDGER)


def event_sequence() -> str | None:
    """The name of the audit events' id sequence on PostgreSQL (None elsewhere)."""
    if not is_postgresql():
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence('audit_auditevent', 'id')")
        return cursor.fetchone()[0]


def audit_head() -> int:
    """The highest audit event id handed out so far (committed or not): no later restore may hand it out again."""
    sequence = event_sequence()
    with connection.cursor() as cursor:
        if sequence is not None:
            cursor.execute(f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {sequence}")  # noqa: S608
            drawn = int(cursor.fetchone()[0])
        else:
            drawn = 0
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM audit_auditevent")
        return max(drawn, int(cursor.fetchone()[0]))


def entry_of(event: Mapping[str, Any]) -> dict[str, Any]:
    """A ledger line's content from an audit event's fields (before numbering, chaining and signing)."""
    keep = LEDGER_ACTIONS[event["action"]]
    details = event.get("details") or {}
    created_at = event["created_at"]
    return {
        "event_id": int(event["id"]),
        "event_at": created_at if isinstance(created_at, str) else iso_utc(created_at),
        "action": event["action"],
        "target_type": event.get("target_type") or "",
        "target_id": str(event.get("target_id") or ""),
        "target_country": event.get("target_country") or "",
        "details": {name: details[name] for name in keep if name in details},
    }


def _signed_bytes(line: Mapping[str, Any]) -> bytes:
    return _SIGNED_PREFIX + canonical_json({k: v for k, v in line.items() if k != "sig"}).encode("ascii")


def _last_line(handle: BinaryIO) -> bytes | None:
    """The file's last complete line (without its newline), read from the end."""
    handle.seek(0, os.SEEK_END)
    end = handle.tell()
    if end == 0:
        return None
    position, tail = end, b""
    while position > 0:
        step = min(4096, position)
        position -= step
        handle.seek(position)
        tail = handle.read(step) + tail
        body = tail[:-1] if tail.endswith(b"\n") else tail
        cut = body.rfind(b"\n")
        if cut >= 0:
            return body[cut + 1 :]
    return tail.rstrip(b"\n")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[BinaryIO]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o640)
    with os.fdopen(fd, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # every process appends through this lock
        try:
            yield handle
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def ledger_append(entries: Iterable[Mapping[str, Any]], *, head: int | None = None) -> int:
    """Number, chain, sign and append lines; flushed and fsynced before returning. Returns how many."""
    entries = list(entries)
    if not entries:
        return 0
    key = signing_key()
    public = public_key_hex(key)
    head = audit_head() if head is None else head
    with _locked(ledger_path()) as handle:
        last = _last_line(handle)
        if last is None:
            seq, prev = 0, GENESIS
        else:
            try:
                seq = int(json.loads(last)["seq"])
            except (ValueError, KeyError, TypeError):
                raise LedgerError("the last line of the revocation ledger is unreadable; nothing appended") from None
            prev = hashlib.sha256(last).hexdigest()
        out = b""
        for entry in entries:
            seq += 1
            line = {
                "format": FORMAT,
                "seq": seq,
                "at": iso_utc(timezone.now()),
                "audit_head": max(head, int(entry["event_id"])),
                **entry,
                "prev": prev,
                "key": public,
            }
            line["sig"] = key.sign(_signed_bytes(line)).hex()
            encoded = canonical_json(line).encode("ascii")
            prev = hashlib.sha256(encoded).hexdigest()
            out += encoded + b"\n"
        handle.seek(0, os.SEEK_END)
        handle.write(out)
        handle.flush()
        os.fsync(handle.fileno())
    return len(entries)


def _append_after_commit(entry: dict[str, Any]) -> None:
    try:
        ledger_append([entry])
    except Exception:  # noqa: BLE001 - never the act's failure: it committed; the reconciliation catches up
        logger.error(
            "revocation ledger: could not append event #%s (%s); the reconciliation will add it",
            entry["event_id"],
            entry["action"],
        )


def ledger_on_commit(event: AuditEvent) -> None:
    """Called by ``record`` for every ledger action: the line is appended once the act has committed."""
    entry = entry_of({name: getattr(event, name) for name in _EVENT_FIELDS})
    transaction.on_commit(lambda: _append_after_commit(entry), robust=True)


# --- reading and verifying ----------------------------------------------------------------------------------------
@dataclass
class LedgerReport:
    lines: list[dict[str, Any]] = field(default_factory=list)
    last_hash: str = GENESIS
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def by_seq(self, seq: int) -> dict[str, Any] | None:
        return self.lines[seq - 1] if 0 < seq <= len(self.lines) else None


def ledger_read(path: Path | None = None, *, trusted_keys: set[str] | None = None) -> LedgerReport:
    """Read and verify the whole ledger (a missing file is an empty ledger); stops at the first bad line."""
    path = path or ledger_path()
    keys = trusted_keys if trusted_keys is not None else trusted_public_keys()
    report = LedgerReport()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return report
    except OSError as exc:
        report.error = f"cannot read {path}: {exc.strerror}"
        return report
    if raw and not raw.endswith(b"\n"):
        report.error = f"line {len(raw.splitlines())} is incomplete (cut off while being written?)"
        return report
    prev = GENESIS
    for number, encoded in enumerate(raw.splitlines(), start=1):
        problem = _line_problem(encoded, number, prev, keys)
        if problem is not None:
            report.error = f"line {number}: {problem}"
            return report
        report.lines.append(json.loads(encoded))
        prev = hashlib.sha256(encoded).hexdigest()
    report.last_hash = prev
    return report


def _line_problem(encoded: bytes, number: int, prev: str, keys: set[str]) -> str | None:
    try:
        line = json.loads(encoded)
    except ValueError:
        return "not JSON"
    if not isinstance(line, dict) or line.get("format") != FORMAT:
        return f"not a {FORMAT} line"
    if canonical_json(line).encode("ascii") != encoded:
        return "not in canonical form"
    if line.get("seq") != number:
        return f"numbered {line.get('seq')!r}: a line before it was dropped or moved"
    if line.get("prev") != prev:
        return "does not follow the line before it (a line was changed, dropped or moved)"
    if line.get("key") not in keys:
        return "signed by a key that is not trusted (ISN_AUDIT_TRUSTED_PUBLIC_KEYS)"
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(line["key"])).verify(
            bytes.fromhex(line.get("sig", "")), _signed_bytes(line)
        )
    except (InvalidSignature, ValueError):
        return "its signature is invalid"
    return None


def ledger_position(report: LedgerReport) -> dict[str, Any]:
    """Where the ledger stands, for a backup's manifest: a later restore checks the ledger still extends it."""
    return {"seq": len(report.lines), "hash": report.last_hash}


def highest_known_event(lines: Iterable[Mapping[str, Any]]) -> int:
    """The highest audit event id the ledger shows was handed out or checkpointed."""
    highest = 0
    for line in lines:
        details = line.get("details") or {}
        highest = max(
            highest, int(line.get("audit_head") or 0), int(line.get("event_id") or 0), int(details.get("lost_to") or 0)
        )
    return highest


# --- reconciliation ----------------------------------------------------------------------------------------------
def ledger_reconcile(*, min_age_seconds: float = 30.0) -> int:
    """Append every ledger event of the audit trail that the ledger lacks (an append that failed after commit).

    Events younger than ``min_age_seconds`` are left to their own on-commit append. Returns how many were added.
    """
    report = ledger_read()
    if not report.ok:
        raise LedgerError(f"the revocation ledger does not verify: {report.error}")
    have = {int(line["event_id"]) for line in report.lines}
    cutoff = timezone.now() - timedelta(seconds=min_age_seconds)
    missing = [
        entry_of(dict(zip(_EVENT_FIELDS, row, strict=True)))
        for row in AuditEvent.objects.filter(action__in=list(LEDGER_ACTIONS), created_at__lte=cutoff)
        .exclude(id__in=have)
        .order_by("id")
        .values_list(*_EVENT_FIELDS)
    ]
    if missing:
        ledger_append(missing)
        logger.warning("revocation ledger: appended %d events the ledger lacked", len(missing))
    return len(missing)
