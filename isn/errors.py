"""Domain errors raised by services and selectors; translated to responses in one place each for API and portal."""

from __future__ import annotations

from dataclasses import dataclass


class ApplicationError(Exception):
    """Base of every error a service raises on purpose. ``message`` is safe to show to the caller."""

    code = "invalid"
    status = 400
    # HTTP headers the API's answer carries besides the problem body (a 429's Retry-After).
    headers: dict[str, str] = {}

    def __init__(self, message: str, *, extra: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class InvalidInput(ApplicationError):
    code = "invalid"
    status = 400


class PermissionDenied(ApplicationError):
    code = "permission_denied"
    status = 403


@dataclass(frozen=True)
class Probed:
    """What a refused look was at, for the audit trail only: never part of the answer. ``country`` is the country
    the object belongs to ("" when the id names nothing), under which the refusal is filed for its auditors."""

    type: str
    id: str
    country: str = ""


class NotFound(ApplicationError):
    """Not there, or not the caller's to see (one answer for both). ``probed`` names what was looked for, for the
    record of the refusal only."""

    code = "not_found"
    status = 404

    def __init__(self, message: str, *, extra: dict[str, object] | None = None, probed: Probed | None = None) -> None:
        super().__init__(message, extra=extra)
        self.probed = probed


class Conflict(ApplicationError):
    code = "conflict"
    status = 409


class TooLarge(ApplicationError):
    code = "too_large"
    status = 413
