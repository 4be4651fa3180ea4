"""``manage.py rotate_match_key [--wait] [--resume]``: a new match key version; the blind tokens recomputed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from kombu.exceptions import OperationalError as KombuOperationalError

from agencies.keyring import match_key_rotate, match_tokens_recompute
from agencies.models import MatchKey, MatchKeyStatus
from isn.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Make a new primary match key, recompute every blind match token with it (in a Celery task, or here with "
        "--wait), then retire the old version. Recorded; no value is ever shown."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--wait", action="store_true", help="Recompute in this process and wait until retired.")
        parser.add_argument(
            "--resume",
            action="store_true",
            help="Do not rotate: continue (or re-queue) the recompute of a rotation that is still under way.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["resume"]:
                rotating = MatchKey.objects.filter(status=MatchKeyStatus.PREVIOUS).first()
                if rotating is None:
                    raise CommandError("No rotation of the match key is under way.")
                old_version = rotating.version
            else:
                new = match_key_rotate(actor=None)
                old_version = new.version - 1
                self.stdout.write(f"Match key v{new.version} is now primary; v{old_version} matches only.")
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        if options["wait"]:
            self._recompute_here(old_version)
            return
        from agencies.tasks import recompute_match_tokens

        try:
            recompute_match_tokens.delay(old_version)
        except KombuOperationalError as exc:
            raise CommandError(
                f"The rotation is done but the recompute could not be queued ({exc}); "
                "run again with --resume once the broker is back, or with --resume --wait."
            ) from None
        self.stdout.write(f"Recompute of v{old_version} tokens queued; v{old_version} retires when it is done.")

    def _recompute_here(self, old_version: int) -> None:
        result = match_tokens_recompute(actor=None, old_version=old_version)
        if not result.retired:
            raise CommandError(f"{result.remaining} tokens of v{old_version} are left; run again with --resume.")
        self.stdout.write(f"Recomputed {result.recomputed} match tokens; v{old_version} retired.")
