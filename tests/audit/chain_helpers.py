"""Helpers for the chain tests: write events, and tamper with them the way a host with superuser access could."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from django.db import connection

from audit.models import AuditEvent
from audit.services import record
from isn import middleware


@contextlib.contextmanager
def in_request(
    ip: str = "10.0.0.7", user_agent: str = "pytest-agent", request_id: str = "req-0123456789"
) -> Iterator[None]:
    token = middleware._current.set(middleware.RequestContext(request_id=request_id, ip=ip, user_agent=user_agent))
    try:
        yield
    finally:
        middleware._current.reset(token)


def write_events(count: int, actor: Any = None, *, action: str = "messaging.item.read") -> list[int]:
    """``count`` events with every content column filled, in request context; their ids."""
    ids = []
    with in_request():
        for number in range(count):
            event = record(
                action=action,
                actor=actor,
                target_type="test.thing",
                target_id=number,
                target_country="KH",
                details={"n": number, "ids": [number, number + 1]},
            )
            ids.append(event.pk)
    return ids


@contextlib.contextmanager
def triggers_disabled(table: str = "audit_auditevent") -> Iterator[None]:
    """Switch the append-only triggers off, as only a superuser (the host) can; inside the test's transaction."""
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER ALL")


def raw_update(event_id: int, **values: Any) -> None:
    with triggers_disabled():
        assert AuditEvent.objects.filter(pk=event_id).update(**values) == 1


def raw_delete(*event_ids: int) -> None:
    with triggers_disabled(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = ANY(%s)", [list(event_ids)])
        assert cursor.rowcount == len(event_ids)
