"""Exactly-once API writes: the Idempotency-Key header and the client-chosen item id."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from agencies.api_keys import api_key_issue
from audit.models import AuditEvent
from messaging.core.idempotency import idempotency_keys_purge
from messaging.delivery.routing import item_route
from messaging.delivery.webhooks import webhook_secret
from messaging.items.changes import item_change
from messaging.models import (
    Acknowledgement,
    AgencyWebhook,
    IdempotencyKey,
    Item,
    OutboxKind,
    OutboxMessage,
    Subscription,
)
from tests.messaging.conftest import api_payload
from tests.messaging.network import build_network, post_item

pytestmark = pytest.mark.django_db

ITEMS = "/api/v1/items/"


def _post(api, key: str | None = "retry-1", **overrides):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return api.post(ITEMS, api_payload(**overrides), format="json", **headers)


def test_a_retried_post_makes_one_item_and_answers_with_it_again(api, vn_officer):
    api.force_authenticate(vn_officer)
    first = _post(api, title="Pills at Moc Bai")
    again = _post(api, title="Pills at Moc Bai")
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["title"] == "Pills at Moc Bai"
    assert again["Idempotent-Replayed"] == "true"
    assert Item.objects.count() == 1
    (replay,) = AuditEvent.objects.filter(action="messaging.api.idempotent_replay")
    assert (replay.target_type, replay.target_id) == ("messaging.item", first.json()["id"])
    assert replay.details == {"status": 201, "method": "POST"}
    assert AuditEvent.objects.filter(action="messaging.item.create").count() == 1


def test_the_same_key_with_another_body_is_refused_and_changes_nothing(api, vn_officer):
    api.force_authenticate(vn_officer)
    _post(api, title="First")
    other = _post(api, title="Second")
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert Item.objects.count() == 1
    assert not AuditEvent.objects.filter(action="messaging.api.idempotent_replay").exists()


def test_a_key_belongs_to_its_caller(api, vn_officer, kh_officer):
    api.force_authenticate(vn_officer)
    mine = _post(api)
    api.force_authenticate(kh_officer)
    theirs = _post(api, countries=["KH", "VN"])
    assert theirs.status_code == 201
    assert theirs.json()["id"] != mine.json()["id"]
    assert Item.objects.count() == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "with space", "naïve"])
def test_a_malformed_key_is_bad_input_and_writes_nothing(api, vn_officer, key):
    api.force_authenticate(vn_officer)
    response = api.post(ITEMS, api_payload(), format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    assert not Item.objects.exists()
    assert not IdempotencyKey.objects.exists()


def test_a_refused_write_leaves_no_record_and_its_retry_performs_it(api, vn_officer):
    api.force_authenticate(vn_officer)
    refused = _post(api, countries=["KH"])  # must include the poster's own country
    assert refused.status_code == 400
    assert not IdempotencyKey.objects.exists()
    # A retry with the same key (and the body corrected) is a new request, not a replay of the refusal.
    assert _post(api).status_code == 201
    assert Item.objects.count() == 1


def test_the_record_holds_no_content(api, vn_officer):
    api.force_authenticate(vn_officer)
    created = _post(api, title="Canary title in the key store", body="Canary body").json()
    (row,) = IdempotencyKey.objects.values()
    assert set(row) == {
        "id",
        "key",
        "user_id",
        "api_key_id",
        "request_hash",
        "response_status",
        "resource_type",
        "resource_id",
        "created_at",
    }
    assert row["key"] == "retry-1"
    assert row["user_id"] == vn_officer.pk
    assert row["api_key_id"] is None
    assert len(row["request_hash"]) == 64
    assert (row["response_status"], row["resource_type"], row["resource_id"]) == (201, "messaging.item", created["id"])


def test_records_older_than_a_day_are_purged(api, vn_officer):
    api.force_authenticate(vn_officer)
    _post(api)
    assert idempotency_keys_purge() == 0
    assert idempotency_keys_purge(now=timezone.now() + timedelta(hours=25)) == 1
    assert not IdempotencyKey.objects.exists()


def test_an_expired_key_performs_the_write_again(api, vn_officer):
    api.force_authenticate(vn_officer)
    _post(api)
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    assert _post(api).status_code == 201
    assert Item.objects.count() == 2


def test_a_patch_is_replayed_without_narrowing_twice(api, post, vn_officer):
    item = post(vn_officer, countries=["VN", "KH", "TH"]).item
    api.force_authenticate(vn_officer)
    url = f"{ITEMS}{item.pk}/"
    first = api.patch(url, {"countries": ["VN", "KH"]}, format="json", HTTP_IDEMPOTENCY_KEY="narrow")
    again = api.patch(url, {"countries": ["VN", "KH"]}, format="json", HTTP_IDEMPOTENCY_KEY="narrow")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert AuditEvent.objects.filter(action="messaging.item.release_narrow").count() == 1


def test_a_withdrawal_replays_as_the_originators_read_answers_now(api, post, vn_officer):
    item = post(vn_officer).item
    api.force_authenticate(vn_officer)
    url = f"{ITEMS}{item.pk}/withdraw/"
    assert api.post(url, HTTP_IDEMPOTENCY_KEY="withdraw").status_code == 200
    read_now = api.get(f"{ITEMS}{item.pk}/")
    replay = api.post(url, HTTP_IDEMPOTENCY_KEY="withdraw")
    assert replay.status_code == read_now.status_code
    assert replay.json()["status"] == read_now.json()["status"] == "withdrawn"
    assert AuditEvent.objects.filter(action="messaging.item.withdraw").count() == 1


# --- an acknowledgement, replayed after the caller lost access ------------------------------------------------------


@pytest.fixture
def net():
    return build_network()


@pytest.fixture
def routed(net):
    item = post_item(net.user("vn.officer"), priority="flash")
    item_route(outbox_id=OutboxMessage.objects.get(item=item, kind=OutboxKind.ITEM_ROUTE).pk)
    return item


def test_an_acknowledgement_replays_and_after_narrowing_answers_404(net, routed, api):
    api.force_authenticate(net.user("kh.officer"))
    url = f"{ITEMS}{routed.pk}/acknowledge/"
    first = api.post(url, {"note": "no_trace"}, format="json", HTTP_IDEMPOTENCY_KEY="ack")
    again = api.post(url, {"note": "no_trace"}, format="json", HTTP_IDEMPOTENCY_KEY="ack")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert Acknowledgement.objects.count() == 1
    item_change(actor=net.user("vn.officer"), item_id=routed.pk, countries=["VN"])
    gone = api.post(url, {"note": "no_trace"}, format="json", HTTP_IDEMPOTENCY_KEY="ack")
    assert gone.status_code == 404
    assert gone.json() == api.get(f"{ITEMS}{routed.pk}/").json()
    assert "no_trace" not in gone.content.decode()


# --- the client-chosen item id ----------------------------------------------------------------------------------


def test_a_client_chosen_id_is_kept_and_reposting_it_replays(api, vn_officer):
    chosen = str(uuid.uuid4())
    api.force_authenticate(vn_officer)
    first = _post(api, key=None, id=chosen)
    again = _post(api, key=None, id=chosen)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"] == chosen
    assert Item.objects.count() == 1


def test_a_taken_id_is_a_plain_conflict_for_another_body_or_another_caller(api, vn_officer, kh_officer):
    chosen = str(uuid.uuid4())
    api.force_authenticate(vn_officer)
    _post(api, key=None, id=chosen, title="Secret title")
    other_body = _post(api, key=None, id=chosen, title="Another")
    assert other_body.status_code == 409
    api.force_authenticate(kh_officer)
    other_caller = _post(api, key=None, id=chosen, countries=["KH"], title="Mine")
    assert other_caller.status_code == 409
    assert other_caller.json()["detail"] == "This id is taken."
    assert "Secret" not in other_caller.content.decode()
    assert Item.objects.count() == 1


# --- two requests with the same key at once -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_concurrent_posts_with_the_same_key_make_one_item(vn_officer):
    barrier = threading.Barrier(4)
    answers: list[tuple[int, str]] = []

    def send() -> None:
        try:
            client = APIClient()
            client.force_authenticate(vn_officer)
            barrier.wait()
            response = _post(client, key="at-once")
            answers.append((response.status_code, response.json().get("id", "")))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert Item.objects.count() == 1
    item_id = str(Item.objects.get().pk)
    assert len(answers) == 4
    assert all(answer == (201, item_id) for answer in answers)


# --- subscriptions and webhooks ---------------------------------------------------------------------------------


def test_a_retried_subscription_create_makes_one_and_replays_it(net, api):
    api.force_authenticate(net.user("kh.officer"))
    body = {"category": "heroin_opium", "originator_country": "VN"}
    first = api.post("/api/v1/subscriptions/", body, format="json", HTTP_IDEMPOTENCY_KEY="sub-1")
    again = api.post("/api/v1/subscriptions/", body, format="json", HTTP_IDEMPOTENCY_KEY="sub-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Subscription.objects.count() == 2  # the network's own Chiang Saen subscription, and this one
    assert AuditEvent.objects.filter(action="messaging.subscription.create").count() == 1
    other = api.post("/api/v1/subscriptions/", {"category": "ketamine"}, format="json", HTTP_IDEMPOTENCY_KEY="sub-1")
    assert other.status_code == 422


@pytest.mark.parametrize("method", ["put", "patch"])
def test_a_retried_subscription_change_changes_once(net, api, method):
    subscription = Subscription.objects.create(agency=net.kh, user=net.user("kh.officer"), category="heroin_opium")
    api.force_authenticate(net.user("kh.officer"))
    url = f"/api/v1/subscriptions/{subscription.pk}/"
    send = getattr(api, method)
    first = send(url, {"category": "ketamine", "is_active": False}, format="json", HTTP_IDEMPOTENCY_KEY="change")
    again = send(url, {"category": "ketamine", "is_active": False}, format="json", HTTP_IDEMPOTENCY_KEY="change")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert AuditEvent.objects.filter(action="messaging.subscription.change").count() == 1


def test_a_webhook_configure_replay_answers_the_webhook_as_it_stands_never_the_secret(net, api):
    api.force_authenticate(net.user("kh.admin"))
    body = {"url": "https://kh.example.org/isn"}
    first = api.post("/api/v1/webhooks/", body, format="json", HTTP_IDEMPOTENCY_KEY="hook")
    secret = first.json()["secret"]
    AgencyWebhook.objects.update(is_active=False)  # changed since: the replay shows it as it is now
    again = api.post("/api/v1/webhooks/", body, format="json", HTTP_IDEMPOTENCY_KEY="hook")

    assert first.status_code == again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert set(again.json()) == {"id", "url", "is_active", "created_at", "updated_at"}
    assert (again.json()["id"], again.json()["is_active"]) == (first.json()["id"], False)
    assert secret not in again.content.decode()
    webhook = AgencyWebhook.objects.get()
    assert webhook_secret(webhook) == secret.encode()  # not made again
    assert AuditEvent.objects.filter(action="messaging.webhook.configure").count() == 1
    (row,) = IdempotencyKey.objects.values()
    assert (row["resource_type"], row["resource_id"]) == ("messaging.agencywebhook", str(webhook.pk))
    assert secret not in str(row)


def test_an_admin_keys_idempotency_keys_are_its_own(net):
    issued = api_key_issue(
        actor=net.user("kh.admin"),
        agency=net.kh,
        name="kh-integration",
        scopes=["admin"],
        expires_at=timezone.now() + timedelta(days=30),
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {issued.plaintext}")
    body = {"office": net.bavet.pk, "priority": "flash"}
    first = client.post("/api/v1/subscriptions/", body, format="json", HTTP_IDEMPOTENCY_KEY="sub")
    again = client.post("/api/v1/subscriptions/", body, format="json", HTTP_IDEMPOTENCY_KEY="sub")
    assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (201, 201, "true")
    assert IdempotencyKey.objects.get().api_key_id == issued.key.pk
    assert Subscription.objects.filter(office=net.bavet).count() == 1


def test_a_keyed_post_costs_no_more_statements_than_a_plain_one(api, vn_officer):
    """Posting is the hot path of ingest: ``item_create`` claims the key with its outcome in its own rows' statement
    (BENCHMARKS.md, "Agency systems"), so a keyed post makes no statement a plain post does not."""
    from django.test.utils import CaptureQueriesContext

    api.force_authenticate(vn_officer)
    _post(api, key=None)  # the countries' first keys are made on first use
    with CaptureQueriesContext(connection) as plain:
        assert _post(api, key=None).status_code == 201
    with CaptureQueriesContext(connection) as keyed:
        assert _post(api, key="count-1").status_code == 201
    assert len(keyed) <= len(plain)
    record = IdempotencyKey.objects.get(key="count-1")
    assert (record.response_status, record.resource_type) == (201, "messaging.item")
    assert record.resource_id == str(Item.objects.latest("created_at").pk)
