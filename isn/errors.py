"""Domain errors raised by services and selectors; translated to responses in one place each for API and portal."""

from __future__ import annotations


class ApplicationError(Exception):
    """Base of every error a service raises on purpose. ``message`` is safe to show to the caller."""

    code = "invalid"
    status = 400

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


class NotFound(ApplicationError):
    code = "not_found"
    status = 404


class Conflict(ApplicationError):
    code = "conflict"
    status = 409


class TooLarge(ApplicationError):
    code = "too_large"
    status = 413
