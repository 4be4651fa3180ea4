"""The revocation ledger: a signed, chained line for every shred, appended after commit, content-free, and caught
up by the reconciliation when an append failed."""

from __future__ import annotations

import json
import logging

import pytest

from agencies.keyring import country_key_retire, country_key_rotate
from audit.checkpoints import checkpoint_create
from audit.ledger import ledger_append, ledger_read, ledger_reconcile
from messaging.items.changes import item_change, item_withdraw
from messaging.items.lifecycle import item_create
from tests.messaging.conftest import item_fields

pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger(settings, tmp_path):
    settings.ISN_REVOCATION_LEDGER = tmp_path / "ledger" / "revocations.log"
    return settings.ISN_REVOCATION_LEDGER


@pytest.fixture
def post():
    def _post(actor, **overrides):
        return item_create(actor=actor, **item_fields(**overrides))

    return _post


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_withdrawal_and_narrowing_are_appended_after_commit_signed_and_without_content(
    ledger, post, vn_officer, django_capture_on_commit_callbacks
):
    narrowed = post(vn_officer, countries=["VN", "KH", "TH"]).item
    withdrawn = post(vn_officer).item
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        item_withdraw(actor=vn_officer, item_id=withdrawn.pk)
    assert not ledger.exists(), "nothing is written before the act commits"
    for callback in callbacks:
        callback()
    with django_capture_on_commit_callbacks(execute=True):
        item_change(actor=vn_officer, item_id=narrowed.pk, countries=["VN", "KH"])

    lines = _lines(ledger)
    assert [(line["seq"], line["action"], line["target_id"]) for line in lines] == [
        (1, "messaging.item.withdraw", str(withdrawn.pk)),
        (2, "messaging.item.release_narrow", str(narrowed.pk)),
    ]
    assert lines[0]["details"] == {"shredded_countries": ["KH"]}
    assert lines[1]["details"]["removed_countries"] == ["TH"]
    assert all(line["audit_head"] >= line["event_id"] for line in lines)
    text = ledger.read_text()
    fields = item_fields()
    assert fields["title"] not in text
    assert "70C-123.45" not in text
    report = ledger_read()
    assert report.ok, report.error
    assert len(report.lines) == 2


def test_key_retirement_and_checkpoints_are_in_the_ledger(ledger, django_capture_on_commit_callbacks, vn_officer):
    with django_capture_on_commit_callbacks(execute=True):
        country_key_rotate(actor=None, country_code="VN")
        country_key_retire(actor=None, country_code="VN", version=1)
        checkpoint = checkpoint_create()
    lines = _lines(ledger)
    assert [line["action"] for line in lines] == ["agencies.country_key.retire", "audit.checkpoint.create"]
    assert lines[0]["target_country"] == "VN"
    assert lines[0]["details"] == {"version": 1}
    assert lines[1]["details"] == {"last_event_id": checkpoint.last_event_id}


def _three_lines(ledger) -> list[bytes]:
    for number in range(3):
        ledger_append(
            [
                {
                    "event_id": 10 + number,
                    "event_at": "2026-01-01T00:00:00.000000+00:00",
                    "action": "messaging.item.withdraw",
                    "target_type": "messaging.item",
                    "target_id": f"item-{number}",
                    "target_country": "VN",
                    "details": {"shredded_countries": ["KH"]},
                }
            ],
            head=20,
        )
    return ledger.read_bytes().splitlines(keepends=True)


def test_a_line_dropped_from_the_middle_is_caught(ledger):
    lines = _three_lines(ledger)
    assert ledger_read().ok
    ledger.write_bytes(lines[0] + lines[2])
    report = ledger_read()
    assert report.error == "line 2: numbered 3: a line before it was dropped or moved"


def test_a_changed_line_is_caught(ledger):
    lines = _three_lines(ledger)
    ledger.write_bytes(lines[0] + lines[1].replace(b"item-1", b"item-9") + lines[2])
    assert ledger_read().error == "line 2: its signature is invalid"


def test_a_line_signed_by_another_key_is_caught(ledger, settings):
    _three_lines(ledger)
    assert ledger_read(trusted_keys={"00" * 32}).error.startswith("line 1: signed by a key that is not trusted")


def test_a_failed_append_is_logged_without_content_and_reconciled(
    ledger, settings, tmp_path, post, vn_officer, django_capture_on_commit_callbacks, caplog
):
    item = post(vn_officer).item
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    settings.ISN_REVOCATION_LEDGER = blocked / "revocations.log"
    with caplog.at_level(logging.ERROR, logger="audit.ledger"), django_capture_on_commit_callbacks(execute=True):
        item_withdraw(actor=vn_officer, item_id=item.pk)
    [message] = [record.getMessage() for record in caplog.records if record.name == "audit.ledger"]
    assert "messaging.item.withdraw" in message
    assert "will add it" in message
    assert item_fields()["title"] not in message

    settings.ISN_REVOCATION_LEDGER = ledger
    assert ledger_reconcile(min_age_seconds=0) == 1
    assert ledger_reconcile(min_age_seconds=0) == 0
    [line] = _lines(ledger)
    assert (line["action"], line["target_id"]) == ("messaging.item.withdraw", str(item.pk))


def test_beat_reconciles_the_ledger_every_minute(settings, ledger):
    from audit.tasks import reconcile_ledger

    entry = settings.CELERY_BEAT_SCHEDULE["audit-reconcile-ledger"]
    assert entry == {"task": reconcile_ledger.name, "schedule": 60.0}
    assert reconcile_ledger() == 0
