from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from isn.models import WorkerHeartbeat


@shared_task(bind=True, time_limit=30, soft_time_limit=20, ignore_result=True)
def worker_heartbeat(self) -> None:  # type: ignore[no-untyped-def]
    """Record that the worker running this task is alive (beat sends it every 30 seconds)."""
    WorkerHeartbeat.objects.update_or_create(
        hostname=self.request.hostname or "unknown", defaults={"seen_at": timezone.now()}
    )
