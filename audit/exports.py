"""Rows of audit events for export and display: the fields auditors may see, made safe for logs and spreadsheets."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from audit.chain import HASH_FIELDS
from audit.models import AuditEvent
from audit.services import neutralise

# Every hashed field, then whether and how the event is sealed into the chain.
FIELDS = [*HASH_FIELDS, "sealed", "hash"]

# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets (OWASP: CSV injection).
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_MAX_CELL = 10_000


def event_row(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "created_at": event.created_at.isoformat(),
        "actor_user_id": event.actor_user_id,
        "actor_api_key_id": event.actor_api_key_id,
        "actor_label": event.actor_label,
        "actor_agency_id": event.actor_agency_id,
        "actor_country": event.actor_country,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "target_country": event.target_country,
        "outcome": event.outcome,
        "ip_address": event.ip_address,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "details": event.details,
        "sealed": bool(event.hash),
        "hash": event.hash,
    }


def csv_cell(value: Any) -> str:
    """One spreadsheet-safe cell: no line breaks or control characters, and never read as a formula."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = neutralise(str(value), limit=_MAX_CELL)
    return "'" + text if text.startswith(_FORMULA_PREFIXES) else text


def csv_lines(events: Iterable[AuditEvent]) -> Iterator[str]:
    """The header, then one CSV line per event."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(cells: list[str]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(cells)
        return buffer.getvalue()

    yield line(FIELDS)
    for event in events:
        row = event_row(event)
        yield line([csv_cell(row[name]) for name in FIELDS])
