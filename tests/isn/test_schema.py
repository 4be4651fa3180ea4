"""/api/schema/ as drf-spectacular makes it is a valid OpenAPI document that tells a generated client the truth:
JSON bodies (multipart only for the one upload, typed binary), every error as problem details, and the errors every
operation can answer."""

from __future__ import annotations

import json

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from openapi_spec_validator import validate

from isn.problems import PROBLEM_CONTENT_TYPE

METHODS = ("get", "post", "put", "patch", "delete")
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


@pytest.fixture(scope="module")
def schema() -> dict:
    return json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))


def _operations(schema: dict):
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def test_schema_is_valid_openapi_3_1(schema):
    assert schema["openapi"].startswith("3.1")
    validate(schema)


def test_every_security_scheme_is_a_real_credential(schema):
    schemes = schema["components"]["securitySchemes"]
    assert set(schemes) == {"ApiKey", "cookieAuth"}
    assert all(scheme.get("type") for scheme in schemes.values())


def test_request_bodies_are_json_and_only_the_upload_is_multipart(schema):
    bodies = {
        (path, method): set(operation["requestBody"]["content"])
        for path, method, operation in _operations(schema)
        if "requestBody" in operation
    }
    upload = ("/api/v1/items/{id}/attachments/", "post")
    assert bodies.pop(upload) == {"multipart/form-data"}
    assert {frozenset(types) for types in bodies.values()} == {frozenset({"application/json"})}
    file = schema["components"]["schemas"]["AttachmentUpload"]["properties"]["file"]
    assert file == {"type": "string", "format": "binary"}


def test_every_json_request_body_is_closed_to_fields_it_does_not_take(schema):
    """Each JSON body's serializer refuses unknown and read-only fields (isn.input.RefuseUnknownFields), and says so."""
    components = schema["components"]["schemas"]
    open_bodies = []
    for path, method, operation in _operations(schema):
        json_body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if json_body is None:
            continue
        component = components[json_body["schema"]["$ref"].rsplit("/", 1)[-1]]
        if component.get("additionalProperties") is not False:
            open_bodies.append((method, path))
    assert open_bodies == []


def test_every_operation_documents_its_errors_as_problem_details(schema):
    for path, method, operation in _operations(schema):
        responses = operation["responses"]
        wanted = {"401", "403", "406", "429", "500"} | ({"404"} if "{" in path else set())
        if "requestBody" in operation:
            wanted |= {"400", "413", "415"}
        if any(parameter["name"] == "Idempotency-Key" for parameter in operation.get("parameters", [])):
            wanted.add("422")
        assert wanted <= set(responses), (method, path, wanted - set(responses))
        for status, response in responses.items():
            if int(status) >= 400:
                assert response["content"] == {PROBLEM_CONTENT_TYPE: {"schema": PROBLEM_REF}}, (method, path, status)
    problem = schema["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}
    assert "errors" in problem["properties"]
    assert not {"Error", "RfiError", "ConsentError"} & set(schema["components"]["schemas"])


def test_422_only_where_an_idempotency_key_is_taken(schema):
    takes_key = {
        (path, method)
        for path, method, operation in _operations(schema)
        if any(parameter["name"] == "Idempotency-Key" for parameter in operation.get("parameters", []))
    }
    answers_422 = {(path, method) for path, method, operation in _operations(schema) if "422" in operation["responses"]}
    assert ("/api/v1/items/", "post") in takes_key
    assert ("/api/v1/items/{id}/forward/", "post") in takes_key
    assert answers_422 == takes_key


def test_every_response_documents_the_ratelimit_headers(schema):
    headers = schema["components"]["headers"]
    assert {"RateLimit-Policy", "RateLimit", "Retry-After"} <= set(headers)
    assert "draft-ietf-httpapi-ratelimit-headers-11" in headers["RateLimit"]["description"]
    for path, method, operation in _operations(schema):
        for status, response in operation["responses"].items():
            assert response["headers"]["RateLimit-Policy"] == {"$ref": "#/components/headers/RateLimit-Policy"}
            assert response["headers"]["RateLimit"] == {"$ref": "#/components/headers/RateLimit"}
            assert ("Retry-After" in response["headers"]) == (status == "429"), (method, path, status)


def test_405_is_one_reusable_response_with_allow(schema):
    # No operation answers 405: a method a path does not take is no operation. The component says what it looks like.
    response = schema["components"]["responses"]["MethodNotAllowed"]
    assert response["content"] == {PROBLEM_CONTENT_TYPE: {"schema": PROBLEM_REF}}
    assert {"Allow", "RateLimit-Policy", "RateLimit"} <= set(response["headers"])
    assert "405" in schema["info"]["description"]


def test_list_filters_document_400(schema):
    assert "400" in schema["paths"]["/api/v1/items/"]["get"]["responses"]
    assert "400" in schema["paths"]["/api/v1/audit/events/"]["get"]["responses"]


def test_audit_flags_and_status_are_typed(schema):
    def body(path: str) -> dict:
        return schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]

    flags = schema["components"]["schemas"][body("/api/v1/audit/flags/")["$ref"].rsplit("/", 1)[-1]]
    assert set(flags["properties"]) == {
        "bulk_reads",
        "off_hours_reads",
        "repeated_denials",
        "many_countries",
        "many_identifiers",
        "hit_countries",
    }
    status = schema["components"]["schemas"][body("/api/v1/audit/status/")["$ref"].rsplit("/", 1)[-1]]
    assert {"last_event_id", "last_sealed_id", "unsealed_count", "latest_checkpoint"} <= set(status["properties"])


def test_downloads_state_their_real_content_types(schema):
    download = schema["paths"]["/api/v1/items/{id}/attachments/{attachment_id}/"]["get"]["responses"]["200"]
    assert "application/pdf" in download["content"]
    assert "application/octet-stream" not in download["content"]
    export = schema["paths"]["/api/v1/audit/events/export/"]["get"]["responses"]["200"]
    assert set(export["content"]) == {"application/json", "text/csv"}
