"""Webhooks against a local receiver: signed, retried with back-off, dead-lettered and shown to the agency admin."""

from __future__ import annotations

import json

import jsonschema
import pytest
from drf_spectacular.generators import SchemaGenerator

from audit.models import AuditEvent
from messaging.delivery.routing import item_route
from messaging.delivery.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    backoff,
    verify,
    webhook_configure,
    webhook_secret,
    webhook_send,
)
from messaging.matching.discovery import identifiers_check
from messaging.models import (
    AgencyWebhook,
    OutboxKind,
    OutboxMessage,
    WebhookDeadLetter,
)
from messaging.models.delivery import Delivery
from messaging.rfis.services import rfi_create
from messaging.sharing.consents import consent_request_create
from tests.messaging.network import build_network, post_item
from tests.messaging.workers import webhook_receiver

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_webhooks(settings):
    settings.ISN_WEBHOOK_MAX_ATTEMPTS = 3
    settings.ISN_WEBHOOK_BACKOFF_SECONDS = 10
    settings.ISN_WEBHOOK_TIMEOUT_SECONDS = 2


@pytest.fixture
def net():
    return build_network()


def configure(net, url):
    webhook, secret = webhook_configure(actor=net.user("kh.admin"), url=url)
    return webhook, secret


def webhook_row(net, **overrides):
    item = post_item(net.user("vn.officer"), **overrides)
    item_route(outbox_id=OutboxMessage.objects.get(item=item, kind=OutboxKind.ITEM_ROUTE).pk)
    return item, OutboxMessage.objects.get(item=item, kind=OutboxKind.NOTIFY_WEBHOOK)


def test_a_webhook_call_is_signed_and_carries_no_content(net):
    with webhook_receiver(200) as receiver:
        _, secret = configure(net, receiver.url)
        item, row = webhook_row(net)

        outcome = webhook_send(outbox_id=row.pk)

        assert outcome.status == "sent"
        [(headers, body)] = receiver.received()
    assert verify(secret.encode(), headers[TIMESTAMP_HEADER.lower()], body, headers[SIGNATURE_HEADER.lower()])
    assert not verify(b"another secret", headers[TIMESTAMP_HEADER.lower()], body, headers[SIGNATURE_HEADER.lower()])
    assert not verify(
        secret.encode(), headers[TIMESTAMP_HEADER.lower()], body + b" ", headers[SIGNATURE_HEADER.lower()]
    )
    payload = json.loads(body)
    assert payload["event"] == "item.routed"
    assert payload["item"] == {
        "item_id": str(item.pk),
        "priority": "routine",
        "category": "meth_pills",
        "originator_country": "VN",
        "link": f"http://127.0.0.1:8000/items/{item.pk}/",
    }
    assert b"lorries" not in body
    assert b"Meth pills shipment" not in body
    assert_documented("item", payload)
    assert headers["x-isn-delivery"] == str(row.pk)
    assert OutboxMessage.objects.get(pk=row.pk).processed_at is not None
    assert not Delivery.objects.filter(item=item, agency=net.kh, notified_at__isnull=True).exists()
    assert AuditEvent.objects.filter(action="messaging.notification.webhook", outcome="ok").count() == 1
    # A repeated message: nothing sent twice.
    assert webhook_send(outbox_id=row.pk).status == "skipped"


def test_the_secret_is_stored_sealed_and_only_agency_admins_configure():
    net = build_network()
    webhook, secret = configure(net, "https://kh.example.org/isn")
    assert secret.encode() not in bytes(webhook.secret_sealed)
    assert webhook_secret(webhook) == secret.encode()
    event = AuditEvent.objects.get(action="messaging.webhook.configure")
    assert event.details == {"host": "kh.example.org", "is_active": True, "created": True}
    from isn.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        webhook_configure(actor=net.user("kh.officer"), url="https://kh.example.org/isn")


def test_a_failing_receiver_is_retried_with_backoff_then_dead_lettered(net):
    with webhook_receiver(500) as receiver:
        configure(net, receiver.url)
        item, row = webhook_row(net)

        first = webhook_send(outbox_id=row.pk)
        assert (first.status, first.attempts, first.retry_in) == ("retry", 1, 10.0)
        # Not due yet: a duplicate message now does nothing.
        assert webhook_send(outbox_id=row.pk).status == "skipped"
        OutboxMessage.objects.filter(pk=row.pk).update(available_at=row.created_at)
        second = webhook_send(outbox_id=row.pk)
        assert (second.status, second.retry_in) == ("retry", 20.0)
        OutboxMessage.objects.filter(pk=row.pk).update(available_at=row.created_at)
        third = webhook_send(outbox_id=row.pk)

        assert third.status == "dead"
        assert len(receiver.received()) == 3
    letter = WebhookDeadLetter.objects.get()
    assert (letter.agency_id, letter.item_id, letter.attempts, letter.last_error) == (net.kh.pk, item.pk, 3, "HTTP 500")
    assert AuditEvent.objects.filter(action="messaging.notification.webhook", outcome="error").count() == 2
    assert AuditEvent.objects.filter(action="messaging.notification.dead_letter", outcome="error").count() == 1
    assert webhook_send(outbox_id=row.pk).status == "skipped"


def test_backoff_doubles():
    assert [backoff(n) for n in (1, 2, 3, 4)] == [10.0, 20.0, 40.0, 80.0]


def test_an_unreachable_receiver_counts_as_a_failure(net):
    configure(net, "http://127.0.0.1:9/closed")
    _, row = webhook_row(net)
    outcome = webhook_send(outbox_id=row.pk)
    assert outcome.status == "retry"


def test_a_deactivated_webhook_is_not_called(net):
    with webhook_receiver(200) as receiver:
        configure(net, receiver.url)
        _, row = webhook_row(net)
        AgencyWebhook.objects.update(is_active=False)
        assert webhook_send(outbox_id=row.pk).status == "skipped"
        assert receiver.received() == []


def test_plain_http_is_refused_when_not_allowed(net, settings):
    from isn.errors import InvalidInput

    settings.ISN_WEBHOOK_ALLOW_HTTP = False
    with pytest.raises(InvalidInput):
        webhook_configure(actor=net.user("kh.admin"), url="http://kh.example.org/isn")


def test_dead_letters_api_is_for_the_agencys_admins_only(net, api):
    configure(net, "http://127.0.0.1:9/closed")
    item, _row = webhook_row(net)
    WebhookDeadLetter.objects.create(agency=net.kh, item=item, event="item.routed", attempts=3, last_error="HTTP 500")
    WebhookDeadLetter.objects.create(agency=net.th, item=item, event="item.routed", attempts=3, last_error="HTTP 502")

    api.force_authenticate(net.user("kh.admin"))
    response = api.get("/api/v1/webhooks/dead-letters/")
    assert response.status_code == 200
    assert [row["last_error"] for row in response.json()["results"]] == ["HTTP 500"]
    assert AuditEvent.objects.filter(action="messaging.webhook.dead_letter_list").exists()

    api.force_authenticate(net.user("kh.officer"))
    assert api.get("/api/v1/webhooks/dead-letters/").status_code == 403


def test_configure_api_returns_the_secret_once(net, api):
    api.force_authenticate(net.user("kh.admin"))
    response = api.post("/api/v1/webhooks/", {"url": "https://kh.example.org/isn"}, format="json")
    assert response.status_code == 200, response.content
    assert len(response.json()["secret"]) >= 40
    api.force_authenticate(net.user("kh.officer"))
    assert api.post("/api/v1/webhooks/", {"url": "https://x.example.org/"}, format="json").status_code == 403


# --- the agency admin's view: see, remove, rotate, retry ------------------------------------------------------------


def test_the_agency_admin_sees_the_webhook_but_never_its_secret(net, api):
    webhook, secret = configure(net, "https://kh.example.org/isn?token=abc")
    api.force_authenticate(net.user("kh.admin"))

    listed = api.get("/api/v1/webhooks/")
    one = api.get(f"/api/v1/webhooks/{webhook.pk}/")

    assert listed.status_code == 200
    [row] = listed.json()
    assert set(row) == {"id", "url", "is_active", "created_at", "updated_at"}
    assert (row["id"], row["url"], row["is_active"]) == (webhook.pk, "https://kh.example.org/isn?token=abc", True)
    assert one.status_code == 200
    assert one.json() == row
    assert secret not in listed.content.decode() + one.content.decode()
    events = AuditEvent.objects.filter(action="messaging.webhook.view")
    assert [e.details["ids"] for e in events] == [[webhook.pk], [webhook.pk]]
    assert "token" not in str([e.details for e in events])

    # Another agency's admin sees none and cannot reach this one; officers are refused as before.
    th_admin = net.user("th.officer")
    from agencies.models import Membership, Role

    Membership.objects.filter(user=th_admin).update(role=Role.AGENCY_ADMIN)
    api.force_authenticate(type(th_admin).objects.get(pk=th_admin.pk))
    assert api.get("/api/v1/webhooks/").json() == []
    assert api.get(f"/api/v1/webhooks/{webhook.pk}/").status_code == 404
    assert api.delete(f"/api/v1/webhooks/{webhook.pk}/").status_code == 404
    assert api.post(f"/api/v1/webhooks/{webhook.pk}/rotate-secret/").status_code == 404
    for username in ("kh.officer", "kh.supervisor", "kh.auditor"):
        api.force_authenticate(net.user(username))
        assert api.get("/api/v1/webhooks/").status_code == 403
        assert api.get(f"/api/v1/webhooks/{webhook.pk}/").status_code == 403
        assert api.delete(f"/api/v1/webhooks/{webhook.pk}/").status_code == 403
    assert AgencyWebhook.objects.filter(pk=webhook.pk).exists()


def test_removing_the_webhook_stops_its_calls(net, api):
    with webhook_receiver(200) as receiver:
        webhook, _ = configure(net, receiver.url)
        _, row = webhook_row(net)
        api.force_authenticate(net.user("kh.admin"))

        response = api.delete(f"/api/v1/webhooks/{webhook.pk}/")

        assert response.status_code == 204
        assert not AgencyWebhook.objects.exists()
        assert webhook_send(outbox_id=row.pk).status == "skipped"
        assert receiver.received() == []
    event = AuditEvent.objects.get(action="messaging.webhook.delete")
    assert (event.target_id, event.details) == (str(webhook.pk), {"host": "127.0.0.1", "agency_id": net.kh.pk})
    assert api.get("/api/v1/webhooks/").json() == []
    assert api.delete(f"/api/v1/webhooks/{webhook.pk}/").status_code == 404


def test_rotating_the_secret_signs_with_the_new_one_only(net, api):
    with webhook_receiver(200) as receiver:
        webhook, old = configure(net, receiver.url)
        api.force_authenticate(net.user("kh.admin"))

        response = api.post(f"/api/v1/webhooks/{webhook.pk}/rotate-secret/")

        assert response.status_code == 200, response.content
        new = response.json()["secret"]
        assert new != old
        assert len(new) >= 40
        assert response.json()["url"] == receiver.url
        _, row = webhook_row(net)
        assert webhook_send(outbox_id=row.pk).status == "sent"
        [(headers, body)] = receiver.received()
    timestamp, signature = headers[TIMESTAMP_HEADER.lower()], headers[SIGNATURE_HEADER.lower()]
    assert verify(new.encode(), timestamp, body, signature)
    assert not verify(old.encode(), timestamp, body, signature)
    event = AuditEvent.objects.get(action="messaging.webhook.rotate_secret")
    assert event.details == {"agency_id": net.kh.pk}
    assert new not in str(event.details)
    assert old not in str(event.details)


def dead_letter(net, receiver_url):
    """A call to KH's webhook that failed every try (ISN_WEBHOOK_MAX_ATTEMPTS is 3 here)."""
    configure(net, receiver_url)
    item, row = webhook_row(net)
    for _ in range(3):
        OutboxMessage.objects.filter(pk=row.pk).update(available_at=row.created_at)
        webhook_send(outbox_id=row.pk)
    return item, row, WebhookDeadLetter.objects.get(outbox_message_id=row.pk)


def test_a_dead_letter_is_retried_with_its_original_delivery_id(net, api):
    with webhook_receiver(500) as receiver:
        item, row, letter = dead_letter(net, receiver.url)
        receiver.status = 200
        api.force_authenticate(net.user("kh.admin"))

        response = api.post(f"/api/v1/webhooks/dead-letters/{letter.pk}/retry/")

        assert response.status_code == 202, response.content
        assert response.json() == {"delivery": str(row.pk), "event": "item.routed"}
        again = OutboxMessage.objects.get(pk=row.pk)
        assert (again.attempts, again.processed_at) == (0, None)
        assert not WebhookDeadLetter.objects.exists()
        assert webhook_send(outbox_id=row.pk).status == "sent"
        calls = receiver.received()
    assert len(calls) == 4
    assert {headers["x-isn-delivery"] for headers, _ in calls} == {str(row.pk)}
    event = AuditEvent.objects.get(action="messaging.webhook.dead_letter_retry")
    assert event.details == {
        "dead_letter_id": letter.pk,
        "agency_id": net.kh.pk,
        "event": "item.routed",
        "outbox_id": row.pk,
    }
    assert event.target_id == str(item.pk)
    # Gone once retried.
    assert api.post(f"/api/v1/webhooks/dead-letters/{letter.pk}/retry/").status_code == 404


def test_a_dead_letter_whose_outbox_row_was_pruned_gets_a_new_row(net, api):
    item, row, letter = dead_letter(net, "http://127.0.0.1:9/closed")
    OutboxMessage.objects.filter(pk=row.pk).delete()
    api.force_authenticate(net.user("kh.admin"))
    response = api.post(f"/api/v1/webhooks/dead-letters/{letter.pk}/retry/")
    assert response.status_code == 202
    new = OutboxMessage.objects.get(kind=OutboxKind.NOTIFY_WEBHOOK, item=item, processed_at__isnull=True)
    assert response.json()["delivery"] == str(new.pk)
    assert new.payload == {"item_id": str(item.pk), "agency_id": net.kh.pk, "event": "item.routed"}


def test_a_dead_letter_is_retried_only_by_its_agencys_admin_and_only_when_it_makes_sense(net, api):
    from messaging.items.changes import item_withdraw

    item, _row, letter = dead_letter(net, "http://127.0.0.1:9/closed")
    url = f"/api/v1/webhooks/dead-letters/{letter.pk}/retry/"
    for username in ("kh.officer", "kh.auditor"):
        api.force_authenticate(net.user(username))
        assert api.post(url).status_code == 403
    th_admin = net.user("th.officer")
    from agencies.models import Membership, Role

    Membership.objects.filter(user=th_admin).update(role=Role.AGENCY_ADMIN)
    api.force_authenticate(type(th_admin).objects.get(pk=th_admin.pk))
    assert api.post(url).status_code == 404
    api.force_authenticate(net.user("kh.admin"))
    assert api.post("/api/v1/webhooks/dead-letters/not-a-number/retry/").status_code == 404

    AgencyWebhook.objects.update(is_active=False)
    assert api.post(url).status_code == 409
    AgencyWebhook.objects.update(is_active=True)
    item_withdraw(actor=net.user("vn.officer"), item_id=item.pk)
    response = api.post(url)
    assert response.status_code == 409
    assert "no longer released" in response.json()["detail"]
    assert WebhookDeadLetter.objects.filter(pk=letter.pk).exists()
    assert not AuditEvent.objects.filter(action="messaging.webhook.dead_letter_retry").exists()


def test_consent_and_rfi_events_reach_both_sides_webhooks_with_ids_only(net):
    """Every kind the change feed carries reaches webhooks: here a consent request and a free-standing RFI (no item),
    told to Cambodia's system as the asking side and as the asked side."""
    with webhook_receiver(200) as receiver:
        configure(net, receiver.url)
        item = post_item(net.user("vn.officer"), countries=["VN", "KH"])
        consent = consent_request_create(
            actor=net.user("kh.officer"),
            item_id=item.pk,
            target_country="LA",
            justification="The lorries continue to Laos by the secret route.",
        ).consent
        rfi = rfi_create(
            actor=net.user("vn.officer"),
            target_agency=net.kh.pk,
            subject="Bavet crossings",
            question="Who crossed at Bavet on Thursday night with plates 70C?",
        ).rfi
        rows = list(OutboxMessage.objects.filter(kind=OutboxKind.NOTIFY_WEBHOOK).order_by("pk"))
        assert [row.payload["event"] for row in rows] == ["consent.requested", "rfi.opened"]
        for row in rows:
            assert webhook_send(outbox_id=row.pk).status == "sent"
        (_, consent_body), (_, rfi_body) = receiver.received()
    told = json.loads(consent_body)
    assert (told["event"], told["consent"], told["item"]["item_id"]) == (
        "consent.requested",
        str(consent.pk),
        str(item.pk),
    )
    asked = json.loads(rfi_body)
    assert (asked["event"], asked["rfi"], asked["item"]) == ("rfi.opened", str(rfi.pk), None)
    assert b"secret route" not in consent_body
    assert b"70C" not in rfi_body
    assert b"Bavet" not in rfi_body
    sent = AuditEvent.objects.filter(action="messaging.notification.webhook", outcome="ok")
    assert sent.count() == 2
    # Each call is what the schema's ``webhooks`` section says a receiver gets.
    assert_documented("consent", told)
    assert_documented("rfi", asked)


def test_a_hit_reaches_the_holding_agencys_webhook_with_its_reference_and_no_identifier(net):
    """The holder's system hears of a hit on its item (its own item's facts and the hit's reference); the asker's
    agency's webhook is not called: its answer came with the check, and its feed names the hit by reference."""
    with webhook_receiver(200) as receiver:
        configure(net, receiver.url)  # Cambodia's webhook
        plate = {"type": "vehicle", "plate": "2AB-1234", "country": "KH"}
        item = post_item(net.user("kh.officer"), countries=["KH"], entities=[plate], discoverable=True)
        OutboxMessage.objects.all().delete()
        result = identifiers_check(actor=net.user("vn.officer"), identifiers=[plate])
        (hit,) = result.results[0].hits
        (row,) = OutboxMessage.objects.filter(kind=OutboxKind.NOTIFY_WEBHOOK)
        assert (row.payload["event"], row.payload["agency_id"], row.item_id) == ("hit.on_item", net.kh.pk, item.pk)
        assert webhook_send(outbox_id=row.pk).status == "sent"
        [(headers, body)] = receiver.received()
    told = json.loads(body)
    assert (told["event"], told["hit_reference"], told["item"]["item_id"]) == (
        "hit.on_item",
        hit.reference,
        str(item.pk),
    )
    assert headers["x-isn-event"] == "hit.on_item"
    assert b"2AB" not in body
    assert b"1234" not in body
    assert_documented("hit", told)


def assert_documented(webhook: str, body: dict) -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    call = schema["webhooks"][webhook]["post"]["requestBody"]["content"]["application/json"]["schema"]
    jsonschema.Draft202012Validator({**call, "components": schema["components"]}).validate(body)
