"""API throttles per address for anonymous callers (per agency API key and per person: ``agencies.throttling``).

Counters live in the Django cache (Redis in production, shared by every web process). The rate comes from
``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["anonymous"]`` (ISN_API_RATE_PER_ADDRESS). The caller's address is
``isn.net.client_ip``: a forged X-Forwarded-For is not a new address.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from isn.net import client_ip


class AnonymousIpRateThrottle(SimpleRateThrottle):
    """Requests per address from callers who are not signed in (and so also callers whose key was refused)."""

    scope = "anonymous"

    def get_ident(self, request: Request) -> str:
        return client_ip(request) or "unknown"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if request.user and request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class AnonymousThrottleGate(BaseAuthentication):
    """The per-address throttle for callers no authentication class recognised, run as the last of them.

    DRF checks permissions before throttles, so an anonymous caller is refused (401) before any throttle could count
    it. Authentication comes first of all: placed last in the list, this sees exactly the anonymous callers.
    """

    def authenticate(self, request: Request) -> None:
        throttle = _AnonymousAddressThrottle()
        if not throttle.allow_request(request, None):
            raise exceptions.Throttled(throttle.wait())
        return None


class _AnonymousAddressThrottle(AnonymousIpRateThrottle):
    def get_cache_key(self, request: Request, view: Any) -> str | None:
        # Never looks at request.user: it runs while authentication itself is in progress.
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
