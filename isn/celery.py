"""The Celery application: configured from Django settings (``CELERY_*``), tasks found in each app's tasks.py."""

from __future__ import annotations

import functools
import os
from typing import Any

from celery import Celery, signals
from celery.worker.consumer import Consumer as CeleryConsumer

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "isn.settings")

app = Celery("isn")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# After losing the broker, a worker tries it again every second at first and never waits longer than this between
# attempts (Celery's own back-off grows to 30 s): queued FLASH work is taken within seconds of Redis returning.
BROKER_RECONNECT_MAX_SECONDS = 5


class Consumer(CeleryConsumer):
    """The worker's consumer (``CELERY_WORKER_CONSUMER``), reconnecting to the broker on a short back-off."""

    def ensure_connected(self, conn: Any) -> Any:
        conn.ensure_connection = functools.partial(
            conn.ensure_connection, interval_start=1, interval_step=1, interval_max=BROKER_RECONNECT_MAX_SECONDS
        )
        return super().ensure_connected(conn)


@signals.setup_logging.connect
def _keep_django_logging(**_kwargs: Any) -> None:
    """A worker and beat log as the web does: through Django's ``LOGGING`` (``ISN_LOG_FORMAT``, ``ISN_LOG_LEVEL``).

    Connected, this keeps Celery from adding handlers of its own (a plain-text one on ``celery.task`` that would
    bypass the JSON format) and from setting the root level from ``--loglevel``.
    """


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


@signals.worker_init.connect
def _check_configuration(**_kwargs: Any) -> None:
    """A worker checks its configuration as the web does (isn.env.check_settings): one line and exit 2 when,
    say, the master key's PKCS#11 PIN is wrong, rather than failing on its first task."""
    from isn.env import check_settings

    check_settings()
