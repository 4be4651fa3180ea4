"""``manage.py enrolment_code <username>``: the host's one-time enrolment code for a person whom no agency admin can
serve, such as an agency's first admin. Recorded as ISN's own act; agency admins use the API's enrolment codes."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from agencies.enrolment import enrolment_code_issue
from isn.errors import ApplicationError


class Command(BaseCommand):
    help = "Issue a one-time code with which a member enrols their first second factor (shown once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            issued = enrolment_code_issue(actor=None, username=options["username"])
        except ApplicationError as error:
            raise CommandError(error.message) from error
        self.stdout.write(f"{issued.code} (for {issued.username}, until {issued.expires_at:%Y-%m-%d %H:%M} UTC)")
