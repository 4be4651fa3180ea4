"""The audit port: how code that may not import the audit app (``agencies``) records its acts.

DESIGN.md points dependencies one way (``audit -> agencies``), yet agency and membership changes must be audited
in their own transaction. The audit app registers its ``record`` here when Django starts; until it has, recording
fails, and so does the act (fail closed). Code in ``messaging`` calls ``audit.services.record`` directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured

_recorder: Callable[..., Any] | None = None


def register(recorder: Callable[..., Any]) -> None:
    global _recorder  # one process-wide recorder, set once at start-up
    _recorder = recorder


def record(**kwargs: Any) -> Any:
    """Same arguments as ``audit.services.record``."""
    if _recorder is None:
        raise ImproperlyConfigured("No audit recorder is registered: is the audit app installed?")
    return _recorder(**kwargs)
