"""``manage.py audit_checkpoint [--export FILE]``: sign the chain head now, or export the latest checkpoint."""

from __future__ import annotations

import json
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.models import AuditCheckpoint
from audit.services import record
from audit.signing import checkpoint_create, checkpoint_export


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
        data = json.dumps(checkpoint_export(checkpoint), indent=2, sort_keys=True) + "\n"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(data)
        except OSError as exc:
            raise CommandError(f"cannot write {path}: {exc.strerror}") from None
        record(
            action="audit.checkpoint.export",
            actor=None,
            target=checkpoint,
            details={"last_event_id": checkpoint.last_event_id},
        )
        self.stdout.write(f"checkpoint at event #{checkpoint.last_event_id} written to {path}")
