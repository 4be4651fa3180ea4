"""A database out of reach (restarting, failing over) is answered 503 with Retry-After: problem details under /api/, a
plain page in the portal; never a traceback, never a 500. The database is really unreachable here: this process's
connection is pointed at a port where nothing listens, then back. tests/isn/test_postgres_restart.py restarts one."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import Client

from tests.messaging.workers import free_port

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def database_away():
    connection.close()
    port = connection.settings_dict["PORT"]
    connection.settings_dict["PORT"] = str(free_port())
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["PORT"] = port


def test_the_api_answers_503_with_a_problem(database_away):
    response = Client(raise_request_exception=False).get(
        "/api/v1/items/", HTTP_AUTHORIZATION="Api-Key isn_abcdefgh_0123456789abcdefghijklmnopqrstuv"
    )
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response["Retry-After"] == "5"
    body = json.loads(response.content)
    assert body["status"] == 503
    assert body["code"] == "database_unavailable"
    assert "Traceback" not in response.content.decode()


def test_the_portal_answers_503_with_a_plain_page(database_away):
    response = Client(raise_request_exception=False).post(
        "/accounts/login/", {"username": "vn.officer", "password": "correct horse battery staple"}
    )
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    page = response.content.decode()
    assert "ISN is briefly unavailable" in page
    assert "Traceback" not in page
    assert "OperationalError" not in page
