"""Log records as one JSON object a line (``ISN_LOG_FORMAT=json``), for a log shipper; "line" stays for people.

Each object holds ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, ``request_id`` (``-`` outside a
request), in a Celery worker ``task_id`` and ``task`` (the task's name) while a task runs, and ``exception`` with the
traceback when there is one. Nothing else: what a caller passes as ``extra=`` (Django's request logger passes the
whole request, whose repr carries the query string) is left out, so a field added in passing cannot carry content
into the logs. The messages themselves never hold content (tests/security/test_canary.py searches them).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _LibraryJsonFormatter

# Plain values that some records carry as extra and that are safe to keep (Django's request and server loggers).
_KEPT_EXTRAS = ("status_code",)


class TaskLogFilter(logging.Filter):
    """Names the Celery task being run (its id and name) on each record written while it runs."""

    def filter(self, record: logging.LogRecord) -> bool:
        from celery import current_task

        task = current_task._get_current_object() if current_task else None
        request = getattr(task, "request", None)
        task_id = getattr(request, "id", None)
        if task_id and not getattr(request, "is_eager", False):
            record.task_id = task_id
            record.task_name = task.name
        return True


class JsonFormatter(_LibraryJsonFormatter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("json_ensure_ascii", False)
        super().__init__(*args, **kwargs)

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        log_data["time"] = datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["message"] = record.getMessage() if not isinstance(record.msg, dict) else ""
        log_data["request_id"] = getattr(record, "request_id", "-")
        if task_id := getattr(record, "task_id", None):
            log_data["task_id"] = task_id
            log_data["task"] = getattr(record, "task_name", None)
        for name in _KEPT_EXTRAS:
            value = getattr(record, name, None)
            if isinstance(value, int | str):
                log_data[name] = value
        if exception := message_dict.get("exc_info"):
            log_data["exception"] = exception
        if stack := message_dict.get("stack_info"):
            log_data["stack"] = stack
