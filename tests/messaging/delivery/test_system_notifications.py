"""Agency systems (API keys' service accounts) are told what reaches their agency, in the portal's notifications, so
``unread`` and the notifications API work per system; never by e-mail. Audit, write-only and admin-only keys, and
revoked or expired ones, are told nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from agencies.api_keys import api_key_issue, api_key_revoke
from agencies.models import ApiKey
from messaging.delivery.notifications import notification_emails_send
from messaging.items.changes import item_change
from messaging.models import Notification, NotificationKind, OutboxKind, OutboxMessage
from tests.messaging.network import Network, build_network, notified, post_item, run_outbox
from tests.messaging.workers import smtp_sink

pytestmark = pytest.mark.django_db


class Systems:
    """KH ADD's keys, by what they may do."""

    def __init__(self, net: Network) -> None:
        soon = timezone.now() + timedelta(days=30)

        def issue(name: str, *scopes: str, agency: Any = net.kh) -> tuple[ApiKey, str]:
            issuer = net.user("kh.auditor" if scopes == ("audit",) else "kh.admin")  # audit keys come from auditors
            issued = api_key_issue(actor=issuer, agency=agency, name=name, scopes=list(scopes), expires_at=soon)
            return issued.key, issued.plaintext

        self.reader, self.reader_key = issue("reader", "read")
        self.reader_writer, _ = issue("reader-writer", "read", "write")
        self.admin_reader, _ = issue("admin-reader", "admin", "read")
        self.auditor, _ = issue("auditor", "audit")
        self.writer, _ = issue("writer", "write")
        self.admin, _ = issue("admin", "admin")
        self.expired, _ = issue("expired", "read")
        ApiKey.objects.filter(pk=self.expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        self.revoked, _ = issue("revoked", "read")
        api_key_revoke(actor=net.user("kh.admin"), key=self.revoked)

    def account(self, name: str) -> str:
        return getattr(self, name).user.username

    def told(self) -> set[str]:
        return {self.account(name) for name in ("reader", "reader_writer", "admin_reader")}

    def not_told(self) -> set[str]:
        return {self.account(name) for name in ("auditor", "writer", "admin", "expired", "revoked")}


@pytest.fixture
def net() -> Network:
    return build_network()


@pytest.fixture
def systems(net: Network) -> Systems:
    return Systems(net)


def with_key(plaintext: str) -> Any:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plaintext}")
    return client


def test_a_routed_item_tells_the_agencys_reading_systems_and_no_other_key(net, systems):
    item = post_item(net.user("vn.officer"))
    run_outbox()

    told = notified(NotificationKind.ROUTED, item=item)
    assert systems.told() <= told
    assert not systems.not_told() & told
    assert {"kh.officer", "kh.supervisor", "th.officer"} <= told  # people as before


def test_a_system_lists_its_notifications_and_unread_items_until_it_reads_the_item(net, systems):
    item = post_item(net.user("vn.officer"))
    run_outbox()
    client = with_key(systems.reader_key)

    listed = client.get("/api/v1/notifications/?unread=true").json()["results"]
    assert [(row["item"], row["kind"]) for row in listed] == [(str(item.pk), NotificationKind.ROUTED)]
    assert client.get("/api/v1/notifications/unread-count/").json() == {"count": 1}
    assert [row["id"] for row in client.get("/api/v1/items/?unread=true").json()["results"]] == [str(item.pk)]

    assert client.get(f"/api/v1/items/{item.pk}/").status_code == 200

    assert client.get("/api/v1/notifications/unread-count/").json() == {"count": 0}
    assert client.get("/api/v1/items/?unread=true").json()["results"] == []
    # Per system: another key of the same agency still has it unread.
    other = Notification.objects.get(user=systems.reader_writer.user, item=item)
    assert other.read_at is None


def test_an_item_released_only_to_a_named_person_tells_not_their_agencys_systems(net, systems):
    # Cambodia narrowed to customs (GDCE): ADD's kh.desk is named, so ADD's systems cannot read it and are not told.
    item = post_item(
        net.user("vn.officer"), countries=["VN", "KH"], agencies=[net.kh_customs.pk], named_users=["kh.desk"]
    )
    run_outbox()
    told = notified(NotificationKind.ROUTED, item=item)
    assert "kh.desk" in told
    assert not (systems.told() | systems.not_told()) & told


def test_systems_are_told_when_their_agency_loses_an_item(net, systems):
    item = post_item(net.user("vn.officer"))
    run_outbox()
    item_change(actor=net.user("vn.officer"), item_id=item.pk, countries=["VN", "TH", "LA"])
    run_outbox()
    told = notified(NotificationKind.REVOKED, item=item)
    assert systems.told() <= told
    assert not systems.not_told() & told


def test_a_system_is_never_emailed_even_with_an_address(net, systems, settings):
    # However an address got onto a service account, no person reads that mailbox: it is not mailed.
    for name in ("reader", "reader_writer", "admin_reader"):
        account = getattr(systems, name).user
        account.email = f"{name}@kh-systems.example.org"
        account.save(update_fields=["email"])
    item = post_item(net.user("vn.officer"))
    run_outbox()
    row = OutboxMessage.objects.get(item=item, kind=OutboxKind.NOTIFY_EMAIL)

    with smtp_sink() as sink:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        sent = notification_emails_send(outbox_id=row.pk)
        received = [recipients for recipients, _message in sink.messages]

    assert sent == len(received) == 5
    assert sink.to("kh.officer@isn-test.example.org")
    assert not [address for recipients in received for address in recipients if "kh-systems" in address]
    systems_rows = Notification.objects.filter(item=item, user__api_key__isnull=False)
    assert systems_rows.count() == 3
    assert not systems_rows.filter(emailed_at__isnull=False).exists()
    assert OutboxMessage.objects.get(pk=row.pk).processed_at is not None  # nothing left waiting for them
