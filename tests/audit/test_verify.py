"""audit_verify names the first bad event and what is wrong: altered, missing, reordered or truncated."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from audit.chain import GENESIS_HASH, HASH_FIELDS, event_hash, seal_pending
from audit.checkpoints import checkpoint_create, checkpoint_export, checkpoint_from_json
from audit.models import AuditCheckpoint, AuditEvent
from audit.verify import ALTERED, BAD_CHECKPOINT, MISSING, REORDERED, TRUNCATED, verify_chain
from tests.audit.chain_helpers import raw_delete, raw_update, triggers_disabled, write_events

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(vn_officer) -> list[int]:
    """Eight sealed events with every content column filled; their ids."""
    ids = write_events(8, vn_officer)
    with triggers_disabled():
        AuditEvent.objects.filter(pk=ids[2]).update(actor_api_key_id=41)
    seal_pending()
    report = verify_chain()
    assert report.ok, report.summary()
    assert report.checked == 8
    return ids


def _flipped(value: Any) -> Any:
    """The value with one bit changed, the smallest edit a forger could make."""
    if value is None:
        return "1"
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value ^ 1
    if isinstance(value, str):
        return value[:-1] + chr(ord(value[-1]) ^ 1)
    if isinstance(value, dict):
        return {**value, "n": value["n"] ^ 1}
    return value + timedelta(microseconds=1)  # a datetime


@pytest.mark.parametrize("column", [*HASH_FIELDS[1:], "prev_hash", "hash"])
def test_a_flipped_bit_in_any_column_is_reported_as_altered(chain, column):
    victim = chain[2]
    attribute = column
    value = AuditEvent.objects.values_list(attribute, flat=True).get(pk=victim)
    raw_update(victim, **{attribute: _flipped(value)})

    report = verify_chain()

    assert report.error is not None
    assert (report.error.event_id, report.error.kind) == (victim, ALTERED), report.summary()
    assert report.checked == 2


def test_the_report_names_the_event_and_the_fault(chain):
    raw_update(chain[4], action="messaging.item.reed")

    with pytest.raises(CommandError) as raised:
        call_command("audit_verify")

    assert raised.value.returncode == 1
    assert str(raised.value) == (
        f"audit chain broken at event #{chain[4]}: altered (its content does not match its hash)"
    )


def test_an_intact_chain_exits_zero_with_a_one_line_summary(chain, capsys):
    write_events(2)  # recorded after the last seal: awaiting sealing, which is not a fault

    call_command("audit_verify")

    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert out[0].startswith("audit chain intact: 8 events")
    assert out[0].endswith("2 events awaiting sealing")


def test_a_deleted_event_is_reported_missing(chain):
    raw_delete(chain[3])

    report = verify_chain()

    assert (report.error.event_id, report.error.kind) == (chain[3], MISSING)
    assert report.error.detail == f"the chain jumps from #{chain[2]} to #{chain[4]}"


def test_deleting_the_first_events_is_reported_missing(chain):
    raw_delete(chain[0], chain[1])

    report = verify_chain()

    assert (report.error.event_id, report.error.kind) == (chain[1], MISSING)


def _swap(first: int, second: int, fields: tuple[str, ...]) -> None:
    rows = {row[0]: row[1:] for row in AuditEvent.objects.filter(id__in=[first, second]).values_list("id", *fields)}
    raw_update(first, **dict(zip(fields, rows[second], strict=True)))
    raw_update(second, **dict(zip(fields, rows[first], strict=True)))


def test_two_events_swapped_are_reported_reordered(chain):
    _swap(chain[5], chain[6], HASH_FIELDS[1:])

    report = verify_chain()

    assert (report.error.event_id, report.error.kind) == (chain[5], REORDERED)
    assert report.error.detail == f"it holds the content of event #{chain[6]}"


def test_two_events_swapped_with_their_chain_fields_are_reported_reordered(chain):
    _swap(chain[5], chain[6], (*HASH_FIELDS[1:], "prev_hash", "hash"))

    report = verify_chain()

    assert (report.error.event_id, report.error.kind) == (chain[5], REORDERED)
    assert report.error.detail == f"it holds the content of event #{chain[6]}"


def test_an_event_rehashed_alone_breaks_the_link_to_the_next(chain):
    victim = chain[3]
    raw_update(victim, target_id="forged")
    row = AuditEvent.objects.values_list(*HASH_FIELDS, "prev_hash").get(pk=victim)
    raw_update(victim, hash=event_hash(row[:-1], row[-1]))

    report = verify_chain()

    assert (report.error.event_id, report.error.kind) == (chain[4], REORDERED)
    assert report.error.detail == f"it does not link to event #{victim}"


def test_a_truncated_tail_is_reported_against_the_checkpoint(chain):
    checkpoint_create()
    raw_delete(chain[6], chain[7])

    report = verify_chain()

    assert (report.error.event_id, report.error.kind) == (chain[6], TRUNCATED)
    assert report.error.detail == f"the chain ends at #{chain[5]}; the database checkpoint covers #{chain[7]}"


def _rewrite_history_from(event_id: int) -> None:
    """What a host with superuser access could do: change an event and recompute every later hash."""
    raw_update(event_id, actor_label="someone.else")
    prev = AuditEvent.objects.filter(id__lt=event_id).order_by("-id").values_list("hash", flat=True).first()
    prev = prev or GENESIS_HASH
    with triggers_disabled():
        for row in AuditEvent.objects.filter(id__gte=event_id).exclude(hash="").values_list(*HASH_FIELDS):
            digest = event_hash(row, prev)
            AuditEvent.objects.filter(pk=row[0]).update(prev_hash=prev, hash=digest)
            prev = digest


def test_a_rewritten_history_fails_against_a_checkpoint_a_member_kept(chain, tmp_path):
    kept = checkpoint_create()
    kept_file = tmp_path / "checkpoint.json"
    kept_file.write_text(json.dumps(checkpoint_export(kept)))
    _rewrite_history_from(chain[1])
    with triggers_disabled("audit_auditcheckpoint"), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditcheckpoint")
    checkpoint_create()  # the host holds the signing key, so it can sign its new history
    assert verify_chain().ok  # nothing in the database alone gives the rewrite away...

    with pytest.raises(CommandError) as raised:
        call_command("audit_verify", "--checkpoint", str(kept_file))

    assert raised.value.returncode == 1
    assert str(raised.value) == (
        f"audit chain broken at event #{kept.last_event_id}: {BAD_CHECKPOINT} "
        "(the chain differs from the file checkpoint)"
    )


def test_a_checkpoint_file_the_log_still_extends_passes(chain, tmp_path, capsys):
    kept_file = tmp_path / "checkpoint.json"
    call_command("audit_checkpoint", "--export", str(kept_file))
    write_events(3)
    seal_pending()
    capsys.readouterr()

    call_command("audit_verify", "--checkpoint", str(kept_file))

    assert capsys.readouterr().out.startswith("audit chain intact: 13 events")


def test_a_forged_checkpoint_file_is_refused(chain):
    claim = checkpoint_export(checkpoint_create())
    claim["last_event_id"] = chain[3]

    report = verify_chain(checkpoint=checkpoint_from_json(claim))

    assert (report.error.event_id, report.error.kind) == (chain[3], BAD_CHECKPOINT)
    assert report.error.detail == "file checkpoint signature is invalid"


def test_a_database_checkpoint_with_a_bad_signature_is_reported(chain):
    checkpoint = checkpoint_create()
    with triggers_disabled("audit_auditcheckpoint"):
        AuditCheckpoint.objects.filter(pk=checkpoint.pk).update(signature="00" * 64)

    report = verify_chain()

    assert (report.error.event_id, report.error.kind) == (checkpoint.last_event_id, BAD_CHECKPOINT)


def test_a_checkpoint_signed_by_an_unknown_key_is_reported(chain):
    checkpoint = checkpoint_create()

    report = verify_chain(trusted_keys={"ab" * 32})

    assert report.error.detail == "database checkpoint is signed by an unknown key"
    assert report.error.event_id == checkpoint.last_event_id


def test_an_unreadable_checkpoint_file_is_a_usage_error(tmp_path):
    bad = tmp_path / "checkpoint.json"
    bad.write_text('{"last_event_id": 3}')

    with pytest.raises(CommandError, match="is not a checkpoint") as raised:
        call_command("audit_verify", "--checkpoint", str(bad))

    assert raised.value.returncode == 2


def test_an_unsealed_event_before_sealed_ones_is_reported(chain):
    raw_update(chain[6], hash="")

    report = verify_chain()

    assert (report.error.event_id, report.error.kind) == (chain[6], ALTERED)
