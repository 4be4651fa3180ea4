"""Publishing to the Celery broker from a request without ever waiting long for a broker that is down.

Work that must not be lost is written to the database first (an outbox row, an unsealed audit event) and a beat
task picks up whatever was not published. Publishing right after commit is therefore only an optimisation, and
must cost a request little when the broker is away: one attempt, no retries, the connection timeout as the bound
(``CELERY_BROKER_CONNECTION_TIMEOUT``), and after a failure this process does not try again for a while, so at most
one request per back-off period pays that timeout.

The breaker is process-wide and shared by every caller, so that one failure spares every later publisher of the
same process, whatever it publishes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)

# After a failed publish, skip publishing from this process for this long; beat's sweeps do the work meanwhile.
BACKOFF_SECONDS = 30.0


class BrokerBreaker:
    """Remembers, per process, that the broker failed recently."""

    def __init__(self, backoff: float = BACKOFF_SECONDS) -> None:
        self.backoff = backoff
        self._open_until = 0.0
        self._lock = threading.Lock()

    def is_open(self) -> bool:
        return time.monotonic() < self._open_until

    def trip(self) -> None:
        with self._lock:
            self._open_until = time.monotonic() + self.backoff

    def reset(self) -> None:
        with self._lock:
            self._open_until = 0.0


breaker = BrokerBreaker()


def publish(task_name: str, args: Sequence[Any], *, queue: str) -> bool:
    """Send one task message by name, once, without retrying; False (and the breaker tripped) when it failed.

    Arguments must be ids and codes only: a broker is not a place for intelligence content.
    """
    from isn.celery import app

    if breaker.is_open():
        return False
    try:
        app.send_task(task_name, args=list(args), queue=queue, retry=False)
    except Exception as exc:  # noqa: BLE001 - any failure means "not sent"; the row stays for beat's sweep
        breaker.trip()
        logger.warning("broker: could not publish %s (%s); beat will send it later", task_name, type(exc).__name__)
        return False
    return True
