"""``manage.py rotate_master_key [--to environment|pkcs11] [--batch-size N] [--max-batches N]``: a new master key
version; every country key, match key and webhook secret re-wrapped under it; the old version destroyed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from agencies import keyring  # noqa: F401 - registers the country and match key tables
from agencies.masterkeys import master_key_rotate, master_key_rotating, master_key_rotation_continue
from agencies.models import MasterKeyBackend
from isn.errors import ApplicationError
from isn.masterkey import pkcs11_configured


class Command(BaseCommand):
    help = (
        "Make a new master key version (a new key generated in the PKCS#11 token, or the key given in "
        "ISN_MASTER_KEY_NEXT), re-wrap every country key, match key and webhook secret under it in batches, then "
        "destroy the old version once nothing refers to it. Run it again to continue an interrupted rotation. "
        "Every process must already be given the new key (the module's settings, or ISN_MASTER_KEY_NEXT)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--to",
            choices=MasterKeyBackend.values,
            help="Where the new version lives: pkcs11 when ISN_PKCS11_MODULE is set, else environment.",
        )
        parser.add_argument("--batch-size", type=int, default=100, help="Rows re-wrapped per transaction.")
        parser.add_argument(
            "--max-batches", type=int, default=None, help="Stop after this many batches; run again to continue."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1 or (options["max_batches"] is not None and options["max_batches"] < 1):
            raise CommandError("--batch-size and --max-batches must be at least 1.")
        try:
            rotating = master_key_rotating()
            if rotating is None:
                backend = options["to"] or (MasterKeyBackend.PKCS11 if pkcs11_configured() else "environment")
                new = master_key_rotate(actor=None, backend=backend)
                self.stdout.write(f"Master key v{new.version} ({new.backend}) is now primary.")
            else:
                self.stdout.write(f"Continuing the rotation of master key v{rotating.version}.")
                if options["to"]:
                    self.stdout.write("--to is ignored: the version being rotated to was chosen when it started.")
            progress = master_key_rotation_continue(
                actor=None, batch_size=options["batch_size"], max_batches=options["max_batches"]
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Re-wrapped {progress.rewrapped} values under master key v{progress.new_version}.")
        if progress.destroyed is None:
            raise CommandError(
                f"{progress.remaining} values still name master key v{progress.old_version}; run again to continue."
            )
        if progress.destroyed.backend == MasterKeyBackend.PKCS11:
            self.stdout.write(f"Master key v{progress.old_version} destroyed: its key is deleted from the token.")
        else:
            self.stdout.write(
                f"Master key v{progress.old_version} is no longer used by anything: remove that environment key from "
                "every process and destroy every copy of it (when the new version is an environment key, it moves "
                "from ISN_MASTER_KEY_NEXT to ISN_MASTER_KEY)."
            )
