"""The API's OpenAPI schema class (kept apart from ``isn.api``: DRF imports that while defining its views)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from isn.input import RefuseUnknownFields
from isn.problems import PROBLEM_CONTENT_TYPE
from isn.ratelimit import LIMIT_HEADER, POLICY_HEADER, RATELIMIT_DRAFT

# The header that makes a write exactly-once (messaging.api.common.idempotent): an operation that takes it can answer
# 422 when a key is used again with another request.
IDEMPOTENCY_KEY = "Idempotency-Key"


class ProblemSerializer(serializers.Serializer):
    """The body of every error answer (RFC 9457 problem details, plus ISN's ``code`` and ``errors``)."""

    type = serializers.CharField(help_text="Always about:blank: the reason is in code.")
    title = serializers.CharField(help_text="The HTTP status phrase.")
    status = serializers.IntegerField()
    detail = serializers.CharField(help_text="What went wrong, for a person to read.")
    code = serializers.CharField(help_text="Stable, machine-readable reason (invalid, not_found, conflict, ...).")
    errors = serializers.DictField(
        required=False,
        child=serializers.JSONField(),
        help_text='On bad input: {"fields": {field: [message, ...]}}.',
    )


# What every operation can answer besides what it declares, and when.
_COMMON_PROBLEMS = {
    "400": "Bad input or filters; per-field messages in errors.",
    "401": "No credentials, or credentials not accepted.",
    "403": "Not allowed to you (a key without the scope, a role without the right).",
    "404": "No such object, or not one you may see (indistinguishable).",
    "413": "The request body is too large.",
    "405": "Not a method this path takes; the Allow header lists those it does.",
    "406": "The Accept header names no type this operation answers in.",
    "415": "The request body is not of a type this operation takes.",
    "422": "This Idempotency-Key was used before with another request (code idempotency_key_reused).",
    "429": "Too many requests; retry after the Retry-After header's seconds.",
    "500": "The server could not answer.",
}

# The headers of every answer (isn.ratelimit), and of a 429; components, referred to by every response.
_HEADERS: dict[str, dict[str, Any]] = {
    POLICY_HEADER: {
        "description": (
            f"The quota policy that counts the caller ({RATELIMIT_DRAFT}): per API key (api_key), per signed-in "
            'person (person), else per address (anonymous; refused_key for refused keys). "api_key";q=1200;w=60 is '
            "1200 requests per 60 seconds."
        ),
        "schema": {"type": "string"},
    },
    LIMIT_HEADER: {
        "description": (
            f'What is left of that quota ({RATELIMIT_DRAFT}): "api_key";r=1187;t=42 is 1187 requests left, and no '
            "more than that for the next 42 seconds."
        ),
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds before the next request is allowed.",
        "schema": {"type": "integer"},
    },
}
# A method a path does not take is not an operation, so no operation can list its 405: it is the reusable response
# components/responses/MethodNotAllowed, and the API's description says when it is answered.
METHOD_NOT_ALLOWED = "MethodNotAllowed"


class ApiSchema(AutoSchema):
    """drf-spectacular's schema, with every error answer documented as problem details (``Problem``), the errors every
    operation can answer (401, 403, 406, 429, 500; 404 on a detail route; 400 with input; 413 and 415 with a body; 422
    with an Idempotency-Key) listed where not declared, the RateLimit headers on every response, and request bodies
    closed (``additionalProperties: false``) where the serializer refuses fields it does not take."""

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        parameters = self._get_parameters()
        has_body = self.method in ("POST", "PUT", "PATCH")
        wanted = ["401", "403", "406", "429", "500"]
        if has_body or any(parameter.get("in") == "query" for parameter in parameters):
            wanted.append("400")
        if "{" in self.path:
            wanted.append("404")
        if has_body:
            wanted += ["413", "415"]
        if any((parameter.get("in"), parameter.get("name")) == ("header", IDEMPOTENCY_KEY) for parameter in parameters):
            wanted.append("422")
        for code in sorted(wanted):
            if code not in responses:
                responses[code] = self._get_response_for_code(None, code, direction=direction)
        self._register_method_not_allowed()
        return dict(sorted(responses.items()))

    def _map_basic_serializer(self, serializer: Any, direction: Any) -> dict[str, Any]:
        mapped = super()._map_basic_serializer(serializer, direction)
        if isinstance(serializer, RefuseUnknownFields) or (
            isinstance(serializer, type) and issubclass(serializer, RefuseUnknownFields)
        ):
            mapped["additionalProperties"] = False  # a field it does not take is refused (isn.input)
        return mapped

    def _get_response_headers_for_code(self, status_code: str, direction: Any = "response") -> dict[str, Any]:
        headers = super()._get_response_headers_for_code(status_code, direction)
        names = [POLICY_HEADER, LIMIT_HEADER] + (["Retry-After"] if status_code == "429" else [])
        for name in names:
            headers.setdefault(name, self._header(name))
        return headers

    def _header(self, name: str) -> dict[str, str]:
        component = ResolvedComponent(name=name, type=ResolvedComponent.HEADER, schema=_HEADERS[name], object=name)
        self.registry.register_on_missing(component)
        return component.ref

    def _register_method_not_allowed(self) -> None:
        name = METHOD_NOT_ALLOWED
        component = ResolvedComponent(name=name, type=ResolvedComponent.RESPONSE, object=name)
        if component in self.registry:
            return
        response = self._get_response_for_code(None, "405")
        response["headers"]["Allow"] = {
            "description": "The methods this path takes.",
            "schema": {"type": "string"},
        }
        component.schema = response
        self.registry.register(component)

    def _get_response_for_code(
        self, serializer: Any, status_code: str, media_types: Any = None, direction: Any = "response"
    ) -> dict[str, Any]:
        if status_code >= "400":
            description = serializer.description if isinstance(serializer, OpenApiResponse) else ""
            serializer = OpenApiResponse(
                ProblemSerializer, description=description or _COMMON_PROBLEMS.get(status_code, "")
            )
            media_types = [PROBLEM_CONTENT_TYPE]
        return super()._get_response_for_code(serializer, status_code, media_types, direction)
