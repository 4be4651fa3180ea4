"""Raw SQL for the statements that run for every item posted or routed (routing, the outbox, notifications).

On PostgreSQL these few statements bind their parameters on the server (an array of sixty agency ids is one
parameter, not sixty literals spliced into the text) and are prepared once per connection: planning the routing
statements cost PostgreSQL nearly as much as running them (BENCHMARKS.md, "Routing"). Django leaves prepared
statements off for its own queries so that a connection pooler in transaction mode keeps working; behind such a
pooler use PgBouncer 1.21 or later with ``max_prepared_statements`` set. Other databases get Django's usual cursor.
Django's query logging and error wrapping apply either way.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any

from django.db import connection
from django.db.backends.utils import CursorWrapper

Params = Sequence[Any] | Mapping[str, Any]
_PREPARE_THRESHOLD = 5  # psycopg's default; the statements here ask to be prepared at once


@cache
def _preparing_cursor_class() -> type:
    from django.db.backends.postgresql.base import ServerBindingCursor

    class PreparingCursor(ServerBindingCursor):  # type: ignore[misc, valid-type]
        def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: Any = None) -> Any:
            return super().execute(query, params, prepare=True if prepare is None else prepare, binary=binary)

    return PreparingCursor


@contextmanager
def _cursor() -> Iterator[CursorWrapper]:
    """Server-side binding and prepared on PostgreSQL; Django's own cursor elsewhere."""
    with connection.cursor() as cursor:  # Django's checks first: connection open, healthy, owned by this thread
        if connection.vendor != "postgresql":
            yield cursor
            return
        raw = connection.connection
        options = connection.settings_dict.get("OPTIONS", {})
        # Django turns preparing off for the connection, and its own cursors bind on the client so never prepare
        # anyway: switch it on for the cursors made here, unless the settings chose either way.
        chosen = "prepare_threshold" in options or options.get("server_side_binding") is True
        if raw.prepare_threshold is None and not chosen:
            raw.prepare_threshold = _PREPARE_THRESHOLD
        with type(cursor)(_preparing_cursor_class()(raw), connection) as prepared:
            yield prepared


def _run(cursor: CursorWrapper, sql: str, params: Params) -> None:
    cursor.execute(sql, params)
    if connection.queries_logged and connection.queries_log and connection.queries_log[-1]["sql"] is None:
        # A prepared statement has no client-side text for Django's query log (tests, DEBUG): log it as written.
        connection.queries_log[-1]["sql"] = sql


def fetch_all(sql: str, params: Params) -> list[tuple[Any, ...]]:
    with _cursor() as cursor:
        _run(cursor, sql, params)
        return cursor.fetchall()


def fetch_one(sql: str, params: Params) -> tuple[Any, ...] | None:
    with _cursor() as cursor:
        _run(cursor, sql, params)
        return cursor.fetchone()


def execute(sql: str, params: Params) -> int:
    """Run a statement; returns the number of rows it changed."""
    with _cursor() as cursor:
        _run(cursor, sql, params)
        return cursor.rowcount
