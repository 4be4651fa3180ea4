"""Archiving: old sealed events move into a JSONL file, and the chain in the database continues from it.

An archive always ends at a signed checkpoint, so what stays in the database starts exactly where a checkpoint (and
the archive row) says the archived part ended, and ``audit_verify`` can still prove the whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.chain import (
    GENESIS_HASH,
    HASH_INDEX,
    PREV_HASH_INDEX,
    ROW_FIELDS,
    canonical_json,
    event_hash,
    is_postgresql,
    iso_utc,
    latest_archive,
    wait_for_sealer_lock,
)
from audit.models import AuditArchive, AuditCheckpoint, AuditEvent
from audit.services import record
from isn.errors import Conflict, InvalidInput

logger = logging.getLogger(__name__)

ARCHIVE_FIELDS = (*ROW_FIELDS, "sealed_at")


def _archive_line(row: Sequence[Any]) -> bytes:
    event = dict(zip(ARCHIVE_FIELDS, row, strict=True))
    event["created_at"] = iso_utc(event["created_at"])
    event["sealed_at"] = iso_utc(event["sealed_at"])
    return canonical_json(event).encode("ascii") + b"\n"


def archive_create(*, before: datetime, actor: Any = None) -> AuditArchive:
    """Move sealed events older than ``before`` up to a checkpoint into a JSONL file, in one transaction.

    Only events older than ISN_AUDIT_RETENTION_DAYS go, and only up to a checkpoint made before ``before``, so the
    remaining chain starts exactly where a signed checkpoint (and the archive row) says the archived one ended.

    Long because archiving is one transaction whose steps (choose, write, verify the file, delete, record) must not be
    called apart.
    """
    retention = timedelta(days=settings.ISN_AUDIT_RETENTION_DAYS)
    oldest_allowed = timezone.now() - retention
    if before > oldest_allowed:
        raise InvalidInput(
            f"events are kept {settings.ISN_AUDIT_RETENTION_DAYS} days (ISN_AUDIT_RETENTION_DAYS): "
            f"archive before {oldest_allowed.date().isoformat()} at the latest"
        )
    folder = Path(settings.ISN_AUDIT_ARCHIVE_DIR)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path: Path | None = None
    try:
        with transaction.atomic():
            wait_for_sealer_lock()  # the sealer must not read the head while it moves into the archive
            previous = latest_archive()
            after = previous.last_event_id if previous is not None else 0
            checkpoint = (
                AuditCheckpoint.objects.filter(created_at__lt=before, last_event_id__gt=after)
                .order_by("-last_event_id")
                .first()
            )
            if checkpoint is None:
                raise InvalidInput(f"no checkpoint made before {iso_utc(before)} covers events not yet archived")
            rows = contextlib.closing(
                AuditEvent.objects.filter(id__gt=after, id__lte=checkpoint.last_event_id)
                .order_by("id")
                .values_list(*ARCHIVE_FIELDS)
                .iterator(chunk_size=10_000)
            )
            prev = previous.last_hash if previous is not None else GENESIS_HASH
            expected: int | None = after + 1 if previous is not None else None
            first_id: int | None = None
            count = 0
            digest = hashlib.sha256()
            path = folder / f"audit-events-{after + 1:012d}-{checkpoint.last_event_id:012d}.jsonl"
            # Closed explicitly: a server-side cursor left open past a rollback would poison the transaction.
            with open(path, "xb") as handle, rows as events:
                for row in events:
                    # Verify while writing: a broken chain must never be archived (its evidence would leave).
                    if (
                        (expected is not None and row[0] != expected)
                        or row[PREV_HASH_INDEX] != prev
                        or not row[HASH_INDEX]
                    ):
                        raise Conflict(f"the chain is broken near event #{row[0]}: run audit_verify")
                    if event_hash(row, prev) != row[HASH_INDEX]:
                        raise Conflict(f"the chain is broken at event #{row[0]}: run audit_verify")
                    line = _archive_line(row)
                    handle.write(line)
                    digest.update(line)
                    first_id = first_id or row[0]
                    prev, expected, count = row[HASH_INDEX], row[0] + 1, count + 1
                handle.flush()
                os.fsync(handle.fileno())
            if first_id is None or prev != checkpoint.chain_hash or expected != checkpoint.last_event_id + 1:
                raise Conflict(f"the chain does not reach checkpoint #{checkpoint.last_event_id}: run audit_verify")
            archive = AuditArchive.objects.create(
                first_event_id=first_id,
                last_event_id=checkpoint.last_event_id,
                last_hash=checkpoint.chain_hash,
                event_count=count,
                file_name=path.name,
                file_sha256=digest.hexdigest(),
                created_at=timezone.now(),
            )
            record(
                action="audit.archive.create",
                actor=actor,
                target=archive,
                details={
                    "first_event_id": first_id,
                    "last_event_id": checkpoint.last_event_id,
                    "event_count": count,
                    "file_sha256": archive.file_sha256,
                },
            )
            with connection.cursor() as cursor:
                if is_postgresql():
                    cursor.execute("SET LOCAL isn.audit_archiving = 'on'")
                cursor.execute(
                    "DELETE FROM audit_auditevent WHERE id BETWEEN %s AND %s", [first_id, checkpoint.last_event_id]
                )
                if cursor.rowcount != count:
                    raise Conflict("events changed while they were archived; nothing was archived")
    except BaseException:
        if path is not None:
            path.unlink(missing_ok=True)
        raise
    logger.info("audit: archived events #%s-#%s (%d) to %s", first_id, archive.last_event_id, count, path.name)
    return archive
