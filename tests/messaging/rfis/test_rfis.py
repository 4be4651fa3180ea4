"""Requests for information: the thread (ask, answer, reopen, close), sealing, who sees a request, due-time reminders
and escalation, and an audit event for every step filed so that both countries' auditors see it."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from agencies.models import Role
from audit.models import AuditEvent
from audit.selectors import events_visible_to
from isn.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from messaging.core.sealing import ContentUnavailable
from messaging.items.lifecycle import item_read
from messaging.models import (
    Notification,
    NotificationKind,
    OutboxKind,
    OutboxMessage,
    Rfi,
    RfiKey,
    RfiReply,
    RfiStatus,
)
from messaging.rfis.services import (
    NOT_FOUND_MESSAGE,
    rfi_close,
    rfi_create,
    rfi_list,
    rfi_read,
    rfi_reply,
    rfis_escalate_due,
    rfis_for_listing,
)
from tests.factories import MembershipFactory, UserFactory
from tests.messaging.network import build_network, post_item

pytestmark = pytest.mark.django_db

SUBJECT = "Owner of lorry 70C-123.45"
QUESTION = "Who owns the lorry with plates 70C-123.45 that crossed at Bavet on Thursday night?"
ANSWER = "Registered to Sokha Trading Co., Svay Rieng; the driver is known to us."


@pytest.fixture(autouse=True)
def _short_escalation(settings):
    settings.ISN_RFI_ESCALATE_AFTER_SECONDS = 60


@pytest.fixture
def net():
    return build_network()


def ask(net, asker="vn.officer", **overrides):
    fields = {
        "target_agency": net.kh.pk,
        "target_office": net.bavet.pk,
        "subject": SUBJECT,
        "question": QUESTION,
        "priority": "priority",
    }
    fields.update(overrides)
    return rfi_create(actor=net.user(asker), **fields).rfi


def told(rfi, kind):
    return set(Notification.objects.filter(rfi=rfi, kind=kind).values_list("user__username", flat=True))


def events(rfi, action):
    return list(AuditEvent.objects.filter(action=action, target_id=str(rfi.pk)).order_by("id"))


# --- asking ----------------------------------------------------------------------------------------------------------


def test_a_question_is_sealed_for_the_two_countries_and_told_to_the_counterpart_office(net):
    before = timezone.now()
    rfi = ask(net)

    assert (rfi.requester_country, rfi.target_country, rfi.status) == ("VN", "KH", RfiStatus.OPEN)
    assert rfi.requester_office == net.moc_bai
    assert set(RfiKey.objects.filter(rfi=rfi).values_list("country_id", flat=True)) == {"VN", "KH"}
    # The default answer time of a PRIORITY request: 24 hours.
    assert before + timedelta(hours=24) <= rfi.due_at <= timezone.now() + timedelta(hours=24)
    # Bavet's people: its officer and its supervisor; not the duty desk, the other agency or the auditor.
    assert told(rfi, NotificationKind.RFI_RECEIVED) == {"kh.officer", "kh.supervisor"}
    assert OutboxMessage.objects.filter(rfi=rfi, kind=OutboxKind.NOTIFY_EMAIL).count() == 1

    with connection.cursor() as cursor:
        cursor.execute("SELECT subject_sealed, question_sealed FROM messaging_rfi WHERE id = %s", [rfi.pk])
        raw = b"".join(bytes(value) for value in cursor.fetchone())
        cursor.execute("SELECT row_to_json(r)::text FROM messaging_rfi r WHERE id = %s", [rfi.pk])
        row_text = cursor.fetchone()[0]
    for secret in (SUBJECT, QUESTION, "70C-123.45"):
        assert secret.encode() not in raw
        assert secret not in row_text
        assert secret.encode().hex() not in row_text  # bytea as hex in the JSON

    [event] = events(rfi, "messaging.rfi.create")
    assert (event.actor_country, event.target_country) == ("VN", "KH")
    assert event.details["target_agency_id"] == net.kh.pk
    assert event.details["target_office_id"] == net.bavet.pk
    assert sorted(event.details["notified_users"]) == sorted([net.user("kh.officer").pk, net.user("kh.supervisor").pk])
    assert SUBJECT not in str(event.details)
    assert "70C" not in str(event.details)
    # Both countries' national auditors see it; a third country's does not.
    assert events_visible_to(net.user("kh.auditor")).filter(pk=event.pk).exists()
    vn_auditor = MembershipFactory(user=UserFactory(username="vn.auditor"), agency=net.vn, role=Role.NATIONAL_AUDITOR)
    assert events_visible_to(vn_auditor.user).filter(pk=event.pk).exists()
    assert not events_visible_to(net.user("la.auditor")).filter(pk=event.pk).exists()


def test_without_an_office_the_duty_desk_is_told_and_without_a_desk_the_supervisors(net):
    to_desk = ask(net, target_office=None)
    assert told(to_desk, NotificationKind.RFI_RECEIVED) == {"kh.desk", "kh.focal"}
    to_lao = ask(net, target_agency=net.la.pk, target_office=None)
    assert told(to_lao, NotificationKind.RFI_RECEIVED) == {"la.supervisor"}  # never the auditor


def test_default_due_time_follows_the_priority_and_an_explicit_one_is_kept(net):
    flash = ask(net, priority="flash")
    assert timedelta(hours=1, minutes=59) < flash.due_at - flash.created_at <= timedelta(hours=2)
    routine = ask(net, priority="routine")
    assert routine.due_at - routine.created_at == timedelta(days=7)
    wanted = timezone.now() + timedelta(days=3)
    assert ask(net, due_at=wanted).due_at == wanted


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"target_agency": "own"}, "target_agency"),
        ({"target_agency": 999_999}, "target_agency"),
        ({"target_agency": 2**40}, "target_agency"),
        ({"target_office": "moc_bai"}, "target_office"),
        ({"subject": "two\nlines"}, "subject"),
        ({"subject": "x" * 301}, "subject"),
        ({"question": "   "}, "question"),
        ({"question": "x" * 20_001}, "question"),
        ({"priority": "urgent"}, "priority"),
        ({"due_at": "past"}, "due_at"),
        ({"due_at": "far"}, "due_at"),
        ({"item_id": "unreadable"}, "item"),
        ({"item_id": "not-an-id"}, "item"),
    ],
)
def test_bad_requests_are_refused_with_the_field_named_and_nothing_stored(net, overrides, field):
    values = {
        "own": net.vn.pk,
        "moc_bai": net.moc_bai.pk,
        "past": timezone.now() - timedelta(minutes=1),
        "far": timezone.now() + timedelta(days=91),
    }
    if overrides.get("item_id") == "unreadable":  # Thailand's item, released to Thailand only
        values["unreadable"] = post_item(net.user("th.officer"), countries=["TH"]).pk
    resolved = {key: values.get(value, value) if isinstance(value, str) else value for key, value in overrides.items()}
    with pytest.raises(InvalidInput) as refused:
        ask(net, **resolved)
    assert field in refused.value.extra["fields"]
    assert not Rfi.objects.exists()
    assert not Notification.objects.exists()


def test_auditors_never_ask(net):
    with pytest.raises(PermissionDenied):
        ask(net, asker="kh.auditor", target_agency=net.vn.pk, target_office=None)


def test_the_asked_side_sees_only_the_id_of_the_item_asked_about(net):
    item = post_item(net.user("vn.officer"), countries=["VN"])  # not released to Cambodia
    rfi = ask(net, item_id=item.pk)
    content = rfi_read(actor=net.user("kh.officer"), rfi_id=rfi.pk)
    assert content.rfi.item_id == item.pk
    with pytest.raises(NotFound):
        item_read(actor=net.user("kh.officer"), item_id=item.pk)


# --- the thread ------------------------------------------------------------------------------------------------------


def test_answer_reopen_close_and_no_reply_after_closing(net):
    rfi = ask(net)
    vn, kh = net.user("vn.officer"), net.user("kh.officer")

    first = rfi_reply(actor=kh, rfi_id=rfi.pk, body=ANSWER)
    rfi.refresh_from_db()
    assert rfi.status == RfiStatus.ANSWERED
    assert rfi.answered_at == first.reply.created_at
    assert told(rfi, NotificationKind.RFI_REPLIED) == {"vn.officer"}

    due_before = rfi.due_at
    rfi_reply(actor=vn, rfi_id=rfi.pk, body="Thank you. Does the driver have a record?")
    rfi.refresh_from_db()
    assert rfi.status == RfiStatus.OPEN  # reopened, with the answer time again
    assert rfi.due_at >= due_before
    assert told(rfi, NotificationKind.RFI_REPLIED) == {"vn.officer", "kh.officer", "kh.supervisor"}

    rfi_reply(actor=net.user("kh.supervisor"), rfi_id=rfi.pk, body="Two convictions, 2019 and 2021.")
    content = rfi_read(actor=vn, rfi_id=rfi.pk)
    assert (content.subject, content.question, content.direction) == (SUBJECT, QUESTION, "sent")
    assert [r.body for r in content.replies] == [
        ANSWER,
        "Thank you. Does the driver have a record?",
        "Two convictions, 2019 and 2021.",
    ]
    assert [r.reply.author_agency_id for r in content.replies] == [net.kh.pk, net.vn.pk, net.kh.pk]
    assert rfi_read(actor=kh, rfi_id=rfi.pk).direction == "received"

    with pytest.raises(PermissionDenied, match="Only the asking agency"):
        rfi_close(actor=kh, rfi_id=rfi.pk)
    closed = rfi_close(actor=vn, rfi_id=rfi.pk)
    assert closed.status == RfiStatus.CLOSED
    assert closed.closed_at is not None
    assert told(rfi, NotificationKind.RFI_CLOSED) == {"kh.officer", "kh.supervisor"}
    with pytest.raises(Conflict, match="closed by the asking agency"):
        rfi_reply(actor=kh, rfi_id=rfi.pk, body="One more thing.")
    with pytest.raises(Conflict, match="already closed"):
        rfi_close(actor=vn, rfi_id=rfi.pk)
    assert RfiReply.objects.filter(rfi=rfi).count() == 3

    # Every step recorded, filed under the other side's country.
    replies = events(rfi, "messaging.rfi.reply")
    assert [(e.actor_country, e.target_country, e.details["status"]) for e in replies] == [
        ("KH", "VN", "answered"),
        ("VN", "KH", "open"),
        ("KH", "VN", "answered"),
    ]
    assert [(e.actor_country, e.target_country) for e in events(rfi, "messaging.rfi.read")] == [
        ("VN", "KH"),
        ("KH", "VN"),
    ]
    [close] = events(rfi, "messaging.rfi.close")
    assert (close.actor_country, close.target_country, close.details["status_before"]) == ("VN", "KH", "answered")
    for event in AuditEvent.objects.filter(target_id=str(rfi.pk)):
        assert "70C" not in str(event.details)
        assert "convictions" not in str(event.details)


def test_reply_bodies_are_sealed_and_bound_to_their_reply(net):
    rfi = ask(net)
    first = rfi_reply(actor=net.user("kh.officer"), rfi_id=rfi.pk, body=ANSWER).reply
    second = rfi_reply(actor=net.user("kh.officer"), rfi_id=rfi.pk, body="Second answer.").reply
    with connection.cursor() as cursor:
        cursor.execute("SELECT body_sealed FROM messaging_rfireply WHERE rfi_id = %s", [rfi.pk])
        raw = b"".join(bytes(row[0]) for row in cursor.fetchall())
    assert b"Sokha" not in raw
    assert b"Second answer" not in raw
    # A sealed body moved onto another reply of the same request does not open: it fails closed and is recorded.
    RfiReply.objects.filter(pk=second.pk).update(body_sealed=RfiReply.objects.get(pk=first.pk).body_sealed)
    with pytest.raises(ContentUnavailable):
        rfi_read(actor=net.user("vn.officer"), rfi_id=rfi.pk)
    [failure] = events(rfi, "messaging.rfi.decrypt_failed")
    assert (failure.outcome, failure.details["reason"], failure.target_country) == (
        "error",
        "reply_does_not_open",
        "KH",
    )
    assert not events(rfi, "messaging.rfi.read")  # the read itself was rolled back


def test_a_reply_notification_is_not_duplicated_while_unread_and_comes_back_once_read(net):
    rfi = ask(net)
    vn, kh = net.user("vn.officer"), net.user("kh.officer")
    rfi_reply(actor=kh, rfi_id=rfi.pk, body=ANSWER)
    [notice] = Notification.objects.filter(rfi=rfi, user=vn, kind=NotificationKind.RFI_REPLIED)
    rfi_reply(actor=kh, rfi_id=rfi.pk, body="And another thing.")
    assert Notification.objects.filter(rfi=rfi, user=vn, kind=NotificationKind.RFI_REPLIED).count() == 1
    notice.refresh_from_db()
    assert notice.read_at is None
    first_created = notice.created_at

    rfi_read(actor=vn, rfi_id=rfi.pk)  # reading the request reads its notifications
    notice.refresh_from_db()
    assert notice.read_at is not None
    Notification.objects.filter(pk=notice.pk).update(emailed_at=timezone.now())
    emails_before = OutboxMessage.objects.filter(rfi=rfi, kind=OutboxKind.NOTIFY_EMAIL).count()

    rfi_reply(actor=kh, rfi_id=rfi.pk, body="A third answer.")
    notice.refresh_from_db()
    assert notice.read_at is None  # unread again, dated now, to be e-mailed again
    assert notice.created_at > first_created
    assert notice.emailed_at is None
    assert Notification.objects.filter(rfi=rfi, user=vn, kind=NotificationKind.RFI_REPLIED).count() == 1
    assert OutboxMessage.objects.filter(rfi=rfi, kind=OutboxKind.NOTIFY_EMAIL).count() == emails_before + 1


def test_an_answer_can_attach_only_an_item_of_the_answering_agency_released_to_the_asker(net):
    rfi = ask(net)
    kh = net.user("kh.officer")
    own_only = post_item(kh, countries=["KH"])
    released = post_item(kh, countries=["KH", "VN"])
    narrowed = post_item(kh, countries=["KH", "VN"], agencies=[net.kh.pk, net.kh_customs.pk])
    someone_elses = post_item(net.user("th.officer"), countries=["TH", "KH", "VN"])

    with pytest.raises(InvalidInput, match="Release it to them first"):
        rfi_reply(actor=kh, rfi_id=rfi.pk, body=ANSWER, item_id=own_only.pk)
    with pytest.raises(InvalidInput, match="only an item your agency posted"):
        rfi_reply(actor=kh, rfi_id=rfi.pk, body=ANSWER, item_id=someone_elses.pk)
    with pytest.raises(InvalidInput, match="only an item your agency posted"):
        rfi_reply(actor=kh, rfi_id=rfi.pk, body=ANSWER, item_id=uuid.uuid4())
    assert not RfiReply.objects.exists()

    # Released to Viet Nam: fine (the agency restriction above names Cambodian agencies only, so VN is unrestricted).
    reply = rfi_reply(actor=kh, rfi_id=rfi.pk, body=ANSWER, item_id=released.pk).reply
    assert reply.item_id == released.pk
    assert rfi_reply(actor=kh, rfi_id=rfi.pk, body="Also this.", item_id=narrowed.pk).reply.item_id == narrowed.pk
    content = rfi_read(actor=net.user("vn.officer"), rfi_id=rfi.pk)
    assert [r.reply.item_id for r in content.replies] == [released.pk, narrowed.pk]
    assert item_read(actor=net.user("vn.officer"), item_id=released.pk).title
    [event, _] = events(rfi, "messaging.rfi.reply")
    assert event.details["item_id"] == str(released.pk)


def test_an_item_restricted_to_other_agencies_of_the_asking_country_cannot_be_attached(net):
    from tests.factories import AgencyFactory, country

    vn_police = AgencyFactory(country=country("VN"), name="Viet Nam Police", short_name="C04")
    rfi = ask(net)
    item = post_item(net.user("kh.officer"), countries=["KH", "VN"], agencies=[vn_police.pk])
    with pytest.raises(InvalidInput, match="not released to BGC"):
        rfi_reply(actor=net.user("kh.officer"), rfi_id=rfi.pk, body=ANSWER, item_id=item.pk)


# --- who sees a request ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("outsider", ["th.officer", "kh.customs", "kh.auditor", "la.auditor", "la.supervisor"])
def test_anyone_but_the_two_agencies_gets_the_answer_of_a_request_that_does_not_exist(net, outsider):
    rfi = ask(net)
    viewer = net.user(outsider)
    for rfi_id in (rfi.pk, uuid.uuid4(), "not-an-id"):
        with pytest.raises(NotFound) as read:
            rfi_read(actor=viewer, rfi_id=rfi_id)
        with pytest.raises(NotFound) as replied:
            rfi_reply(actor=viewer, rfi_id=rfi_id, body="Let me in.")
        with pytest.raises(NotFound) as closed:
            rfi_close(actor=viewer, rfi_id=rfi_id)
        assert read.value.message == replied.value.message == closed.value.message == NOT_FOUND_MESSAGE
    assert not rfis_for_listing(viewer).exists()
    assert not RfiReply.objects.exists()
    assert Rfi.objects.get(pk=rfi.pk).status == RfiStatus.OPEN


def test_every_member_of_the_two_agencies_sees_it_but_not_their_auditors(net):
    rfi = ask(net, target_office=None)
    for name in ("vn.officer", "vn.focal", "kh.officer", "kh.desk", "kh.admin", "kh.supervisor"):
        assert list(rfis_for_listing(net.user(name))) == [rfi], name
    assert not rfis_for_listing(net.user("kh.auditor")).exists()


def test_a_decryption_failure_fails_closed_and_is_recorded(net):
    rfi = ask(net)
    RfiKey.objects.filter(rfi=rfi, country_id="KH").update(wrapped_key=b"\x01" + b"\x00" * 60)
    with pytest.raises(ContentUnavailable):
        rfi_read(actor=net.user("kh.officer"), rfi_id=rfi.pk)
    with pytest.raises(ContentUnavailable):
        rfi_reply(actor=net.user("kh.officer"), rfi_id=rfi.pk, body=ANSWER)
    assert not RfiReply.objects.exists()
    failures = events(rfi, "messaging.rfi.decrypt_failed")
    assert [(e.details["reason"], e.details["during"], e.target_country) for e in failures] == [
        ("key_does_not_open", "rfi_read", "VN"),
        ("key_does_not_open", "rfi_reply", "VN"),
    ]
    # A list still serves the page, with the subject left out and the failure recorded.
    [summary] = rfi_list(actor=net.user("kh.officer"), rfis=list(rfis_for_listing(net.user("kh.officer"))))
    assert summary.subject is None
    assert len(events(rfi, "messaging.rfi.decrypt_failed")) == 3
    # Viet Nam's key is untouched.
    assert rfi_read(actor=net.user("vn.officer"), rfi_id=rfi.pk).question == QUESTION


def test_a_list_is_recorded_once_naming_every_request(net):
    sent = ask(net)
    received = ask(net, asker="kh.officer", target_agency=net.vn.pk, target_office=net.moc_bai.pk)
    officer = net.user("vn.officer")
    summaries = rfi_list(actor=officer, rfis=list(rfis_for_listing(officer)))
    assert [(s.rfi.pk, s.subject, s.direction) for s in summaries] == [
        (received.pk, SUBJECT, "received"),
        (sent.pk, SUBJECT, "sent"),
    ]
    [event] = AuditEvent.objects.filter(action="messaging.rfi.list")
    assert event.details == {"rfi_ids": [str(received.pk), str(sent.pk)], "count": 2}
    with pytest.raises(PermissionDenied):
        rfi_list(actor=net.user("kh.auditor"), rfis=[])


# --- due times -------------------------------------------------------------------------------------------------------


def test_an_overdue_request_reminds_then_escalates_to_supervisors_and_national_focal_points(net):
    # A focal point of Cambodia in another agency: brought in only by the escalation.
    focal = MembershipFactory(
        user=UserFactory(username="kh.nacd.focal"), agency=net.kh_customs, role=Role.NATIONAL_FOCAL_POINT
    ).user
    rfi = ask(net)
    due = rfi.due_at

    assert rfis_escalate_due(now=due - timedelta(seconds=1)) == 0
    assert rfis_escalate_due(now=due + timedelta(seconds=1)) == 1
    rfi.refresh_from_db()
    assert rfi.escalation_level == 1
    assert told(rfi, NotificationKind.RFI_REMINDER) == {"kh.officer", "kh.supervisor"}
    assert rfis_escalate_due(now=due + timedelta(seconds=30)) == 0  # same step never twice
    with pytest.raises(NotFound):  # not escalated to the focal point yet
        rfi_read(actor=focal, rfi_id=rfi.pk)

    assert rfis_escalate_due(now=due + timedelta(seconds=61)) == 1
    rfi.refresh_from_db()
    assert rfi.escalation_level == 2
    assert told(rfi, NotificationKind.RFI_ESCALATED) == {"kh.supervisor", "kh.focal", "kh.nacd.focal"}
    assert rfis_escalate_due(now=due + timedelta(days=30)) == 0  # two steps, then it stops

    [remind] = events(rfi, "messaging.rfi.remind")
    [escalate] = events(rfi, "messaging.rfi.escalate")
    assert (remind.actor_label, remind.target_country, remind.details["level"]) == ("ISN", "KH", 1)
    assert (escalate.target_country, escalate.details["level"]) == ("KH", 2)
    assert sorted(escalate.details["notified_users"]) == sorted(
        [net.user("kh.supervisor").pk, net.user("kh.focal").pk, focal.pk]
    )

    # The focal point of the other agency may now read it (and has it listed), but does not write in the thread.
    assert rfi_read(actor=focal, rfi_id=rfi.pk).question == QUESTION
    assert list(rfis_for_listing(focal)) == [rfi]
    with pytest.raises(PermissionDenied):
        rfi_reply(actor=focal, rfi_id=rfi.pk, body="Chasing this.")
    with pytest.raises(PermissionDenied):
        rfi_close(actor=focal, rfi_id=rfi.pk)
    # A Lao focal point never sees it.
    la_focal = MembershipFactory(user=UserFactory(username="la.focal"), agency=net.la, role=Role.NATIONAL_FOCAL_POINT)
    with pytest.raises(NotFound):
        rfi_read(actor=la_focal.user, rfi_id=rfi.pk)


def test_answered_and_closed_requests_never_escalate_and_a_reopened_one_starts_over(net):
    answered = ask(net)
    rfi_reply(actor=net.user("kh.officer"), rfi_id=answered.pk, body=ANSWER)
    closed = ask(net)
    rfi_close(actor=net.user("vn.officer"), rfi_id=closed.pk)
    far = timezone.now() + timedelta(days=3)
    assert rfis_escalate_due(now=far) == 0

    rfi_reply(actor=net.user("vn.officer"), rfi_id=answered.pk, body="A follow-up question.")
    answered.refresh_from_db()
    assert answered.status == RfiStatus.OPEN
    assert answered.due_at > timezone.now() + timedelta(hours=23)
    assert rfis_escalate_due(now=answered.due_at - timedelta(seconds=1)) == 0
    assert rfis_escalate_due(now=answered.due_at + timedelta(seconds=1)) == 1


def test_a_read_reminder_comes_back_when_a_reopened_request_is_due_again(net):
    rfi = ask(net)
    kh = net.user("kh.officer")
    rfis_escalate_due(now=rfi.due_at + timedelta(seconds=1))
    rfi_reply(actor=kh, rfi_id=rfi.pk, body=ANSWER)  # answering reads nothing; reading does
    rfi_read(actor=kh, rfi_id=rfi.pk)
    notice = Notification.objects.get(rfi=rfi, user=kh, kind=NotificationKind.RFI_REMINDER)
    assert notice.read_at is not None
    rfi_reply(actor=net.user("vn.officer"), rfi_id=rfi.pk, body="Still need the owner's name.")
    rfi.refresh_from_db()
    assert rfis_escalate_due(now=rfi.due_at + timedelta(seconds=1)) == 1
    notice.refresh_from_db()
    assert notice.read_at is None


def test_the_sweep_skips_a_request_someone_is_answering_rather_than_waiting(net):
    from django.test.utils import CaptureQueriesContext

    rfi = ask(net)
    with CaptureQueriesContext(connection) as queries:
        assert rfis_escalate_due(now=rfi.due_at + timedelta(seconds=1)) == 1
    assert any("FOR UPDATE SKIP LOCKED" in query["sql"] for query in queries.captured_queries)
