"""The Celery application: configured from Django settings (``CELERY_*``), tasks found in each app's tasks.py."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "isn.settings")

app = Celery("isn")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _close_old_database_connections(sender: Any = None, **_kwargs: Any) -> None:
    """Around each task, as Django does around a request: drop a connection past CONN_MAX_AGE or one that failed.

    Celery itself would close every connection around every task (``CELERY_DB_REUSE_MAX`` stops that), and a new
    PostgreSQL backend per task cost more than most tasks' own work.
    """
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return  # run in the caller's process (tests): its connection and transaction are the caller's
    from django.db import close_old_connections

    close_old_connections()
