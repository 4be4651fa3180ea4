"""``manage.py restore --from DIR``: bring a backup back into an empty database, re-apply every shred the
revocation ledger holds since, and continue the audit chain. Run it before any web or worker process starts: ISN
must serve nothing until it has finished (it re-shreds in this process, then says so)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader

from audit.chain import canonical_json, seal_pending
from audit.checkpoints import checkpoint_from_json
from audit.ledger import REVOCATIONS, LedgerError, highest_known_event, ledger_path, ledger_read
from audit.services import record
from audit.snapshots import (
    BackupError,
    act_in_database,
    chain_continue_above,
    database_is_empty,
    database_load,
    manifest_check,
    require_postgresql,
)
from isn.errors import ApplicationError
from messaging.items.revocations import ledger_line_apply


class Command(BaseCommand):
    help = (
        "Restore a backup folder into an EMPTY database: verify its checksums and the revocation ledger, pg_restore, "
        "copy the archived audit segments, re-apply every withdrawal, expiry, narrowing and key retirement the "
        "ledger holds since the backup, move audit event numbers above any handed out before, and record "
        "audit.restore. Start web and workers only after it has finished."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="source", required=True, metavar="DIR", help="a folder made by backup")
        parser.add_argument(
            "--last-known-event",
            type=int,
            default=0,
            metavar="N",
            help="the highest audit event id known to have existed (from a member's checkpoint, an export, a log)",
        )
        parser.add_argument(
            "--checkpoint",
            metavar="FILE",
            help="a checkpoint a member kept: no event number up to its last_event_id is handed out again",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        source = Path(options["source"])
        try:
            require_postgresql()
            manifest = manifest_check(source)
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        self._refuse_newer_schema(manifest)
        ledger = self._ledger(manifest)
        known = max(options["last_known_event"], self._checkpoint_event(options["checkpoint"]))
        if not database_is_empty():
            name = connection.settings_dict["NAME"]
            raise CommandError(
                f"the database {name!r} is not empty: restore only into an empty database "
                "(drop and create it again, then run restore)"
            )
        try:
            database_load(source)
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            call_command("migrate", interactive=False, verbosity=0)
        audit = manifest["audit"]
        known = max(known, int(audit.get("sequence") or 0), highest_known_event(ledger))
        continuation = chain_continue_above(known)
        applied, checked = self._reshred(ledger)
        record(
            action="audit.restore",
            actor=None,
            target_type="backup",
            target_id=manifest["created_at"],
            details={
                "backup_last_event_id": audit["last_event_id"],
                "backup_chain_head_id": audit["chain_head_id"],
                "backup_created_at": manifest["created_at"],
                "ledger_entries_checked": checked,
                "ledger_entries_applied": applied,
                "lost_from": continuation.lost_from,
                "lost_to": continuation.lost_to,
            },
        )
        sealed = seal_pending()
        lost = (
            f"; events #{continuation.lost_from}-#{continuation.lost_to} were lost and are recorded as gaps"
            if continuation.lost_from is not None
            else ""
        )
        self.stdout.write(
            f"restored from the backup taken at event #{audit['last_event_id']} ({manifest['created_at']}); "
            f"{applied} of {checked} later ledger entries re-applied{lost}; audit chain sealed to #{sealed.head_id}. "
            "ISN may start serving now."
        )

    def _refuse_newer_schema(self, manifest: dict[str, Any]) -> None:
        known = {f"{app}.{name}" for app, name in MigrationLoader(None, ignore_no_migrations=True).disk_migrations}
        unknown = sorted(set(manifest.get("migrations", [])) - known)
        if unknown:
            raise CommandError(
                f"the backup was taken by a newer ISN ({manifest.get('isn_version')}; migrations unknown here: "
                f"{', '.join(unknown[:3])}{'...' if len(unknown) > 3 else ''}): restore it with that version"
            )

    def _ledger(self, manifest: dict[str, Any]) -> list[dict[str, Any]]:
        report = ledger_read()
        if not report.ok:
            raise CommandError(f"the revocation ledger {ledger_path()} does not verify: {report.error}")
        position = manifest.get("ledger")
        if position and position["seq"]:
            line = report.by_seq(position["seq"])
            digest = hashlib.sha256(canonical_json(line).encode("ascii")).hexdigest() if line else None
            if digest != position["hash"]:
                raise CommandError(
                    f"the revocation ledger {ledger_path()} does not extend the one the backup saw (line "
                    f"{position['seq']}): it was cut short or replaced; find the full ledger before restoring"
                )
        return report.lines

    def _checkpoint_event(self, path: str | None) -> int:
        if not path:
            return 0
        try:
            with open(path, encoding="utf-8") as handle:
                return checkpoint_from_json(json.load(handle)).last_event_id
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        except ValueError as exc:
            raise CommandError(f"{path} is not a checkpoint: {exc}") from None

    def _reshred(self, lines: list[dict[str, Any]]) -> tuple[int, int]:
        """Every shred the restored database does not hold, applied again in ledger order."""
        seen: set[int] = set()
        applied = checked = 0
        for line in lines:
            if line["action"] not in REVOCATIONS or line["event_id"] in seen or act_in_database(line):
                continue
            seen.add(line["event_id"])
            checked += 1
            try:
                applied += ledger_line_apply(line)
            except (ApplicationError, LedgerError) as exc:
                raise CommandError(
                    f"ledger line {line['seq']} ({line['action']}, event #{line['event_id']}) could not be applied: "
                    f"{exc}. Do not start ISN: fix the cause, empty the database and restore again."
                ) from None
        return applied, checked
