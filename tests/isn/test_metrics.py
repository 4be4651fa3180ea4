"""GET /metrics: Prometheus's text format behind a bearer token, with the queues and the outbox growing while no
worker runs (none does in most tests: what is posted stays queued in the real Redis and unprocessed in the outbox),
and the issue's scenario with a real worker and beat that routed and sealed, then stopped."""

from __future__ import annotations

import time

import pytest
import redis
from django.conf import settings as django_settings
from prometheus_client.parser import text_string_to_metric_families

from isn import broker
from tests.messaging.network import build_network, post_item
from tests.messaging.workers import private_broker, start_worker, wait_for

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


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_with_the_worker_stopped_the_queues_and_the_unsealed_audit_events_grow(client, token, settings, tmp_path):
    """Issue 17, done when: scraped with the token (refused without) while a worker is stopped, /metrics shows the
    Celery queues and the unsealed audit events growing. A real worker with beat routes and seals first."""
    network = build_network()
    officer = network.user("vn.officer")
    with private_broker(tmp_path) as redis_server:
        settings.REDIS_URL = redis_server.url  # one Redis for broker and cache, as the README configures
        queues = redis.Redis.from_url(redis_server.url)
        worker = start_worker(redis_server.url, tmp_path, beat=True, name="metrics")
        try:
            post_item(officer, priority="routine")
            # Working: the queues drain and beat's sealer links every audit event into the chain.
            working = wait_for(
                lambda: (
                    (samples := scrape(client))[("isn_audit_unsealed_events", ())] == 0
                    and samples[("isn_celery_queue_length", (("queue", "default"),))] == 0
                    and samples[("isn_outbox_unprocessed", ())] == 0
                    and samples
                ),
                timeout=60,
                interval=0.5,
                what=worker.output(),
            )
        finally:
            worker.stop()
        assert working[("isn_broker_up", ())] == 1
        assert working[("isn_audit_oldest_unsealed_age_seconds", ())] == 0

        for header in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}):
            refused = client.get("/metrics", **header)
            assert refused.status_code == 401
            assert b"isn_" not in refused.content

        post_item(officer, priority="routine")
        post_item(officer, priority="flash")
        stopped = scrape(client)
        assert stopped[("isn_celery_queue_length", (("queue", "default"),))] >= 1
        assert stopped[("isn_celery_queue_length", (("queue", "urgent"),))] >= 1
        assert stopped[("isn_audit_unsealed_events", ())] >= 2  # each post's own event at least
        assert stopped[("isn_outbox_unprocessed", ())] >= 2

        time.sleep(1.0)
        post_item(officer, priority="routine")
        later = scrape(client)
        assert (
            later[("isn_celery_queue_length", (("queue", "default"),))]
            > stopped[("isn_celery_queue_length", (("queue", "default"),))]
        )
        assert later[("isn_celery_queue_length", (("queue", "default"),))] == queues.llen("default")
        assert later[("isn_audit_unsealed_events", ())] > stopped[("isn_audit_unsealed_events", ())]
        assert (
            later[("isn_audit_oldest_unsealed_age_seconds", ())]
            >= stopped[("isn_audit_oldest_unsealed_age_seconds", ())] + 1.0
        )
