"""GET /metrics: Prometheus's text format behind a bearer token, with the queues and the outbox growing while no
worker runs (none does in tests: what is posted stays queued in the real Redis and unprocessed in the outbox)."""

from __future__ import annotations

import time

import pytest
import redis
from django.conf import settings as django_settings
from prometheus_client.parser import text_string_to_metric_families

from isn import broker
from tests.messaging.network import build_network, post_item

TOKEN = "metrics-" + "0123456789abcdefghijklmnopqrstuvwxyz"

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(settings):
    settings.ISN_METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_off_without_a_configured_token(client, settings):
    settings.ISN_METRICS_TOKEN = None
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404


def test_refused_without_the_right_token(client, token):
    for header in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": f"Basic {TOKEN}"}):
        response = client.get("/metrics", **header)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert b"isn_" not in response.content


def test_get_only(client, token):
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


def test_every_metric_is_there(client, token):
    names = {name for name, _labels in scrape(client)}
    for name in (
        "isn_broker_up",
        "isn_outbox_unprocessed",
        "isn_outbox_oldest_unprocessed_age_seconds",
        "isn_audit_unsealed_events",
        "isn_audit_oldest_unsealed_age_seconds",
        "isn_audit_last_checkpoint_age_seconds",
        "isn_webhook_dead_letters",
        "isn_task_dead_letters",
        "isn_flash_escalations_pending",
    ):
        assert name in names, name
    samples = scrape(client)
    assert samples[("isn_broker_up", ())] == 1
    assert {labels for name, labels in samples if name == "isn_celery_queue_length"} == {
        (("queue", "urgent"),),
        (("queue", "default"),),
    }


def test_requests_are_counted_by_view_name_never_by_path(client, token):
    client.get("/healthz")
    client.get("/api/v1/items/12345/")  # an id in the path must not become a label
    samples = scrape(client)
    counts = {dict(labels)["view"] for name, labels in samples if name == "isn_http_request_duration_seconds_count"}
    assert "healthz" in counts
    assert not any("12345" in view for view in counts)
    healthz = [v for (name, labels), v in samples.items() if name.endswith("_count") and ("view", "healthz") in labels]
    assert sum(healthz) >= 1


def test_broker_down_is_reported_not_fatal(client, token, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    samples = scrape(client)
    assert samples[("isn_broker_up", ())] == 0
    assert not [name for name, _labels in samples if name == "isn_celery_queue_length"]
    assert ("isn_outbox_unprocessed", ()) in samples


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_with_no_worker_the_queue_grows_and_the_outbox_ages(client, token):
    """The done-when of issue 17, point 4: no worker runs, so what is posted waits, and the scrape shows it."""
    queues = redis.Redis.from_url(django_settings.REDIS_URL)
    queues.delete("default", "urgent")
    broker.breaker.reset()
    network = build_network()
    before = scrape(client)
    assert before[("isn_outbox_unprocessed", ())] == 0
    assert before[("isn_outbox_oldest_unprocessed_age_seconds", ())] == 0

    post_item(network.user("vn.officer"), priority="routine")  # committed: its routing row is published
    assert queues.llen("default") >= 1
    first = scrape(client)
    assert first[("isn_celery_queue_length", (("queue", "default"),))] == queues.llen("default")
    assert first[("isn_outbox_unprocessed", ())] >= 1
    assert first[("isn_outbox_oldest_unprocessed_age_seconds", ())] > 0

    post_item(network.user("vn.officer"), priority="flash")
    time.sleep(1.0)
    second = scrape(client)
    assert second[("isn_celery_queue_length", (("queue", "urgent"),))] >= 1
    assert second[("isn_outbox_unprocessed", ())] > first[("isn_outbox_unprocessed", ())]
    assert (
        second[("isn_outbox_oldest_unprocessed_age_seconds", ())]
        >= first[("isn_outbox_oldest_unprocessed_age_seconds", ())] + 1.0
    )
    queues.delete("default", "urgent")
