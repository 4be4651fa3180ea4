"""Keyset pages, newest first: a cursor names the last row shown, so the first page costs the same at any size and a
list that grows while it is read neither skips nor repeats a row (page numbers would do both)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _cursor_of(row: Any, *, by_time: bool) -> str:
    if not by_time:
        return str(row.pk)
    # Whole microseconds since the epoch, in integers: a float would round, and skip or repeat a row.
    return f"{(row.created_at - _EPOCH) // _MICROSECOND}_{row.pk}"


def _after(rows: QuerySet[Any], cursor: str, *, by_time: bool) -> QuerySet[Any]:
    """``rows`` after ``cursor``; a cursor that is not one of ours (edited by hand) starts from the top."""
    micros, _sep, pk_text = cursor.rpartition("_") if by_time else ("", "", cursor)
    try:
        pk = rows.model._meta.pk.to_python(pk_text)
        created = _EPOCH + int(micros) * _MICROSECOND if by_time else None
    except (ValueError, OverflowError, ValidationError):
        return rows
    if pk is None:
        return rows
    if created is None:
        return rows.filter(pk__lt=pk)
    return rows.filter(Q(created_at__lt=created) | Q(created_at=created, pk__lt=pk))


def keyset_page(
    rows: QuerySet[Any], cursor: str | None, size: int, *, by_time: bool = True
) -> tuple[list[Any], str | None]:
    """One page of ``rows`` after ``cursor``, newest first, and the cursor of the next page (None on the last).

    Ordered by (-created_at, -pk), or by -pk alone with ``by_time=False`` (for rows whose ids only ever grow).
    """
    if cursor:
        rows = _after(rows, cursor, by_time=by_time)
    ordering = ("-created_at", "-pk") if by_time else ("-pk",)
    page = list(rows.order_by(*ordering)[: size + 1])
    return page[:size], _cursor_of(page[size - 1], by_time=by_time) if len(page) > size else None
