"""API throttles per address for anonymous callers (per agency API key and per person: ``agencies.throttling``).

Counters live in the Django cache (Redis in production, shared by every web process). The rate comes from
``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["anonymous"]`` (ISN_API_RATE_PER_ADDRESS). The caller's address is
``isn.net.client_ip``: a forged X-Forwarded-For is not a new address.

Every throttle here and in ``agencies.throttling`` is a ``RecordedRateThrottle``: what it decided is left on the request
for the RateLimit headers (``isn.ratelimit``).

The counters fail soft: when the shared cache cannot be reached (Redis down; it is also the broker), each process
counts in its own memory at the same rates instead of failing the request (``ThrottleCache``). Entering and leaving
that mode is logged once each, and ``/healthz`` reports it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from isn.net import client_ip
from isn.ratelimit import RateLimit, ratelimit_record, ratelimits_of

logger = logging.getLogger(__name__)

SHARED = "shared"
PER_PROCESS = "per-process (cache unreachable)"


def _unreachable_errors() -> tuple[type[BaseException], ...]:
    """What the cache raises when its server cannot be reached (not a bug of ours: those still raise)."""
    errors: tuple[type[BaseException], ...] = (OSError,)
    try:
        import redis
    except ImportError:  # pragma: no cover - redis is a requirement; the local cache needs none of this
        return errors
    return (*errors, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class ThrottleCache:
    """The throttles' counters: the shared cache, or this process's memory while the shared one cannot be reached.

    Per process the rates stay the same, so while degraded a caller may get up to one quota per web process. The
    shared cache is tried again at most every ``retry_seconds`` (one request pays the connection timeout then); the
    first success returns to it, and the counters kept in memory meanwhile are dropped.
    """

    def __init__(self, retry_seconds: float = 5.0) -> None:
        self.retry_seconds = retry_seconds
        self._local = LocMemCache("isn-throttle-fallback", {"MAX_ENTRIES": 100_000})
        self._lock = threading.Lock()
        self._degraded = False
        self._retry_at = 0.0
        self._errors = _unreachable_errors()

    @property
    def mode(self) -> str:
        return PER_PROCESS if self._degraded else SHARED

    def get(self, key: str, default: Any = None) -> Any:
        return self._call("get", key, default)

    def set(self, key: str, value: Any, timeout: float | None = None) -> None:
        self._call("set", key, value, timeout)

    def probe(self) -> str:
        """Try the shared cache now, whatever the back-off (``/healthz``), and say which counters are in use."""
        with self._lock:
            self._retry_at = 0.0
        self._call("get", "isn-throttle-probe", None)
        return self.mode

    def reset(self) -> None:
        with self._lock:
            self._degraded = False
            self._retry_at = 0.0
        self._local.clear()

    def _call(self, method: str, key: str, *args: Any) -> Any:
        shared = caches["default"]
        if self._degraded and time.monotonic() < self._retry_at:
            return getattr(self._local, method)(shared.make_key(key), *args)
        try:
            result = getattr(shared, method)(key, *args)
        except self._errors as exc:
            with self._lock:
                self._retry_at = time.monotonic() + self.retry_seconds
                entering = not self._degraded
                self._degraded = True
            if entering:
                logger.warning(
                    "throttling: the shared cache is unreachable (%s); counting per process", type(exc).__name__
                )
            return getattr(self._local, method)(shared.make_key(key), *args)
        if self._degraded:
            with self._lock:
                leaving = self._degraded
                self._degraded = False
            if leaving:
                logger.warning("throttling: the shared cache is reachable again; counting in it")
                self._local.clear()
        return result


throttle_cache = ThrottleCache()


class RecordedRateThrottle(SimpleRateThrottle):
    """A throttle that leaves its policy, as it stands after this request, on the request (``isn.ratelimit``)."""

    cache = throttle_cache  # type: ignore[assignment] - get and set, as DRF uses them
    policy = ""  # the name clients see in the RateLimit headers; the scope when empty

    def allow_request(self, request: Request, view: Any) -> bool:
        allowed = super().allow_request(request, view)
        if getattr(self, "key", None) is not None:  # the throttle applied to this caller and counted the request
            ratelimit_record(request, self.ratelimit(), counted=True)
        return allowed

    def ratelimit_peek(self, request: Request, view: Any) -> None:
        """Leave the caller's counter as it stands, not counting this request (an answer made before throttles ran)."""
        if self.rate is None:
            return
        key = self.get_cache_key(request, view)
        if key is None:
            return
        self.now = self.timer()
        self.history = [moment for moment in self.cache.get(key, []) if moment > self.now - self.duration]
        ratelimit_record(request, self.ratelimit(), counted=False)

    def ratelimit(self) -> RateLimit:
        """The policy as ``allow_request`` or ``ratelimit_peek`` left it (``history`` is newest first)."""
        quota, window, history = self.num_requests, self.duration, self.history
        if quota and len(history) >= quota:
            frees_at = history[quota - 1] + window  # when the request holding the last place leaves the window
        elif history:
            frees_at = history[-1] + window  # no more than what is left until the oldest request leaves it
        else:
            frees_at = self.now + window
        return RateLimit(
            policy=self.policy or self.scope,
            quota=quota,
            window=window,
            remaining=max(0, quota - len(history)),
            reset=max(0, math.ceil(frees_at - self.now)),
        )


def ratelimit_for_error(request: Request, view: Any) -> None:
    """The caller's policy for an error answered before the throttles ran (a permission refused, an Accept header no
    renderer meets), as its counter stands: the RateLimit headers then say what the next request will meet.

    The caller is authenticated now if the error came before that (406): an anonymous one is counted by the gate, as
    any request of theirs is.
    """
    if ratelimits_of(request):
        return
    try:
        user = request.user
    except exceptions.APIException:
        return  # a refused key or a throttled address: their throttles have recorded already
    if ratelimits_of(request):
        return
    for throttle in view.get_throttles() if view is not None else []:
        if isinstance(throttle, RecordedRateThrottle):
            throttle.ratelimit_peek(request, view)
    if not ratelimits_of(request) and not (user and user.is_authenticated):
        AnonymousIpRateThrottle().ratelimit_peek(request, view)


class AnonymousIpRateThrottle(RecordedRateThrottle):
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
