"""Notifications: in the portal (list, unread count, mark read; one's own only) and by e-mail (each sent once)."""

from __future__ import annotations

import smtplib

import pytest
from django.core import mail

from audit.models import AuditEvent
from messaging.delivery.notifications import notification_emails_send
from messaging.delivery.routing import item_route
from messaging.models import (
    Notification,
    OutboxKind,
    OutboxMessage,
)
from messaging.models.delivery import Delivery
from tests.messaging.network import build_network, post_item

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.ISN_PORTAL_URL = "https://isn.example.org"


@pytest.fixture
def net():
    return build_network()


def routed(net, **overrides):
    item = post_item(net.user("vn.officer"), **overrides)
    item_route(outbox_id=OutboxMessage.objects.get(item=item, kind=OutboxKind.ITEM_ROUTE).pk)
    return item


def email_row(item):
    return OutboxMessage.objects.get(item=item, kind=OutboxKind.NOTIFY_EMAIL)


def test_each_person_notified_gets_one_email_with_no_content(net):
    item = routed(net, priority="flash")

    sent = notification_emails_send(outbox_id=email_row(item).pk)

    recipients = sorted(address for message in mail.outbox for address in message.to)
    assert sent == 5
    assert recipients == sorted(
        f"{name}@isn-test.example.org"
        for name in ("kh.officer", "kh.supervisor", "th.officer", "kh.customs", "la.supervisor")
    )
    message = mail.outbox[0]
    text = message.subject + message.body
    assert "FLASH" in message.subject
    assert "VN" in message.subject
    assert f"https://isn.example.org/items/{item.pk}/" in message.body
    assert "Category: meth_pills" in message.body  # allowed by TLP:AMBER
    for secret in ("Meth pills shipment", "lorries", "70C-123.45"):
        assert secret not in text
    assert not Notification.objects.filter(item=item, emailed_at__isnull=True).exists()
    assert not Delivery.objects.filter(item=item, notified_at__isnull=True).exists()
    event = AuditEvent.objects.get(action="messaging.notification.email", target_id=str(item.pk))
    assert event.details["count"] == 5


def test_a_repeated_email_message_sends_nothing_twice(net):
    item = routed(net)
    row = email_row(item)
    notification_emails_send(outbox_id=row.pk)
    OutboxMessage.objects.filter(pk=row.pk).update(processed_at=None)  # as if the message came again
    assert notification_emails_send(outbox_id=row.pk) == 0
    assert len(mail.outbox) == 5


def test_tlp_red_keeps_the_category_out_of_email(net):
    item = routed(net, handling_code="red")
    notification_emails_send(outbox_id=email_row(item).pk)
    assert all("meth_pills" not in message.body for message in mail.outbox)
    assert all("withheld" in message.body for message in mail.outbox)


def test_a_failed_smtp_send_releases_the_rest_for_the_retry(net, monkeypatch):
    item = routed(net)
    row = email_row(item)
    calls = {"n": 0}
    original = mail.backends.locmem.EmailBackend.send_messages

    def flaky(self, messages):
        calls["n"] += 1
        if calls["n"] == 3:
            raise smtplib.SMTPServerDisconnected("gone")
        return original(self, messages)

    monkeypatch.setattr(mail.backends.locmem.EmailBackend, "send_messages", flaky)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        notification_emails_send(outbox_id=row.pk)
    assert Notification.objects.filter(item=item, emailed_at__isnull=False).count() == 2
    assert not Notification.objects.filter(item=item, emailed_at__isnull=True, email_claimed_at__isnull=False).exists()

    assert notification_emails_send(outbox_id=row.pk) == 3  # the retry sends only the rest
    assert len(mail.outbox) == 5
    assert OutboxMessage.objects.get(pk=row.pk).processed_at is not None


# --- the API ---------------------------------------------------------------------------------------------------------


def test_notification_list_shows_only_ones_own_with_metadata_only(net, api):
    item = routed(net)
    api.force_authenticate(net.user("kh.officer"))

    response = api.get("/api/v1/notifications/")

    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 1
    assert set(results[0]) == {
        "id",
        "kind",
        "consent",
        "rfi",
        "item",
        "priority",
        "category",
        "originator_country",
        "link",
        "created_at",
        "read_at",
    }
    assert results[0]["link"] == f"/items/{item.pk}/"
    assert results[0]["item"] == str(item.pk)
    event = AuditEvent.objects.get(action="messaging.notification.list", actor_user=net.user("kh.officer"))
    assert event.details["item_ids"] == [str(item.pk)]


def test_unread_count_and_mark_read(net, api):
    routed(net)
    routed(net)
    kh_officer = net.user("kh.officer")
    api.force_authenticate(kh_officer)
    assert api.get("/api/v1/notifications/unread-count/").json() == {"count": 2}
    first = Notification.objects.filter(user=kh_officer).first()

    response = api.post(f"/api/v1/notifications/{first.pk}/read/")

    assert response.status_code == 200
    assert response.json()["read_at"]
    assert api.get("/api/v1/notifications/unread-count/").json() == {"count": 1}
    assert len(api.get("/api/v1/notifications/?unread=true").json()["results"]) == 1
    assert AuditEvent.objects.filter(action="messaging.notification.read", target_id=str(first.pk)).exists()


def test_someone_elses_notification_is_not_found(net, api):
    routed(net)
    theirs = Notification.objects.filter(user=net.user("th.officer")).first()
    api.force_authenticate(net.user("kh.officer"))
    assert api.post(f"/api/v1/notifications/{theirs.pk}/read/").status_code == 404
    assert api.post("/api/v1/notifications/not-a-number/read/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_notification_api_refuses_anonymous_and_outsiders(api, outsider):
    assert api.get("/api/v1/notifications/").status_code in (401, 403)
    api.force_authenticate(outsider)
    assert api.get("/api/v1/notifications/unread-count/").status_code == 403


def test_notification_list_query_count_is_bounded(net, api, django_assert_max_num_queries):
    for _ in range(3):
        routed(net)
    api.force_authenticate(net.user("kh.officer"))
    with django_assert_max_num_queries(8):
        assert len(api.get("/api/v1/notifications/").json()["results"]) == 3
