"""``manage.py rotate_country_key CC [--wait] [--resume]``: a new key version for a country; data keys re-wrapped."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from kombu.exceptions import OperationalError as KombuOperationalError

from agencies.keyring import country_key_rotate
from agencies.models import Country, CountryKey, CountryKeyStatus
from isn.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Make a new primary key-encryption key for a country, re-wrap every item data key of that country with it "
        "(in a Celery task, or here with --wait), then retire the old version. Content is never decrypted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("country", help="ISO 3166-1 alpha-2 code of a member country, or UN.")
        parser.add_argument("--wait", action="store_true", help="Re-wrap in this process and wait until retired.")
        parser.add_argument(
            "--resume",
            action="store_true",
            help="Do not rotate: continue (or re-queue) the re-wrap of a rotation that is still under way.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        code = str(options["country"]).strip().upper()
        if not Country.objects.filter(code=code).exists():
            raise CommandError(f"{code!r} is not a member country of the network.")
        try:
            if options["resume"]:
                rotating = CountryKey.objects.filter(country_id=code, status=CountryKeyStatus.DECRYPT_ONLY).first()
                if rotating is None:
                    raise CommandError(f"No rotation of {code}'s key is under way.")
                old_version = rotating.version
            else:
                new = country_key_rotate(actor=None, country_code=code)
                old_version = new.version - 1
                self.stdout.write(f"{code}: key v{new.version} is now primary; v{old_version} unwraps only.")
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        if options["wait"]:
            self._rewrap_here(code, old_version)
        else:
            from messaging.tasks import rewrap_country_keys

            try:
                rewrap_country_keys.delay(code, old_version)
            except KombuOperationalError as exc:
                raise CommandError(
                    f"{code}: the rotation is done but the re-wrap could not be queued ({exc}); "
                    "run again with --resume once the broker is back, or with --resume --wait."
                ) from None
            self.stdout.write(f"{code}: re-wrap of v{old_version} keys queued; v{old_version} retires when it is done.")

    def _rewrap_here(self, code: str, old_version: int) -> None:
        from messaging.items.keys import country_keys_rewrap

        result = country_keys_rewrap(actor=None, country_code=code, old_version=old_version)
        if not result.retired:
            raise CommandError(
                f"{code}: {result.remaining} keys are still wrapped with v{old_version}; run again with --resume."
            )
        failed = f", {result.failed} did not unwrap (recorded)" if result.failed else ""
        self.stdout.write(f"{code}: re-wrapped {result.rewrapped} data keys{failed}; v{old_version} retired.")
