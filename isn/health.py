"""GET /healthz: database, broker and worker status as JSON, for load balancers and operators.

``throttling`` says where the API throttles count: ``shared`` (the cache, Redis) or, while it cannot be reached,
``per-process (cache unreachable)``. It never makes the answer a failure by itself: the broker is the same Redis and
already does.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from isn.celery import app as celery_app
from isn.models import WorkerHeartbeat
from isn.throttling import throttle_cache


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:  # noqa: BLE001 - any failure means "down"; the detail stays in the server log
        return "down"
    return "ok"


def _broker() -> str:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception:  # noqa: BLE001
        return "down"
    return "ok"


def _worker() -> dict[str, object]:
    try:
        latest = WorkerHeartbeat.objects.order_by("-seen_at").first()
    except Exception:  # noqa: BLE001
        return {"status": "unknown"}
    if latest is None:
        return {"status": "unknown"}
    stale_after = timedelta(seconds=settings.ISN_WORKER_STALE_AFTER_SECONDS)
    status = "ok" if timezone.now() - latest.seen_at <= stale_after else "stale"
    return {"status": status, "last_seen": latest.seen_at.isoformat()}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    database = _database()
    broker = _broker()
    healthy = database == "ok" and broker == "ok"
    body = {
        "status": "ok" if healthy else "unavailable",
        "database": database,
        "broker": broker,
        "throttling": throttle_cache.probe(),
        "worker": _worker() if database == "ok" else {"status": "unknown"},
    }
    return JsonResponse(body, status=200 if healthy else 503)
