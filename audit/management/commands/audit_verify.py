"""``manage.py audit_verify [--checkpoint FILE]``: exit 0 when the chain is intact, 1 naming the first bad event."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.checkpoints import checkpoint_from_json
from audit.verify import verify_chain


class Command(BaseCommand):
    help = (
        "Recompute the audit hash chain and check it against the signed checkpoints (and a checkpoint file a member "
        "kept). Exit 0 when intact; otherwise exit 1 naming the first bad event and what is wrong with it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--checkpoint",
            metavar="FILE",
            help="a checkpoint exported earlier (audit_checkpoint --export): the log must still extend it",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        claim = None
        if options["checkpoint"]:
            try:
                with open(options["checkpoint"], encoding="utf-8") as handle:
                    claim = checkpoint_from_json(json.load(handle))
            except OSError as exc:
                raise CommandError(f"cannot read {options['checkpoint']}: {exc.strerror}", returncode=2) from None
            except ValueError as exc:
                raise CommandError(f"{options['checkpoint']} is not a checkpoint: {exc}", returncode=2) from None
        report = verify_chain(checkpoint=claim)
        if not report.ok:
            raise CommandError(report.summary(), returncode=1)
        self.stdout.write(report.summary())
