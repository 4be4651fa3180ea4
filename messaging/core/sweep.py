"""Remind, then escalate: the one ladder that FLASH acknowledgements, requests for information and consent requests
climb when nobody answers in time.

Level 0 is waiting; at its first due time the sweep takes it to level 1 (a reminder, or for FLASH the office
supervisors and duty desk), and when it is still unanswered at the second due time, to level 2 (escalated to the
national focal points). The beat runs the sweeps every minute. Each step runs in a transaction of its own, locks its
row with ``skip_locked`` (a request being answered right now is not escalated under its feet) and checks with
``next_level`` again under the lock (another sweep may have taken this step a moment ago).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TypeVar

K = TypeVar("K")

REMINDED, ESCALATED = 1, 2
LAST_LEVEL = ESCALATED
# Steps one sweep takes at most; the next run (a minute later) takes the rest, so one task's work stays bounded.
SWEEP_BATCH = 500


def next_level(level: int, *, now: datetime, remind_at: datetime, escalate_at: datetime) -> int | None:
    """The level a request at ``level`` is due to climb to at ``now``, or None when no step is due."""
    if level == 0 and remind_at <= now:
        return REMINDED
    if level == REMINDED and escalate_at <= now:
        return ESCALATED
    return None


def sweep(due: Iterable[K], step: Callable[[K], bool], *, batch: int = SWEEP_BATCH) -> int:
    """Take the step of each of ``due`` (``step`` returns whether it took one); returns the steps taken."""
    return sum(1 for key in itertools.islice(due, batch) if step(key))
