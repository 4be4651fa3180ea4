"""End to end through a real Redis broker and a real Celery worker with beat inside it, on the test database: a
request for information asked through the API is e-mailed to the counterpart office, and left unanswered it is
reminded and then escalated on time by beat's sweep, each step e-mailed without any of its content."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from messaging.models import Notification, NotificationKind, Rfi
from tests.messaging.network import build_network
from tests.messaging.workers import private_broker, smtp_sink, start_worker, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ESCALATE_AFTER = 2
# The sweep runs every second; a loaded test machine may let a step slip by a few.
LATE_BY_AT_MOST = 6
SUBJECT = "Owner of lorry 70C-123.45"
QUESTION = "Who owns the lorry with plates 70C-123.45 seen at Bavet on Thursday?"


# One worker per test, stopped before the test's database is flushed (see test_routing_worker.py).
@pytest.fixture
def worker_and_smtp(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rfi-worker")
    with smtp_sink() as smtp, private_broker(folder) as redis:
        process = start_worker(
            redis.url,
            folder,
            beat=True,
            name="rfi",
            env={
                "ISN_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "ISN_EMAIL_HOST": "127.0.0.1",
                "ISN_EMAIL_PORT": str(smtp.port),
                "ISN_RFI_CHECK_SECONDS": "1",
                "ISN_RFI_ESCALATE_AFTER_SECONDS": str(ESCALATE_AFTER),
            },
        )
        try:
            yield process, smtp
        finally:
            process.stop()


def subjects(smtp, username: str) -> list[str]:
    return [message["Subject"] for message in smtp.to(f"{username}@isn-test.example.org")]


def test_worker_mails_the_question_then_reminds_and_escalates_an_unanswered_one_on_time(worker_and_smtp):
    worker, smtp = worker_and_smtp
    net = build_network()
    client = APIClient()
    client.force_authenticate(net.user("vn.officer"))
    due = timezone.now() + timedelta(seconds=8)  # time for the worker and beat to start
    response = client.post(
        "/api/v1/rfis/",
        {
            "target_agency": net.kh.pk,
            "target_office": net.bavet.pk,
            "subject": SUBJECT,
            "question": QUESTION,
            "priority": "flash",
            "due_at": due.isoformat(),
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    rfi_id = response.json()["id"]

    wait_for(
        lambda: any("FLASH request for information from VN" in s for s in subjects(smtp, "kh.officer")),
        timeout=30,
        what=f"the question's e-mail; worker log: {worker.output()}",
    )
    reminded = wait_for(
        lambda: Rfi.objects.filter(pk=rfi_id, escalation_level__gte=1).first(), timeout=30, what=worker.output()
    )
    assert 0 <= (reminded.escalated_at - due).total_seconds() <= LATE_BY_AT_MOST
    escalated = wait_for(
        lambda: Rfi.objects.filter(pk=rfi_id, escalation_level=2).first(), timeout=30, what=worker.output()
    )
    assert ESCALATE_AFTER <= (escalated.escalated_at - due).total_seconds() <= ESCALATE_AFTER + LATE_BY_AT_MOST
    kinds = set(Notification.objects.filter(rfi_id=rfi_id).values_list("kind", "user__username"))
    assert (NotificationKind.RFI_REMINDER, "kh.officer") in kinds
    assert (NotificationKind.RFI_ESCALATED, "kh.focal") in kinds
    assert (NotificationKind.RFI_ESCALATED, "kh.supervisor") in kinds

    wait_for(lambda: any(s.startswith("[ISN] Due:") for s in subjects(smtp, "kh.officer")), timeout=30, what="due")
    wait_for(
        lambda: any(s.startswith("[ISN] Overdue:") for s in subjects(smtp, "kh.focal")), timeout=30, what="overdue"
    )
    for recipients, message in smtp.messages:
        text = message["Subject"] + message.get_payload()
        assert "70C-123.45" not in text
        assert "lorry" not in text.lower()
        assert not any(address.startswith(("kh.auditor", "vn.officer", "th.")) for address in recipients)
    assert any(rfi_id in message.get_payload() for _, message in smtp.messages)
