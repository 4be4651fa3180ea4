"""The caller's address: the connection's own, unless it comes through a reverse proxy the operator named.

``X-Forwarded-For`` is believed only when the connection comes from one of ``ISN_TRUSTED_PROXIES``; then the
address is the right-most one in the header that is not itself a trusted proxy (the left-most entries are
whatever the caller chose to write). So a forged header neither dodges a lockout or throttle nor hides an address.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def client_ip(request: HttpRequest) -> str | None:
    """The address the request came from (used by the audit trail, the lockout and the throttles)."""
    remote = request.META.get("REMOTE_ADDR") or None
    trusted = set(getattr(settings, "ISN_TRUSTED_PROXIES", []))
    if remote is None or remote not in trusted:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    for candidate in reversed(forwarded):
        if not _is_address(candidate):
            return remote  # a malformed hop: believe nothing further left than our own proxy
        if candidate not in trusted:
            return candidate
    return remote
