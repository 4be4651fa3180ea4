"""``manage.py backup --to DIR``: a consistent snapshot of ISN (database, archived audit segments, manifest)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.ledger import LedgerError
from audit.snapshots import BackupError, backup_create


class Command(BaseCommand):
    help = (
        "Write a backup folder DIR: a pg_dump of the database taken in one snapshot, the archived audit segments, "
        "and manifest.json (time, schema, audit chain head, revocation ledger position, file checksums). It holds "
        "no key: keep the master key (or its PKCS#11 module) and the audit signing key apart from backups."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--to", required=True, metavar="DIR", help="the new backup folder (must not exist)")

    def handle(self, *args: Any, **options: Any) -> None:
        target = Path(options["to"])
        try:
            manifest = backup_create(to=target)
        except (BackupError, LedgerError) as exc:
            raise CommandError(str(exc)) from None
        if manifest.get("ledger_problem"):
            self.stderr.write(
                f"WARNING: the revocation ledger could not be brought up to date ({manifest['ledger_problem']}); "
                "repair it: restore refuses a ledger that does not verify"
            )
        audit = manifest["audit"]
        self.stdout.write(
            f"backup written to {target.resolve()}: audit chain head #{audit['chain_head_id']}, "
            f"last event #{audit['last_event_id']}, {len(manifest['files'])} files"
        )
