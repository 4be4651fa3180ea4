"""audit_verify over one million events: the events are made with the sealer's own hash function, loaded by COPY."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection

from audit.chain import HASH_FIELDS, chain_head, event_hash, seal_pending

ACTIONS = (
    "messaging.item.read",
    "messaging.item.list",
    "messaging.item.create",
    "auth.login",
    "messaging.item.forward",
)
COUNTRIES = ("KH", "CN", "LA", "MM", "TH", "VN")
_COPY_COLUMNS = (*HASH_FIELDS, "prev_hash", "hash", "sealed_at")


@dataclass
class VerifyFigures:
    events: int
    generate_seconds: float
    load_seconds: float
    verify_seconds: float
    verified: int
    summary: str

    @property
    def rate(self) -> float:
        return self.verified / self.verify_seconds


def _rows(first_id: int, count: int, prev_hash: str):  # type: ignore[no-untyped-def]
    start = datetime.now(UTC) - timedelta(days=30)
    for offset in range(count):
        event_id = first_id + offset
        country = COUNTRIES[event_id % 6]
        action = ACTIONS[event_id % len(ACTIONS)]
        details = {"item_ids": [event_id % 9973, event_id % 7919]} if action.endswith("list") else {}
        values = (
            event_id,
            start + timedelta(microseconds=offset * 2_503),
            1 + event_id % 40,
            None,
            f"{country.lower()}.officer",
            1 + event_id % 20,
            country,
            action,
            "messaging.item",
            str(event_id % 100_000),
            COUNTRIES[(event_id + 1) % 6],
            "ok",
            f"10.{event_id % 200}.{event_id % 250}.{1 + event_id % 250}",
            "Mozilla/5.0 (Linux; Android 14) Mobile",
            f"{event_id:032x}",
            details,
        )
        digest = event_hash(values, prev_hash)
        yield values, prev_hash, digest
        prev_hash = digest


def load_events(count: int) -> tuple[int, float, float]:
    """Append ``count`` sealed events to the chain head; (first id, seconds generating, seconds loading)."""
    seal_pending()
    head_id, head_hash = chain_head()
    first_id = (head_id or 0) + 1
    sealed_at = datetime.now(UTC)
    generate = 0.0
    started = time.perf_counter()
    connection.ensure_connection()
    raw = connection.connection  # psycopg: COPY is the fast way in
    columns = ", ".join(_COPY_COLUMNS)
    with raw.cursor() as cursor, cursor.copy(f"COPY audit_auditevent ({columns}) FROM STDIN") as copy:
        for values, prev_hash, digest in _rows(first_id, count, head_hash):
            copy.write_row((*values[:-1], json.dumps(values[-1]), prev_hash, digest, sealed_at))
    with raw.cursor() as cursor:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('audit_auditevent', 'id'), (SELECT max(id) FROM audit_auditevent))"
        )
        cursor.execute("ANALYZE audit_auditevent")
    raw.commit()
    total = time.perf_counter() - started
    # Generation and loading overlap (one stream); time the hashing alone on a sample to split them.
    sample = min(count, 100_000)
    t0 = time.perf_counter()
    for _ in _rows(first_id, sample, head_hash):
        pass
    generate = (time.perf_counter() - t0) * count / sample
    return first_id, generate, total - generate


def run(count: int = 1_000_000) -> VerifyFigures:
    from audit.verify import verify_chain

    _, generate, load = load_events(count)
    report = verify_chain()
    if not report.ok:
        raise SystemExit(f"bench: the generated chain does not verify: {report.summary()}")
    return VerifyFigures(
        events=count,
        generate_seconds=generate,
        load_seconds=load,
        verify_seconds=report.seconds,
        verified=report.checked,
        summary=report.summary(),
    )
