"""``manage.py audit_archive --before DATE``: move old sealed events into a JSONL file, keeping the chain whole."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.archive import archive_create
from isn.errors import ApplicationError


def _date(text: str) -> date:
    return date.fromisoformat(text)


class Command(BaseCommand):
    help = (
        "Archive sealed audit events made before DATE (UTC), up to the last checkpoint made before it, to "
        "DATA_DIR/audit-archive/. Refuses events younger than ISN_AUDIT_RETENTION_DAYS. The archive is recorded."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--before", required=True, type=_date, metavar="YYYY-MM-DD")

    def handle(self, *args: Any, **options: Any) -> None:
        before = datetime.combine(options["before"], datetime.min.time(), tzinfo=UTC)
        try:
            archive = archive_create(before=before)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"archived {archive.event_count:,} events #{archive.first_event_id}-#{archive.last_event_id} "
            f"to {archive.file_name} (sha256 {archive.file_sha256})"
        )
