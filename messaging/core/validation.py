"""Checking what people type before anything is written: every problem is collected, so the caller can fix them
all at once, and ``raise_if_any`` raises ``InvalidInput`` (with the problems per field) before any write."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from agencies.models import Agency, Country, Membership, Role
from isn.errors import InvalidInput
from messaging.models import HandlingCode


class Problems:
    """Collects every problem with the input, so the caller can fix them all at once; raises before any write."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, field_name: str, message: str) -> None:
        self.errors.setdefault(field_name, []).append(message)

    def raise_if_any(self, summary: str) -> None:
        if self.errors:
            details = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in self.errors.items())
            raise InvalidInput(f"{summary} {details}", extra={"fields": self.errors})


def check_text(problems: Problems, field_name: str, value: str, *, limit: int, multiline: bool) -> str:
    value = (value or "").strip()
    allowed = "\n\r\t" if multiline else ""
    if not value:
        problems.add(field_name, "This field may not be blank.")
    elif len(value) > limit:
        problems.add(field_name, f"At most {limit} characters (got {len(value)}).")
    elif any((ord(char) < 32 and char not in allowed) or ord(char) == 127 for char in value):
        problems.add(field_name, "Control characters are not allowed.")
    return value


def check_choice(problems: Problems, field_name: str, value: Any, choices: Iterable[Any]) -> None:
    allowed = list(choices)
    if value not in allowed:
        problems.add(field_name, f"{value!r} is not one of {', '.join(str(choice) for choice in allowed)}.")


def check_review_date(problems: Problems, value: Any) -> None:
    today = timezone.now().date()
    latest = today + timedelta(days=settings.ISN_ITEM_MAX_REVIEW_DAYS)
    if not isinstance(value, date) or isinstance(value, datetime):
        problems.add("review_date", "A date (YYYY-MM-DD) is required.")
    elif not today < value <= latest:
        problems.add("review_date", f"Must be after today and no later than {latest.isoformat()}.")


def check_countries(problems: Problems, codes: Sequence[str], originator_country: str) -> list[str]:
    wanted = sorted({str(code).strip().upper() for code in codes or ()})
    members = set(Country.objects.filter(code__in=wanted).values_list("code", flat=True))
    unknown = [code for code in wanted if code not in members]
    if not wanted:
        problems.add("countries", "Name at least the originating country.")
    if unknown:
        problems.add("countries", f"Not member countries of the network: {', '.join(unknown)}.")
    if wanted and originator_country not in wanted:
        problems.add(
            "countries", f"The release must include the originating country ({originator_country}); it is not implied."
        )
    return wanted


def check_agencies(problems: Problems, agency_ids: Sequence[int], countries: Sequence[str]) -> list[Agency]:
    wanted = sorted(set(agency_ids or ()))
    if not wanted:
        return []  # the usual case; not even a query to build
    agencies = list(Agency.objects.filter(pk__in=wanted, is_active=True))
    found = {agency.pk for agency in agencies}
    missing = [str(pk) for pk in wanted if pk not in found]
    if missing:
        problems.add("agencies", f"No active member agencies with ids {', '.join(missing)}.")
    outside = [
        f"{agency.short_name} ({agency.country_id})" for agency in agencies if agency.country_id not in countries
    ]
    if outside:
        problems.add("agencies", f"These agencies' countries are not in the release: {', '.join(outside)}.")
    return agencies


def check_named_users(problems: Problems, usernames: Sequence[str], countries: Sequence[str]) -> list[Membership]:
    wanted = sorted({str(name).strip() for name in usernames or ()})
    if not wanted:
        return []
    memberships = list(
        Membership.objects.select_related("user", "agency").filter(
            user__username__in=wanted, user__is_active=True, is_active=True, agency__is_active=True
        )
    )
    found = {membership.user.get_username(): membership for membership in memberships}
    missing = [name for name in wanted if name not in found]
    if missing:
        problems.add("named_users", f"Not active members of the network: {', '.join(missing)}.")
    # A named person reads with their own country's key, so their country must be released; auditors never read.
    outside = [name for name, m in found.items() if m.agency.country_id not in countries]
    if outside:
        problems.add("named_users", f"Their countries are not in the release: {', '.join(sorted(outside))}.")
    auditors = [name for name, m in found.items() if m.role in (Role.NATIONAL_AUDITOR, Role.REGIONAL_AUDITOR)]
    if auditors:
        problems.add("named_users", f"Auditors cannot be named on items: {', '.join(sorted(auditors))}.")
    return memberships


def text_checked(field_name: str, value: str, *, limit: int, summary: str) -> str:
    """A free-text field checked like an item's (not blank, bounded, no control characters), or InvalidInput."""
    problems = Problems()
    value = check_text(problems, field_name, value, limit=limit, multiline=True)
    problems.raise_if_any(summary)
    return value


def pk_of(value: Any) -> Any:
    """An id given as a model instance or as the id itself."""
    return getattr(value, "pk", value)


def check_discoverable(problems: Problems, discoverable: object, handling_code: str) -> None:
    """An explicit yes or no; never yes for TLP:RED (a hit would tell another agency that the item exists)."""
    if not isinstance(discoverable, bool):
        problems.add("discoverable", "Say whether the item is discoverable: true or false.")
    elif discoverable and handling_code == HandlingCode.RED:
        problems.add(
            "discoverable",
            "A TLP:RED item is never discoverable: a hit would tell other agencies that it exists.",
        )
