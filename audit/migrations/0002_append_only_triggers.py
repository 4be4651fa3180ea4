"""The database itself keeps the audit trail append-only.

PostgreSQL: audit events refuse every UPDATE but sealing (an unsealed event gets prev_hash, hash and sealed_at, and
no other column changes) and every DELETE but archiving (a sealed event covered by an AuditArchive row, in a
transaction that said SET LOCAL isn.audit_archiving = 'on'). Checkpoints and archive rows refuse UPDATE and DELETE
outright. TRUNCATE is refused on all three, except for a superuser in a Django test database (test_*): the test
runner empties every table with TRUNCATE between transactional tests, and a superuser could disable the trigger
anyway. The hash chain, not these triggers, is what catches a host that does.

SQLite (development) gets the same rules as far as SQLite can express them: no session flag, so archived sealed
events may be deleted at any time there.
"""

from django.db import migrations

_PG_INSTALL = r"""
CREATE OR REPLACE FUNCTION audit_event_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.hash = '' AND NEW.hash <> ''
           AND (to_jsonb(NEW) - 'prev_hash' - 'hash' - 'sealed_at')
               IS NOT DISTINCT FROM (to_jsonb(OLD) - 'prev_hash' - 'hash' - 'sealed_at') THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'audit events are append-only: event % cannot be changed', OLD.id;
    END IF;
    IF current_setting('isn.audit_archiving', true) = 'on' AND OLD.hash <> ''
       AND EXISTS (SELECT 1 FROM audit_auditarchive a WHERE OLD.id BETWEEN a.first_event_id AND a.last_event_id) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit events are append-only: event % cannot be deleted', OLD.id;
END
$$;

CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit records are append-only: % cannot be changed or deleted', TG_TABLE_NAME;
END
$$;

CREATE OR REPLACE FUNCTION audit_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_database() LIKE 'test\_%'
       AND (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit records are append-only: % cannot be truncated', TG_TABLE_NAME;
END
$$;

CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_event_guard();
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_truncate();
CREATE TRIGGER audit_checkpoint_append_only BEFORE UPDATE OR DELETE ON audit_auditcheckpoint
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoint_no_truncate BEFORE TRUNCATE ON audit_auditcheckpoint
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_truncate();
CREATE TRIGGER audit_archive_append_only BEFORE UPDATE OR DELETE ON audit_auditarchive
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_archive_no_truncate BEFORE TRUNCATE ON audit_auditarchive
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_truncate();
"""

_PG_REMOVE = """
DROP TRIGGER IF EXISTS audit_event_append_only ON audit_auditevent;
DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_auditevent;
DROP TRIGGER IF EXISTS audit_checkpoint_append_only ON audit_auditcheckpoint;
DROP TRIGGER IF EXISTS audit_checkpoint_no_truncate ON audit_auditcheckpoint;
DROP TRIGGER IF EXISTS audit_archive_append_only ON audit_auditarchive;
DROP TRIGGER IF EXISTS audit_archive_no_truncate ON audit_auditarchive;
DROP FUNCTION IF EXISTS audit_event_guard();
DROP FUNCTION IF EXISTS audit_refuse_change();
DROP FUNCTION IF EXISTS audit_refuse_truncate();
"""

# Every column but the three the sealer writes: none may change, even on an unsealed event.
_CONTENT_COLUMNS = (
    "id",
    "created_at",
    "actor_user_id",
    "actor_api_key_id",
    "actor_label",
    "actor_agency_id",
    "actor_country",
    "action",
    "target_type",
    "target_id",
    "target_country",
    "outcome",
    "ip_address",
    "user_agent",
    "request_id",
    "details",
)
_CONTENT_CHANGED = " OR ".join(f"NEW.{column} IS NOT OLD.{column}" for column in _CONTENT_COLUMNS)

_SQLITE_INSTALL = [
    f"""CREATE TRIGGER audit_event_append_only_update BEFORE UPDATE ON audit_auditevent
    WHEN OLD.hash <> '' OR NEW.hash = '' OR {_CONTENT_CHANGED}
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only: an event cannot be changed'); END""",
    """CREATE TRIGGER audit_event_append_only_delete BEFORE DELETE ON audit_auditevent
    WHEN OLD.hash = '' OR NOT EXISTS (
        SELECT 1 FROM audit_auditarchive a WHERE OLD.id BETWEEN a.first_event_id AND a.last_event_id)
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only: an event cannot be deleted'); END""",
]
_SQLITE_TABLES = ("audit_auditcheckpoint", "audit_auditarchive")
for _table in _SQLITE_TABLES:
    for _operation in ("UPDATE", "DELETE"):
        _SQLITE_INSTALL.append(
            f"""CREATE TRIGGER {_table}_append_only_{_operation.lower()} BEFORE {_operation} ON {_table}
    BEGIN SELECT RAISE(ABORT, 'audit records are append-only: {_table} cannot be changed or deleted'); END"""
        )
_SQLITE_TRIGGERS = ["audit_event_append_only_update", "audit_event_append_only_delete"] + [
    f"{table}_append_only_{operation}" for table in _SQLITE_TABLES for operation in ("update", "delete")
]


def install(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(_PG_INSTALL, params=None)
    elif vendor == "sqlite":
        for statement in _SQLITE_INSTALL:
            schema_editor.execute(statement, params=None)


def remove(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(_PG_REMOVE, params=None)
    elif vendor == "sqlite":
        for trigger in _SQLITE_TRIGGERS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {trigger}", params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_audit_trail")]

    operations = [migrations.RunPython(install, remove)]
