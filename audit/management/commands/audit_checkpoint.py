"""``manage.py audit_checkpoint [--export FILE]``: sign the chain head now, or export the latest checkpoint."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.checkpoints import checkpoint_create, checkpoint_file_write
from audit.models import AuditCheckpoint


class Command(BaseCommand):
    help = "Seal pending audit events and sign a checkpoint; with --export FILE, write the latest one as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--export",
            metavar="FILE",
            help="write the latest checkpoint (made now if there is none) to FILE for a member to keep",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["export"]
        checkpoint = AuditCheckpoint.objects.order_by("-last_event_id").first() if path else None
        if checkpoint is None:
            checkpoint = checkpoint_create()
        if checkpoint is None:
            raise CommandError("no sealed audit events yet: nothing to sign")
        if not path:
            self.stdout.write(f"checkpoint at event #{checkpoint.last_event_id}: {checkpoint.chain_hash}")
            return
        try:
            checkpoint_file_write(actor=None, checkpoint=checkpoint, path=path)
        except OSError as exc:
            raise CommandError(f"cannot write {path}: {exc.strerror}") from None
        self.stdout.write(f"checkpoint at event #{checkpoint.last_event_id} written to {path}")
