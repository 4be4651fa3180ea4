"""Schemathesis against /api/schema/ as an officer's agency system, an auditor's key and an agency admin in person:
no request the schema allows may end in a server error or a response the schema does not describe.

Bounded and deterministic (``derandomize``): the same examples every run, a few per operation and role. Checks:
no 5xx, the response body matches its documented schema, and its content type is the documented one.

Then hostile bodies the schema does not allow, to every operation that takes JSON: bodies nested 1,200 deep (whole,
or in a field), integers past the database's range, and a field the operation does not take. None ends in a 5xx; the
nested bodies and the unknown field are refused with a 4xx problem, never taken (an integer may be fine as text).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from rest_framework.settings import api_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from agencies.api_keys import api_key_issue
from agencies.models import ApiKeyScope, Role
from isn.problems import PROBLEM_CONTENT_TYPE
from tests.auth import sign_in
from tests.factories import AgencyFactory, MembershipFactory, OfficeFactory, UserFactory, country

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture
def roles(db, monkeypatch, client):
    """Authorization headers of each role, against a small network with one item to find."""
    for scope in ("api_key", "person", "anonymous"):
        monkeypatch.setitem(api_settings.DEFAULT_THROTTLE_RATES, scope, "100000/minute")
    from agencies.keyring import forget_cached_keys

    forget_cached_keys()
    vn = AgencyFactory(country=country("VN"), short_name="VNF")
    AgencyFactory(country=country("KH"), short_name="KHF")
    admin = MembershipFactory(user=UserFactory(username="vn.admin"), agency=vn, role=Role.AGENCY_ADMIN).user
    MembershipFactory(user=UserFactory(username="vn.officer"), agency=vn, office=OfficeFactory(agency=vn))
    auditor = MembershipFactory(user=UserFactory(username="vn.auditor"), agency=vn, role=Role.NATIONAL_AUDITOR).user
    soon = timezone.now() + timedelta(days=30)

    def key(name: str, scopes: list[str]) -> dict[str, str]:
        issuer = auditor if scopes == [ApiKeyScope.AUDIT] else admin  # an audit key comes from an auditor
        issued = api_key_issue(actor=issuer, agency=vn, name=name, scopes=scopes, expires_at=soon)
        return {"Authorization": f"Api-Key {issued.plaintext}"}

    sign_in(client, admin)
    cookie = "; ".join(f"{name}={morsel.value}" for name, morsel in client.cookies.items())
    yield {
        "officer system": key("officer", [ApiKeyScope.READ, ApiKeyScope.WRITE]),
        "auditor system": key("auditor", [ApiKeyScope.AUDIT]),
        "agency admin in person": {"Cookie": cookie},
    }
    forget_cached_keys()


@pytest.fixture
def in_process_wsgi():
    # Schemathesis calls the WSGI application in this thread, inside the test's transaction; like Django's test
    # client, keep the request signals from closing the connection that holds it.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield schema.app
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _schema_document() -> dict:
    """/api/schema/ as drf-spectacular makes it (no request, no database: fine at collection time)."""
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated))


# Loaded here rather than through schemathesis.pytest.from_fixture, whose lazy loading does not work with pytest 9.
schema = schemathesis.openapi.from_dict(_schema_document())
schema.app = get_wsgi_application()


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=12,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_api_answers_within_its_schema_for_every_role(case, roles, in_process_wsgi):
    for headers in roles.values():
        case.call_and_validate(headers=headers, checks=CHECKS)


HUGE = 2**70
DEPTH = 1200


def _takes_json(context) -> bool:
    return "application/json" in (context.operation.definition.raw.get("requestBody") or {}).get("content", {})


def _huge_numbers(value):
    """Every integer in ``value`` past the database's range; a body without integers gets them in every field."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return HUGE
    if isinstance(value, list):
        return [_huge_numbers(child) for child in value] or [HUGE]
    if isinstance(value, dict):
        changed = {key: _huge_numbers(child) for key, child in value.items()}
        return changed if changed != value else dict.fromkeys(value, HUGE)
    return value


def _hostile_bodies(body) -> dict[str, str]:
    fields = body if isinstance(body, dict) else {}
    deep_list = "[" * DEPTH + "1" + "]" * DEPTH
    rest = json.dumps(dict(list(fields.items())[1:]))
    first = next(iter(fields), "title")
    return {
        "nested objects": '{"a":' * DEPTH + "1" + "}" * DEPTH,
        "nested lists": deep_list,
        "nested in a field": f'{{"{first}": {deep_list}' + (", " + rest[1:] if rest != "{}" else "}"),
        "integers past the database's range": json.dumps(_huge_numbers(fields) or {"id": HUGE}),
        "a field it does not take": json.dumps({**fields, "surplus": 1}),
    }


# The same operations, from a few of Schemathesis's valid bodies each (its coverage phase's many variants of every
# field would only multiply the same hostile bodies).
hostile_schema = schemathesis.openapi.from_dict(_schema_document())
hostile_schema.config.phases.coverage.enabled = False


@pytest.mark.slow
@hostile_schema.include(_takes_json).parametrize()
@settings(max_examples=2, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_hostile_bodies_are_refused_by_every_json_write(case, roles):
    if case.method not in ("POST", "PUT", "PATCH"):
        return  # Schemathesis also tries methods the path does not take; those never read a body
    client = Client()
    for role, headers in roles.items():
        for name, raw in _hostile_bodies(case.body).items():
            response = client.generic(
                case.method, case.formatted_path, raw, content_type="application/json", headers=headers
            )
            where = f"{case.method} {case.formatted_path} as {role}, {name}: {response.content[:300]!r}"
            assert response.status_code < 500, where
            if response.status_code >= 400:
                assert response["Content-Type"] == PROBLEM_CONTENT_TYPE, where
            else:
                assert name == "integers past the database's range", where
