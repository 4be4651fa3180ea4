"""Backups and the audit side of a restore.

A backup is a folder: ``database.dump`` (``pg_dump`` custom format, taken in a snapshot exported by the transaction
that also reads the chain head, so the manifest and the dump describe the same instant), ``audit-archive/`` (the
archived audit segments: the only files on disk the database refers to; attachments are sealed inside the
database), and ``manifest.json`` (when, what schema, the chain head, the ledger's position, and the SHA-256 of
every file). It never holds a key: the master key (or its PKCS#11 module) and the audit signing key stay apart.
The folder is written under a temporary name and renamed into place, so a folder with a manifest is complete.

A restore loads it into an empty database, then (``messaging.management.commands.restore``) re-applies the
revocation ledger and continues the audit chain above every event number handed out before the disaster.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.chain import GAP_ACTION, chain_head, iso_utc, latest_archive, wait_for_sealer_lock
from audit.ledger import (
    LedgerError,
    audit_head,
    event_sequence,
    ledger_position,
    ledger_read,
    ledger_reconcile,
)
from audit.models import AuditEvent, Outcome
from audit.services import record

MANIFEST = "manifest.json"
DUMP = "database.dump"
ARCHIVES = "audit-archive"
FORMAT = "isn-backup-v1"
LOST_DETAILS = {"reason": "lost with the database after the backup it was restored from"}


class BackupError(Exception):
    """A backup or restore cannot go on; the message says why, in one line, without content."""


# --- PostgreSQL's own tools ---------------------------------------------------------------------------------------
def _server_major() -> int:
    connection.ensure_connection()
    return int(connection.pg_version) // 10000


def pg_tool(name: str) -> str:
    """pg_dump or pg_restore of the server's major version (or newer): an older one cannot read the server."""
    major = _server_major()
    candidates = [Path(settings.ISN_PG_BIN_DIR) / name] if settings.ISN_PG_BIN_DIR else []
    candidates.append(Path(f"/usr/lib/postgresql/{major}/bin/{name}"))
    candidates += sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    found = shutil.which(name)
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if not candidate.is_file():
            continue
        version = subprocess.run(  # noqa: S603 - a PostgreSQL tool found above, fixed arguments
            [str(candidate), "--version"], capture_output=True, text=True, check=False
        ).stdout
        match = re.search(r"(\d+)(?:\.\d+)?", version)
        if match and int(match.group(1)) >= major:
            return str(candidate)
    raise BackupError(f"no {name} of PostgreSQL {major} or newer found (set ISN_PG_BIN_DIR)")


def _pg_connection() -> tuple[list[str], dict[str, str]]:
    """Connection arguments and environment for the PostgreSQL tools, from the Django database settings."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        raise BackupError("backup and restore need PostgreSQL (DATABASE_URL)")
    args = ["--dbname", db["NAME"]]
    if db.get("HOST"):
        args += ["--host", str(db["HOST"])]
    if db.get("PORT"):
        args += ["--port", str(db["PORT"])]
    if db.get("USER"):
        args += ["--username", str(db["USER"])]
    env = {**os.environ, "PGAPPNAME": "isn-backup"}
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    return args, env


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603 - pg tools
    if done.returncode != 0:
        # pg_dump's and pg_restore's messages name objects, never row content.
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise BackupError(f"{what} failed (exit {done.returncode}): {last}")


# --- files --------------------------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _files_of(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file() and path.name != MANIFEST)


# --- backup -------------------------------------------------------------------------------------------------------
def _migrations() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT app || '.' || name FROM django_migrations ORDER BY app, name")
        return [row[0] for row in cursor.fetchall()]


def backup_create(*, to: Path, actor: Any = None) -> dict[str, Any]:
    """Write a backup folder at ``to`` (which must not exist yet); returns its manifest."""
    require_postgresql()
    to = to.resolve()
    if to.exists():
        raise BackupError(f"{to} exists already: a backup goes into a new folder")
    to.parent.mkdir(parents=True, exist_ok=True)
    # Every committed shred is in the ledger before the snapshot: the ledger then covers whatever the dump lacks.
    # A ledger that cannot be brought up to date does not stop the backup (a backup is needed all the more); the
    # manifest and the command say so, and restore will refuse that ledger until it is repaired.
    ledger_problem = None
    try:
        ledger_reconcile(min_age_seconds=0)
    except (LedgerError, OSError) as exc:
        ledger_problem = str(exc)
    pg_dump = pg_tool("pg_dump")
    args, env = _pg_connection()
    partial = to.parent / f".{to.name}.partial-{secrets.token_hex(4)}"
    partial.mkdir(mode=0o700)
    try:
        manifest = _dump(partial, pg_dump, args, env)
        if ledger_problem is not None:
            manifest["ledger_problem"] = ledger_problem
        archive_dir = Path(settings.ISN_AUDIT_ARCHIVE_DIR)
        if archive_dir.is_dir():
            shutil.copytree(archive_dir, partial / ARCHIVES)
        manifest["files"] = {
            str(path.relative_to(partial)): {"sha256": _sha256(path), "size": path.stat().st_size}
            for path in _files_of(partial)
        }
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        for path in [*_files_of(partial), partial / MANIFEST]:
            _fsync(path)
        os.rename(partial, to)
        _fsync(to.parent)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    record(
        action="audit.backup.create",
        actor=actor,
        details={"last_event_id": manifest["audit"]["last_event_id"], "files": len(manifest["files"])},
    )
    return manifest


def _dump(folder: Path, pg_dump: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """pg_dump inside a snapshot this transaction exports, and what the manifest says about that same snapshot."""
    ledger = ledger_read()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
            cursor.execute("SELECT COALESCE(MAX(id), 0) FROM audit_auditevent")
            last_event_id = int(cursor.fetchone()[0])
        head_id, head_hash = chain_head()
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "created_at": iso_utc(timezone.now()),
            "isn_version": _isn_version(),
            "postgresql_server": connection.pg_version,
            "migrations": _migrations(),
            "audit": {
                "chain_head_id": head_id,
                "chain_head_hash": head_hash,
                "last_event_id": last_event_id,
                "sequence": audit_head(),
            },
            # The ledger as it stood: a restore refuses a ledger that no longer extends this.
            "ledger": ledger_position(ledger) if ledger.ok else None,
        }
        _run([pg_dump, *args, "--format=custom", f"--snapshot={snapshot}", f"--file={folder / DUMP}"], env, "pg_dump")
    return manifest


def _isn_version() -> str:
    pyproject = Path(settings.BASE_DIR) / "pyproject.toml"
    match = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(encoding="utf-8"), re.MULTILINE)
    return match.group(1) if match else "unknown"


# --- restore ------------------------------------------------------------------------------------------------------
def manifest_check(source: Path) -> dict[str, Any]:
    """The backup's manifest, once every file it lists is there with its checksum; BackupError otherwise."""
    try:
        manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    except OSError as exc:
        raise BackupError(f"{source} has no readable {MANIFEST} ({exc.strerror}): not a complete backup") from None
    except ValueError:
        raise BackupError(f"{source / MANIFEST} is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{source / MANIFEST} is not an ISN backup manifest ({FORMAT})")
    for name, expected in sorted(manifest.get("files", {}).items()):
        path = source / name
        if not path.is_file():
            raise BackupError(f"{name} is missing from the backup")
        if _sha256(path) != expected["sha256"]:
            raise BackupError(f"{name} does not match its checksum in the manifest: the backup is damaged")
    if DUMP not in manifest.get("files", {}):
        raise BackupError(f"the manifest lists no {DUMP}")
    return manifest


def require_postgresql() -> None:
    if connection.vendor != "postgresql":
        raise BackupError("backup and restore need PostgreSQL (DATABASE_URL); the embedded SQLite is for trying ISN")


def database_is_empty() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S')"
            " AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%'"
        )
        return int(cursor.fetchone()[0]) == 0


def database_load(source: Path) -> None:
    """pg_restore the dump in one transaction (a failure leaves the database empty), then the archived segments."""
    require_postgresql()
    pg_restore = pg_tool("pg_restore")
    args, env = _pg_connection()
    connection.close()  # pg_restore works through its own connection
    _run(
        [
            pg_restore,
            *args,
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            str(source / DUMP),
        ],
        env,
        "pg_restore",
    )
    archives = source / ARCHIVES
    if archives.is_dir():
        target = Path(settings.ISN_AUDIT_ARCHIVE_DIR)
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(archives.iterdir()):
            if path.is_file():
                shutil.copy2(path, target / path.name)


@dataclass(frozen=True)
class Continuation:
    """How the chain goes on after a restore: the ids lost with the database, written as gap events."""

    last_in_backup: int
    lost_from: int | None
    lost_to: int | None


def chain_continue_above(last_known: int) -> Continuation:
    """Move the event sequence past ``last_known`` and account for every id the restored database lacks.

    Every id between the chain head and ``last_known`` that the backup does not hold was handed out before the
    disaster (or never committed): each becomes an ``audit.chain.gap`` event now, so the chain stays contiguous,
    and no new event reuses a number a member may have seen in a checkpoint.
    """
    sequence = event_sequence()
    with transaction.atomic():
        wait_for_sealer_lock()
        with connection.cursor() as cursor:
            cursor.execute("SELECT COALESCE(MAX(id), 0), COALESCE(MIN(id), 1) FROM audit_auditevent")
            last_in_backup, first = (int(value) for value in cursor.fetchone())
        head_id, _hash = chain_head()
        start = (head_id + 1) if head_id is not None else first
        top = max(last_known, last_in_backup)
        if sequence is not None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT setval(%s, %s)", [sequence, max(top, 1)])
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT g FROM generate_series(%s::bigint, %s::bigint) AS g"
                " WHERE NOT EXISTS (SELECT 1 FROM audit_auditevent e WHERE e.id = g) ORDER BY g",
                [start, top],
            )
            lost = [row[0] for row in cursor.fetchall()]
        now = timezone.now()
        AuditEvent.objects.bulk_create(
            [
                AuditEvent(
                    id=event_id,
                    created_at=now,
                    actor_label="ISN",
                    action=GAP_ACTION,
                    outcome=Outcome.ERROR,
                    details=dict(LOST_DETAILS),
                )
                for event_id in lost
            ],
            batch_size=5000,
        )
    return Continuation(
        last_in_backup=last_in_backup, lost_from=lost[0] if lost else None, lost_to=lost[-1] if lost else None
    )


def act_in_database(line: dict[str, Any]) -> bool:
    """Whether the act a ledger line names is in the (restored) database: then the backup already reflects it."""
    archive = latest_archive()
    event_id = int(line["event_id"])
    if archive is not None and event_id <= archive.last_event_id:
        return True
    return AuditEvent.objects.filter(id=event_id, action=line["action"], target_id=line["target_id"]).exists()
