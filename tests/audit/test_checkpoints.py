"""Signed checkpoints: Ed25519 over (last event id, chain hash, time), exportable for members to keep."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.core.management import call_command

from audit.chain import seal_pending
from audit.checkpoints import checkpoint_create, checkpoint_message, parse_private_key, public_key_hex
from audit.models import AuditCheckpoint, AuditEvent
from isn.env import ConfigError
from tests.audit.chain_helpers import write_events

pytestmark = pytest.mark.django_db


def test_a_checkpoint_signs_the_chain_head_and_is_recorded(vn_officer):
    ids = write_events(4, vn_officer)

    checkpoint = checkpoint_create()

    head = AuditEvent.objects.get(pk=ids[-1])
    assert (checkpoint.last_event_id, checkpoint.chain_hash) == (head.pk, head.hash)
    assert checkpoint.public_key == public_key_hex()
    message = checkpoint_message(
        last_event_id=head.pk,
        chain_hash=head.hash,
        created_at=checkpoint.created_at.isoformat(timespec="microseconds"),
    )
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(checkpoint.public_key)).verify(
        bytes.fromhex(checkpoint.signature), message
    )
    event = AuditEvent.objects.get(action="audit.checkpoint.create")
    assert (event.target_type, event.target_id) == ("audit.auditcheckpoint", str(checkpoint.pk))
    assert event.details == {"last_event_id": head.pk, "chain_hash": head.hash}


def test_no_checkpoint_before_anything_is_sealed():
    assert checkpoint_create() is None
    assert not AuditCheckpoint.objects.exists()


def test_the_same_head_is_signed_once(vn_officer):
    write_events(1, vn_officer)
    first = checkpoint_create()
    # Nothing new sealed since (the checkpoint's own event is still pending): the same checkpoint comes back.
    seal_pending_calls = AuditEvent.objects.filter(hash="").count()
    assert seal_pending_calls == 1
    assert AuditCheckpoint.objects.count() == 1
    second = checkpoint_create()
    assert second.last_event_id == first.last_event_id + 1  # it sealed the first checkpoint's event, then signed


def test_export_writes_what_a_member_needs(vn_officer, tmp_path, capsys):
    write_events(2, vn_officer)
    path = tmp_path / "kept.json"

    call_command("audit_checkpoint", "--export", str(path))

    data = json.loads(path.read_text())
    latest = AuditCheckpoint.objects.order_by("-last_event_id").first()
    assert data == {
        "last_event_id": latest.last_event_id,
        "chain_hash": latest.chain_hash,
        "created_at": latest.created_at.isoformat(timespec="microseconds"),
        "public_key": public_key_hex(),
        "signature": latest.signature,
    }
    assert AuditEvent.objects.filter(action="audit.checkpoint.export", target_id=str(latest.pk)).count() == 1
    assert f"written to {path}" in capsys.readouterr().out


def test_the_command_creates_a_checkpoint(vn_officer, capsys):
    write_events(1, vn_officer)
    call_command("audit_checkpoint")
    checkpoint = AuditCheckpoint.objects.get()
    assert (
        capsys.readouterr().out.strip() == f"checkpoint at event #{checkpoint.last_event_id}: {checkpoint.chain_hash}"
    )


def test_the_task_creates_a_checkpoint(vn_officer):
    from audit.tasks import create_checkpoint

    ids = write_events(1, vn_officer)
    seal_pending()
    assert create_checkpoint.apply().get() == ids[0]


def test_keys_are_read_from_base64_or_pem():
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    expected = public_key_hex(key)
    assert public_key_hex(parse_private_key(base64.b64encode(raw).decode())) == expected
    assert public_key_hex(parse_private_key(pem)) == expected


@pytest.mark.parametrize("text", ["c2hvcnQ=", "not base64 at all", "-----BEGIN PRIVATE KEY-----\nxx\n-----END"])
def test_a_malformed_key_is_a_configuration_error_naming_the_variable(text):
    with pytest.raises(ConfigError, match=r"^ISN_AUDIT_SIGNING_KEY "):
        parse_private_key(text)


def test_development_generates_the_signing_key_privately(settings):
    path = settings.DATA_DIR / "audit_signing_key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(base64.b64decode(path.read_text())) == 32
    assert path.read_text().strip() == settings.ISN_AUDIT_SIGNING_KEY


def test_beat_seals_every_five_seconds_and_checkpoints_hourly(settings):
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["audit-seal"] == {"task": "audit.tasks.seal_events", "schedule": 5.0}
    assert schedule["audit-checkpoint"] == {"task": "audit.tasks.create_checkpoint", "schedule": 3600.0}
    assert "worker-heartbeat" in schedule


def test_sealing_uses_the_default_queue(vn_officer):
    seal_pending()
    from audit.tasks import seal_events

    assert seal_events.name == "audit.tasks.seal_events"
