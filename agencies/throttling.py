"""API throttles that tell an agency API key from a person: per key, per signed-in person, and refused keys per address.

Counters live in the Django cache (Redis in production, shared by every web process). Rates come from
``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (ISN_API_RATE_PER_KEY, ISN_API_RATE_PER_PERSON,
ISN_API_RATE_PER_ADDRESS). Anonymous callers are throttled per address by ``isn.throttling``. Each leaves its policy on
the request for the RateLimit headers (``isn.ratelimit``).
"""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request

from agencies.models import ApiKey
from isn.throttling import AnonymousIpRateThrottle, RecordedRateThrottle


class ApiKeyRateThrottle(RecordedRateThrottle):
    """Requests per agency API key, whichever address they come from."""

    scope = "api_key"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not isinstance(request.auth, ApiKey):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}


class PersonRateThrottle(RecordedRateThrottle):
    """Requests per person signed in to the portal (a session, not a key)."""

    scope = "person"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if isinstance(request.auth, ApiKey) or not (request.user and request.user.is_authenticated):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class RefusedKeyThrottle(AnonymousIpRateThrottle):
    """Refused API keys per address. Authentication runs before DRF's throttles, so a caller trying keys would
    never meet them; ``agencies.authentication`` counts each refusal here and answers 429 past the rate."""

    scope = "anonymous"
    policy = "refused_key"  # a counter of its own, at the anonymous rate
    cache_format = "throttle_refused_key_%(ident)s"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        # Never looks at request.user: it runs while authentication itself is in progress.
        return self.cache_format % {"ident": self.get_ident(request)}
