from __future__ import annotations

import pytest
from django.db import transaction

from audit.models import AuditEvent, Outcome
from audit.services import neutralise, record, record_each
from isn import audit as audit_port

pytestmark = pytest.mark.django_db


def test_record_writes_who_what_and_where(vn_officer, bavet):
    event = record(
        action="agencies.office.read", actor=vn_officer, target=bavet, target_country="KH", details={"fields": ["name"]}
    )
    event.refresh_from_db()
    assert (event.action, event.outcome, event.actor_label) == ("agencies.office.read", Outcome.OK, "vn.officer")
    assert (event.actor_country, event.actor_agency_id) == ("VN", vn_officer.membership.agency_id)
    assert (event.target_type, event.target_id, event.target_country) == ("agencies.office", str(bavet.pk), "KH")
    assert event.created_at.tzinfo is not None


def test_event_rolls_back_with_the_act(vn_officer):
    before = AuditEvent.objects.count()

    def act() -> None:
        with transaction.atomic():
            record(action="messaging.item.read", actor=vn_officer)
            raise RuntimeError("the act failed after recording")

    with pytest.raises(RuntimeError):
        act()
    assert AuditEvent.objects.count() == before


def test_port_records_through_the_audit_app(vn_officer):
    event = audit_port.record(action="auth.password_change", actor=vn_officer)
    assert AuditEvent.objects.get(pk=event.pk).action == "auth.password_change"


def test_injected_line_breaks_and_control_characters_are_neutralised(outsider):
    event = record(
        action="access.denied",
        actor=None,
        actor_label="eve\r\nINFO forged line\x1b[31m",
        details={"query\n": "a\u2028b", "nested": ["c\x00d"]},
    )
    event.refresh_from_db()
    assert event.actor_label == "eve  INFO forged line [31m"
    assert event.details == {"query ": "a b", "nested": ["c d"]}
    assert neutralise("x" * 1000) == "x" * 500


def test_target_fields_from_requests_are_neutralised():
    event = record(action="access.denied", actor=None, target_type="item\n", target_id="42\r\nforged")
    event.refresh_from_db()
    assert (event.target_type, event.target_id) == ("item ", "42  forged")


def test_unknown_outcome_is_refused(vn_officer):
    with pytest.raises(ValueError, match="unknown audit outcome"):
        record(action="messaging.item.read", actor=vn_officer, outcome="maybe")


def test_a_failing_audit_write_fails_the_act_it_records(vn_officer, vn_admin, moc_bai):
    """Fail closed: make the database refuse audit inserts, and the membership change must not happen."""
    from django.db import DatabaseError, connection

    from agencies.models import Membership, Role
    from agencies.services import membership_change

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit store unavailable'; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_auditevent FOR EACH ROW EXECUTE FUNCTION refuse_audit()"
        )
    membership = Membership.objects.get(user=vn_officer)
    with pytest.raises(DatabaseError, match="audit store unavailable"):
        membership_change(actor=vn_admin, membership=membership, role=Role.SUPERVISOR, office=moc_bai)
    membership.refresh_from_db()
    assert membership.role == Role.OFFICER


def test_record_each_writes_one_event_per_target_in_one_statement(vn_officer, bavet, moc_bai):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        events = record_each(
            action="agencies.office.read",
            actor=vn_officer,
            targets=[(bavet, "KH", {"n": 1}), (moc_bai, "VN", {"n": "two\nlines"})],
        )
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "audit_auditevent"')]
    assert len(inserts) == 1
    stored = AuditEvent.objects.filter(pk__in=[event.pk for event in events]).order_by("pk")
    assert [(e.target_id, e.target_country, e.actor_label) for e in stored] == [
        (str(bavet.pk), "KH", "vn.officer"),
        (str(moc_bai.pk), "VN", "vn.officer"),
    ]
    assert [e.details for e in stored] == [{"n": 1}, {"n": "two lines"}]


def test_record_each_refuses_an_unregistered_action_and_writes_nothing(vn_officer, bavet):
    from audit.actions import UnregisteredActionError

    before = AuditEvent.objects.count()
    with transaction.atomic(), pytest.raises(UnregisteredActionError):
        record_each(action="messaging.no_such_act", actor=vn_officer, targets=[(bavet, "KH", {})])
    assert AuditEvent.objects.count() == before
