"""The database refuses to change audit records: UPDATE, DELETE and TRUNCATE fail, whoever sends them."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from audit.chain import seal_pending
from audit.checkpoints import checkpoint_create
from audit.models import AuditArchive, AuditCheckpoint, AuditEvent
from tests.audit.chain_helpers import write_events

pytestmark = pytest.mark.django_db


def _refused(sql: str, params: list | None = None) -> str:
    with pytest.raises(DatabaseError) as raised, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    return str(raised.value).splitlines()[0]


@pytest.fixture
def sealed(vn_officer) -> list[int]:
    ids = write_events(3, vn_officer)
    seal_pending()
    return ids


def test_a_sealed_event_cannot_be_updated(sealed):
    with (
        pytest.raises(DatabaseError, match=f"audit events are append-only: event {sealed[0]} cannot be changed"),
        transaction.atomic(),
    ):
        AuditEvent.objects.filter(pk=sealed[0]).update(action="test.rewritten")
    assert AuditEvent.objects.get(pk=sealed[0]).action == "messaging.item.read"


def test_a_sealed_event_cannot_be_resealed(sealed):
    message = _refused("UPDATE audit_auditevent SET hash = %s WHERE id = %s", ["f" * 64, sealed[1]])
    assert message == f"audit events are append-only: event {sealed[1]} cannot be changed"


def test_an_unsealed_event_cannot_be_edited_even_while_being_sealed(vn_officer):
    event_id = write_events(1, vn_officer)[0]
    assert _refused("UPDATE audit_auditevent SET action = 'x' WHERE id = %s", [event_id]).endswith("cannot be changed")
    message = _refused(
        "UPDATE audit_auditevent SET hash = %s, prev_hash = %s, details = '{}' WHERE id = %s",
        ["a" * 64, "b" * 64, event_id],
    )
    assert message.endswith("cannot be changed")


def test_sealing_is_the_one_update_allowed(vn_officer):
    event_id = write_events(1, vn_officer)[0]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET hash = %s, prev_hash = %s, sealed_at = now() WHERE id = %s",
            ["a" * 64, "b" * 64, event_id],
        )
    assert AuditEvent.objects.get(pk=event_id).hash == "a" * 64


def test_events_cannot_be_deleted(sealed, vn_officer):
    unsealed = write_events(1, vn_officer)[0]
    with pytest.raises(DatabaseError, match="cannot be deleted"), transaction.atomic():
        AuditEvent.objects.filter(pk=sealed[0]).delete()
    assert _refused("DELETE FROM audit_auditevent WHERE id = %s", [unsealed]).endswith("cannot be deleted")
    assert AuditEvent.objects.filter(pk__in=[*sealed, unsealed]).count() == 4


def test_the_archiving_flag_alone_does_not_allow_a_delete(sealed):
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL isn.audit_archiving = 'on'")
    assert _refused("DELETE FROM audit_auditevent WHERE id = %s", [sealed[0]]).endswith("cannot be deleted")


def test_archived_sealed_events_can_be_deleted_only_under_the_flag(sealed):
    AuditArchive.objects.create(
        first_event_id=sealed[0],
        last_event_id=sealed[1],
        last_hash="a" * 64,
        event_count=2,
        file_name="x.jsonl",
        file_sha256="b" * 64,
        created_at="2026-01-01T00:00:00Z",
    )
    assert _refused("DELETE FROM audit_auditevent WHERE id = %s", [sealed[0]]).endswith("cannot be deleted")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL isn.audit_archiving = 'on'")
        cursor.execute("DELETE FROM audit_auditevent WHERE id BETWEEN %s AND %s", [sealed[0], sealed[1]])
        assert cursor.rowcount == 2
        cursor.execute("SET LOCAL isn.audit_archiving = 'off'")
    assert list(AuditEvent.objects.filter(pk__in=sealed).values_list("id", flat=True)) == [sealed[2]]


def test_checkpoints_and_archives_cannot_be_changed_or_deleted(sealed):
    checkpoint = checkpoint_create()
    assert _refused("UPDATE audit_auditcheckpoint SET chain_hash = 'x' WHERE id = %s", [checkpoint.pk]) == (
        "audit records are append-only: audit_auditcheckpoint cannot be changed or deleted"
    )
    assert _refused("DELETE FROM audit_auditcheckpoint").endswith("cannot be changed or deleted")
    AuditArchive.objects.create(
        first_event_id=1,
        last_event_id=1,
        last_hash="a" * 64,
        event_count=1,
        file_name="x.jsonl",
        file_sha256="b" * 64,
        created_at="2026-01-01T00:00:00Z",
    )
    assert _refused("UPDATE audit_auditarchive SET last_hash = 'x'").endswith("cannot be changed or deleted")
    assert _refused("DELETE FROM audit_auditarchive").endswith("cannot be changed or deleted")
    assert AuditCheckpoint.objects.filter(pk=checkpoint.pk, chain_hash=checkpoint.chain_hash).exists()


@pytest.mark.parametrize("table", ["audit_auditevent", "audit_auditcheckpoint", "audit_auditarchive"])
def test_the_application_role_cannot_truncate(sealed, table):
    # The app connects as an ordinary role in production; the test database user is a superuser, so act as one.
    with connection.cursor() as cursor:
        cursor.execute("CREATE ROLE isn_app_under_test NOLOGIN")
        cursor.execute(f"GRANT ALL ON {table} TO isn_app_under_test")
        cursor.execute("SET LOCAL ROLE isn_app_under_test")
    try:
        message = _refused(f"TRUNCATE {table}")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")
    assert message == f"audit records are append-only: {table} cannot be truncated"
    assert AuditEvent.objects.filter(pk__in=sealed).count() == 3
