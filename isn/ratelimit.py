"""The RateLimit-Policy and RateLimit headers of every answer under /api/, so that an agency's system can pace itself
before it is refused.

The form is that of draft-ietf-httpapi-ratelimit-headers-11 (structured fields, each policy named by a String)::

    RateLimit-Policy: "api_key";q=1200;w=60
    RateLimit: "api_key";r=1187;t=42

``q`` requests per ``w`` seconds; ``r`` of them are left, and will not be more for the next ``t`` seconds (the oldest
request still counted leaves the window then; at ``r=0`` that is when the next one is allowed, as Retry-After says).
The throttles (``isn.throttling``, ``agencies.throttling``) leave what they decided on the request; the middleware
(``isn.middleware.RateLimitHeadersMiddleware``) writes it on the answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

RATELIMIT_DRAFT = "draft-ietf-httpapi-ratelimit-headers-11"
POLICY_HEADER = "RateLimit-Policy"
LIMIT_HEADER = "RateLimit"
# Where the request carries the policies decided for it (a DRF Request reads its Django request's attribute).
_KEPT = "isn_ratelimits"


@dataclass(frozen=True)
class RateLimit:
    """One quota policy as it stands for the caller of a request: ``quota`` requests per ``window`` seconds, of which
    ``remaining`` are left, and no more than that for the next ``reset`` seconds."""

    policy: str
    quota: int
    window: int
    remaining: int
    reset: int

    def policy_item(self) -> str:
        return f'"{self.policy}";q={self.quota};w={self.window}'

    def limit_item(self) -> str:
        return f'"{self.policy}";r={self.remaining};t={self.reset}'


def ratelimit_open(request: HttpRequest) -> None:
    """Keep what the throttles decide about this request (the middleware opens it for every request under /api/)."""
    setattr(request, _KEPT, {})


def ratelimit_record(request: Any, limit: RateLimit, *, counted: bool) -> None:
    """Note a policy on the request. A counter read without counting (``counted=False``) never replaces one that
    counted this request. Nothing is kept for a request the middleware did not open."""
    kept = getattr(request, _KEPT, None)
    if kept is None:
        return
    if counted or limit.policy not in kept:
        kept[limit.policy] = limit


def ratelimits_of(request: Any) -> list[RateLimit]:
    return list((getattr(request, _KEPT, None) or {}).values())


def ratelimit_headers(limits: Iterable[RateLimit]) -> dict[str, str]:
    """The two headers for these policies; none when no policy applied."""
    limits = list(limits)
    if not limits:
        return {}
    return {
        POLICY_HEADER: ", ".join(limit.policy_item() for limit in limits),
        LIMIT_HEADER: ", ".join(limit.limit_item() for limit in limits),
    }
