"""GET /metrics: Prometheus metrics for operators, behind a bearer token (``ISN_METRICS_TOKEN``).

What is exported, and nothing else (labels are view names, methods, statuses and queue names; never a path, an id, a
user or any content):

- ``isn_http_request_duration_seconds{view,method,status}``: a histogram of every request, by the URL pattern's name
  (``portal:item``), never the path, so ids cannot become labels. Its ``_count`` gives request rates.
- ``isn_broker_up`` and ``isn_celery_queue_length{queue}``: messages waiting in each Celery queue of the Redis broker,
  read at scrape time (no queue lengths while Redis is down or when the broker is the embedded file system one).
- The apps' gauges, read from the database at scrape time: each app registers a source (``register_source``) in its
  ``ready()``, since isn, the bottom layer, may not import them: the outbox and dead letters, FLASH escalations
  pending (messaging), unsealed audit events and the last checkpoint's age (audit).

Several gunicorn workers: when ``PROMETHEUS_MULTIPROC_DIR`` is set (before the processes start), prometheus_client
keeps each process's request histogram in that folder and a scrape adds them all up; without it a scrape sees only
the process that answered it. The database and broker gauges are the same whichever process answers.

The endpoint is off (404) until a token is configured; a missing or wrong token is answered 401 with
``WWW-Authenticate: Bearer``. It takes no session, no CSRF token and no API key, and is not in the API schema.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

# The Celery queues (``CELERY_TASK_DEFAULT_QUEUE`` and messaging's TaskQueue); FLASH work goes to "urgent".
QUEUES = ("urgent", "default")
# kombu's Redis transport keeps a message sent with a priority in a list of its own: "<queue>\x06\x16<step>".
_PRIORITY_SEPARATOR = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUEST_DURATION = Histogram(
    "isn_http_request_duration_seconds",
    "Time to answer a request, by URL pattern name (never the path), method and status.",
    ["view", "method", "status"],
    registry=None,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


@dataclass(frozen=True)
class Gauge:
    """One value of an app's source: a gauge without labels (``value`` NaN when it could not be read)."""

    name: str
    documentation: str
    value: float


@dataclass
class _Sources:
    sources: dict[str, Callable[[], Iterable[Gauge]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_sources = _Sources()


def register_source(name: str, source: Callable[[], Iterable[Gauge]]) -> None:
    """Add (or replace, by ``name``) a function read at every scrape; called from an app's ``ready()``."""
    with _sources.lock:
        _sources.sources[name] = source


def view_label(request: HttpRequest) -> str:
    """The URL pattern's name (with its namespace) or its route; never the path, whose ids would become labels."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "<unresolved>"
    if match.view_name and "." not in match.view_name:
        return match.view_name
    return f"<unnamed>/{match.route}" if match.route else "<unnamed>"


class RequestMetricsMiddleware:
    """Times every request into ``isn_http_request_duration_seconds``; first in MIDDLEWARE, so it sees everything."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        method = request.method if request.method in _METHODS else "other"
        REQUEST_DURATION.labels(view_label(request), method, str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response


def _queue_lengths() -> dict[str, float] | None:
    """LLEN of every Celery queue in the Redis broker; None when it cannot be read (or the broker is not Redis)."""
    url = getattr(settings, "REDIS_URL", None)
    if not url:
        return None
    import redis

    timeout = float(settings.CELERY_BROKER_CONNECTION_TIMEOUT)
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        with client.pipeline(transaction=False) as pipe:
            for queue in QUEUES:
                pipe.llen(queue)
                for step in _PRIORITY_STEPS:
                    pipe.llen(f"{queue}{_PRIORITY_SEPARATOR}{step}")
            counts = pipe.execute()
    except Exception as exc:  # noqa: BLE001 - any failure means "broker down"; the detail stays in the log
        logger.warning("metrics: could not read the broker's queues (%s)", type(exc).__name__)
        return None
    finally:
        client.close()
    per_queue = len(_PRIORITY_STEPS) + 1
    return {queue: float(sum(counts[i * per_queue : (i + 1) * per_queue])) for i, queue in enumerate(QUEUES)}


class IsnCollector(Collector):
    """The broker's queues and every registered source, read at scrape time."""

    def collect(self) -> Iterator[Metric]:
        lengths = _queue_lengths()
        yield GaugeMetricFamily(
            "isn_broker_up", "1 when the Redis broker answered this scrape.", 0 if lengths is None else 1
        )
        queues = GaugeMetricFamily(
            "isn_celery_queue_length", "Messages waiting in a Celery queue of the broker.", labels=["queue"]
        )
        for queue, length in (lengths or {}).items():
            queues.add_metric([queue], length)
        yield queues
        with _sources.lock:
            sources = list(_sources.sources.items())
        for name, source in sources:
            try:
                gauges = list(source())
            except Exception as exc:  # noqa: BLE001 - one failing source must not hide the others
                logger.warning("metrics: source %s failed (%s)", name, type(exc).__name__)
                continue
            for gauge in gauges:
                yield GaugeMetricFamily(gauge.name, gauge.documentation, gauge.value)


def registry() -> CollectorRegistry:
    """A registry for one scrape: the request histogram (of every process, in multiprocess mode) and the gauges."""
    scrape = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(scrape)
    else:
        scrape.register(REQUEST_DURATION)
    scrape.register(IsnCollector())
    return scrape


def _token_matches(request: HttpRequest, token: str) -> bool:
    scheme, _, supplied = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not supplied:
        return False
    return hmac.compare_digest(supplied.strip().encode(), token.encode())


@csrf_exempt
@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    token = getattr(settings, "ISN_METRICS_TOKEN", None)
    if not token:
        return HttpResponseNotFound()
    if not _token_matches(request, token):
        logger.warning("metrics: refused a scrape without the right token")
        response = HttpResponse(status=401, content_type="text/plain; charset=utf-8")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_PLAIN_0_0_4)


def age_seconds(oldest: datetime | None, now: datetime) -> float:
    """Seconds from ``oldest`` (None: nothing waiting) to ``now``; 0 when nothing is waiting."""
    if oldest is None:
        return 0.0
    return max((now - oldest).total_seconds(), 0.0)
