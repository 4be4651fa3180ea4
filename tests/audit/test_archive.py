"""Archiving old segments: recorded, checkpoint-aligned, and the rest of the chain stays verifiable."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from audit.archive import archive_create
from audit.chain import event_hash, seal_pending
from audit.checkpoints import checkpoint_create
from audit.models import AuditArchive, AuditEvent
from audit.verify import BAD_ARCHIVE, MISSING, verify_chain
from isn.errors import InvalidInput
from tests.audit.chain_helpers import raw_delete, triggers_disabled, write_events

pytestmark = pytest.mark.django_db


@pytest.fixture
def old_segment(vn_officer, monkeypatch, settings, tmp_path):
    """Five events and a checkpoint made 500 days ago, then two recent events; (old ids, checkpoint)."""
    settings.ISN_AUDIT_RETENTION_DAYS = 400
    settings.ISN_AUDIT_ARCHIVE_DIR = tmp_path / "audit-archive"
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() - timedelta(days=500))
    ids = write_events(5, vn_officer)
    checkpoint = checkpoint_create()
    monkeypatch.setattr(timezone, "now", real_now)
    write_events(2, vn_officer)
    seal_pending()
    return ids, checkpoint


def test_archive_moves_the_old_segment_to_a_file_and_the_chain_goes_on(old_segment, settings):
    ids, checkpoint = old_segment

    archive = archive_create(before=timezone.now() - timedelta(days=450))

    assert (archive.first_event_id, archive.last_event_id) == (ids[0], checkpoint.last_event_id)
    assert (archive.event_count, archive.last_hash) == (5, checkpoint.chain_hash)
    assert not AuditEvent.objects.filter(id__lte=archive.last_event_id).exists()
    path = settings.ISN_AUDIT_ARCHIVE_DIR / archive.file_name
    content = path.read_bytes()
    assert hashlib.sha256(content).hexdigest() == archive.file_sha256
    lines = [json.loads(line) for line in content.splitlines()]
    assert [line["id"] for line in lines] == ids
    assert lines[-1]["hash"] == checkpoint.chain_hash
    recorded = AuditEvent.objects.get(action="audit.archive.create")
    assert recorded.details == {
        "first_event_id": ids[0],
        "last_event_id": archive.last_event_id,
        "event_count": 5,
        "file_sha256": archive.file_sha256,
    }
    seal_pending()

    report = verify_chain()

    assert report.ok, report.summary()
    assert report.archived_through == archive.last_event_id
    assert report.first_id == archive.last_event_id + 1
    assert "continues from the archive through" in report.summary()


def test_archived_lines_still_hash_to_the_chain(old_segment, settings):
    from datetime import datetime

    from audit.chain import GENESIS_HASH, HASH_FIELDS

    archive = archive_create(before=timezone.now() - timedelta(days=450))
    prev = GENESIS_HASH
    for raw in (settings.ISN_AUDIT_ARCHIVE_DIR / archive.file_name).read_text().splitlines():
        line = json.loads(raw)
        values = [line[name] for name in HASH_FIELDS]
        values[1] = datetime.fromisoformat(values[1])
        assert line["prev_hash"] == prev
        assert event_hash(values, prev) == line["hash"]
        prev = line["hash"]
    assert prev == archive.last_hash


def test_events_younger_than_the_retention_period_are_never_archived(old_segment):
    with pytest.raises(InvalidInput, match=r"events are kept 400 days \(ISN_AUDIT_RETENTION_DAYS\)"):
        archive_create(before=timezone.now() - timedelta(days=399))
    assert not AuditArchive.objects.exists()


def test_nothing_is_archived_without_a_checkpoint_before_the_date(old_segment):
    with pytest.raises(InvalidInput, match="no checkpoint made before"):
        archive_create(before=timezone.now() - timedelta(days=600))


def test_a_broken_chain_is_not_archived(old_segment, settings):
    ids, _ = old_segment
    raw_delete(ids[2])

    with pytest.raises(Exception, match=f"the chain is broken near event #{ids[3]}"):
        archive_create(before=timezone.now() - timedelta(days=450))

    assert not AuditArchive.objects.exists()
    assert list(settings.ISN_AUDIT_ARCHIVE_DIR.glob("*.jsonl")) == []


def test_a_deleted_event_right_after_the_archive_is_reported(old_segment):
    archive = archive_create(before=timezone.now() - timedelta(days=450))
    seal_pending()
    raw_delete(archive.last_event_id + 1)

    report = verify_chain()

    assert (report.error.event_id, report.error.kind) == (archive.last_event_id + 1, MISSING)


def test_an_archive_row_that_disagrees_with_its_checkpoint_is_reported(old_segment):
    archive = archive_create(before=timezone.now() - timedelta(days=450))
    with triggers_disabled("audit_auditarchive"):
        AuditArchive.objects.filter(pk=archive.pk).update(last_hash="0" * 64)

    report = verify_chain()

    assert (report.error.event_id, report.error.kind) == (archive.last_event_id, BAD_ARCHIVE)


def test_the_command_archives_and_refuses(old_segment, capsys):
    ids, checkpoint = old_segment
    young = (timezone.now() - timedelta(days=10)).date().isoformat()
    with pytest.raises(CommandError, match="events are kept 400 days"):
        call_command("audit_archive", "--before", young)

    call_command("audit_archive", "--before", (timezone.now() - timedelta(days=450)).date().isoformat())

    out = capsys.readouterr().out
    assert out.startswith(f"archived 5 events #{ids[0]}-#{checkpoint.last_event_id} to audit-events-")
