from __future__ import annotations

import pytest
from django.utils import timezone

from isn.models import WorkerHeartbeat

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"], body["broker"]) == ("ok", "ok", "ok")
    assert body["worker"] == {"status": "unknown"}


def test_healthz_reports_a_live_worker(client):
    WorkerHeartbeat.objects.create(hostname="worker@host", seen_at=timezone.now())
    assert client.get("/healthz").json()["worker"]["status"] == "ok"


def test_healthz_reports_broker_down_within_two_seconds(client, settings):
    from isn.celery import app

    original = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        response = client.get("/healthz")
    finally:
        app.conf.broker_url = original
    assert response.status_code == 503
    assert response.json()["broker"] == "down"


def test_request_id_is_echoed_or_made(client):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="abc-12345678").headers["X-Request-ID"] == "abc-12345678"
    made = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline").headers["X-Request-ID"]
    assert len(made) == 32
    assert "\n" not in made
