"""The originator is told of every hit: at once for FLASH and PRIORITY items, in a daily digest otherwise; never with
intelligence content (no title, no body, no identifier value), through the real outbox row and a real SMTP session."""

from __future__ import annotations

import smtplib

import pytest
from django.conf import settings as django_settings

from agencies.models import Membership
from audit.models import AuditEvent
from messaging.delivery.hit_notices import hits_digest_send, hits_notify
from messaging.delivery.notifications import notification_emails_send
from messaging.models import Hit, Notification, NotificationKind, OutboxKind, OutboxMessage
from tests.messaging.hits import make_hit, make_hits
from tests.messaging.network import build_network, post_item
from tests.messaging.workers import smtp_sink

pytestmark = pytest.mark.django_db

VN_PEOPLE = {"vn.officer@isn-test.example.org", "vn.focal@isn-test.example.org"}
SECRETS = ("Meth pills shipment", "lorries", "70C-123.45", "+85512345678")


@pytest.fixture
def net():
    return build_network()


@pytest.fixture
def smtp(settings):
    settings.ISN_PORTAL_URL = "https://isn.example.org"
    with smtp_sink() as sink:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        yield sink


def vn_only(net, **overrides):
    """A Viet Nam item released to Viet Nam only: Cambodia may not read it, so a Cambodian check can hit it."""
    item = post_item(net.user("vn.officer"), countries=["VN"], **overrides)
    item.discoverable = True
    item.save(update_fields=["discoverable"])
    return item


def text_of(message) -> str:
    return message["Subject"] + message.get_payload()


@pytest.mark.parametrize("priority", ["flash", "priority"])
def test_a_hit_on_an_urgent_item_is_told_at_once_without_content(net, smtp, priority):
    item = vn_only(net, priority=priority)
    hit = make_hit(net.user("kh.officer"), item, entity_type="phone")

    assert hits_notify([hit]) == 1

    notes = Notification.objects.filter(kind=NotificationKind.HIT_ON_ITEM, hit=hit)
    assert {note.user.username for note in notes} == {"vn.officer", "vn.focal"}
    assert all(note.item_id == item.pk for note in notes)
    hit.refresh_from_db()
    assert hit.notified_at is not None
    row = OutboxMessage.objects.get(kind=OutboxKind.NOTIFY_EMAIL, item=item, payload__hit_id=hit.pk)

    assert notification_emails_send(outbox_id=row.pk) == 2

    assert {address for recipients, _ in smtp.messages for address in recipients} == VN_PEOPLE
    body = text_of(smtp.to("vn.officer@isn-test.example.org")[0])
    assert (
        f"An officer of ADD, KH checked a phone number that matches one of your items; reference {hit.reference}"
        in (" ".join(body.split()))
    )
    assert f"https://isn.example.org/items/{item.pk}/tracking/" in body
    for secret in SECRETS:
        assert secret not in body
    assert not notes.filter(emailed_at__isnull=True).exists()
    event = AuditEvent.objects.get(action="messaging.notification.email", target_type="messaging.hit")
    assert event.target_country == "VN"
    assert event.details["count"] == 2


def test_the_asker_is_never_told_of_the_holder_nor_the_holder_of_another_agencys_hit(net, smtp):
    item = vn_only(net, priority="flash")
    hit = make_hit(net.user("kh.officer"), item)
    hits_notify([hit])
    told = set(Notification.objects.filter(hit=hit).values_list("user__username", flat=True))
    assert not {name for name in told if not name.startswith("vn.")}


def test_each_hit_on_the_same_item_is_told(net, smtp):
    item = vn_only(net, priority="flash")
    first = make_hit(net.user("kh.officer"), item)
    second = make_hit(net.user("th.officer"), item)
    hits_notify([first])
    hits_notify([second])
    for row in OutboxMessage.objects.filter(kind=OutboxKind.NOTIFY_EMAIL, item=item):
        notification_emails_send(outbox_id=row.pk)
    bodies = [" ".join(text_of(message).split()) for message in smtp.to("vn.officer@isn-test.example.org")]
    assert len(bodies) == 2
    assert any(first.reference in body and "ADD, KH" in body for body in bodies)
    assert any(second.reference in body and "ONCB, TH" in body for body in bodies)


def test_a_repeated_notice_tells_nothing_twice(net, smtp):
    item = vn_only(net, priority="flash")
    hit = make_hit(net.user("kh.officer"), item)
    hits_notify([hit])
    assert hits_notify([hit]) == 0
    assert OutboxMessage.objects.filter(kind=OutboxKind.NOTIFY_EMAIL, item=item).count() == 1


def test_a_routine_hit_waits_for_the_digest(net, smtp):
    item = vn_only(net, priority="routine")
    hit = make_hit(net.user("kh.officer"), item)

    assert hits_notify([hit]) == 0

    assert not Notification.objects.filter(hit=hit).exists()
    assert not OutboxMessage.objects.filter(kind=OutboxKind.NOTIFY_EMAIL, item=item).exists()
    hit.refresh_from_db()
    assert hit.notified_at is None


def test_the_digest_sends_one_message_per_officer_listing_every_hit_since_the_last(net, smtp):
    first, second = vn_only(net), vn_only(net)
    hits = make_hits(net.user("kh.officer"), [first, second], entity_type="vehicle")
    hits.append(make_hit(net.user("th.officer"), first, entity_type="person"))
    urgent = make_hit(net.user("kh.officer"), vn_only(net, priority="flash"))
    hits_notify([urgent])

    assert hits_digest_send() == 3

    assert {address for recipients, _ in smtp.messages for address in recipients} == VN_PEOPLE
    assert len(smtp.messages) == 2
    body = " ".join(text_of(smtp.to("vn.focal@isn-test.example.org")[0]).split())
    for hit in hits:
        assert hit.reference in body
    assert urgent.reference not in body  # told at once already
    assert "An officer of ADD, KH checked a vehicle" in body
    assert "An officer of ONCB, TH checked a person" in body
    assert f"https://isn.example.org/items/{first.pk}/tracking/" in body
    for secret in SECRETS:
        assert secret not in body
    assert not Hit.objects.filter(notified_at__isnull=True).exists()
    notes = Notification.objects.filter(kind=NotificationKind.HIT_ON_ITEM, hit__in=hits)
    assert notes.count() == 6
    assert not notes.filter(emailed_at__isnull=True).exists()
    event = AuditEvent.objects.get(action="messaging.notification.email", details__kind="hit_digest")
    assert event.target_country == "VN"
    assert sorted(event.details["hit_ids"]) == sorted(hit.pk for hit in hits)

    # The next digest has nothing new to say.
    assert hits_digest_send() == 0
    assert len(smtp.messages) == 2


def test_the_digest_respects_an_officer_who_turned_email_off(net, smtp):
    Membership.objects.filter(user=net.user("vn.focal")).update(email_notifications=False)
    hit = make_hit(net.user("kh.officer"), vn_only(net))

    hits_digest_send()

    assert {address for recipients, _ in smtp.messages for address in recipients} == {"vn.officer@isn-test.example.org"}
    # Still told in the portal.
    assert Notification.objects.filter(hit=hit, user=net.user("vn.focal"), emailed_at__isnull=True).exists()


def test_an_immediate_notice_respects_an_officer_who_turned_email_off(net, smtp):
    Membership.objects.filter(user=net.user("vn.focal")).update(email_notifications=False)
    item = vn_only(net, priority="flash")
    hits_notify([make_hit(net.user("kh.officer"), item)])
    notification_emails_send(outbox_id=OutboxMessage.objects.get(kind=OutboxKind.NOTIFY_EMAIL, item=item).pk)
    assert {address for recipients, _ in smtp.messages for address in recipients} == {"vn.officer@isn-test.example.org"}


def test_a_failed_digest_loses_nothing(net, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nobody listens: the SMTP session fails
    settings.EMAIL_TIMEOUT = 2
    hit = make_hit(net.user("kh.officer"), vn_only(net))

    with pytest.raises((OSError, smtplib.SMTPException)):
        hits_digest_send()

    hit.refresh_from_db()
    assert hit.notified_at is None
    assert not Notification.objects.filter(hit=hit).exists()


def test_the_digest_and_the_purge_are_on_beat():
    tasks = {entry["task"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"messaging.tasks.send_hit_digest", "messaging.tasks.purge_hits"} <= tasks


def test_a_hit_notification_leads_to_the_tracking_page(net, api, smtp):
    item = vn_only(net, priority="flash")
    hits_notify([make_hit(net.user("kh.officer"), item)])
    api.force_authenticate(net.user("vn.officer"))
    results = api.get("/api/v1/notifications/").json()["results"]
    assert [result["link"] for result in results if result["kind"] == "hit_on_item"] == [f"/items/{item.pk}/tracking/"]
