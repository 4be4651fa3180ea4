"""The API's OpenAPI schema class (kept apart from ``isn.api``: DRF imports that while defining its views)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from isn.problems import PROBLEM_CONTENT_TYPE


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
    "415": "The request body is not of a type this operation takes.",
    "429": "Too many requests; retry after the Retry-After header's seconds.",
    "500": "The server could not answer.",
}


class ApiSchema(AutoSchema):
    """drf-spectacular's schema, with every error answer documented as problem details (``Problem``) and the errors
    every operation can answer (401, 403, 429, 500; 404 on a detail route; 400 with input) listed where not declared."""

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        has_body = self.method in ("POST", "PUT", "PATCH")
        wanted = ["401", "403", "429", "500"]
        if has_body or any(parameter.get("in") == "query" for parameter in self._get_parameters()):
            wanted.append("400")
        if "{" in self.path:
            wanted.append("404")
        if has_body:
            wanted += ["413", "415"]
        for code in sorted(wanted):
            if code not in responses:
                responses[code] = self._get_response_for_code(None, code, direction=direction)
        return dict(sorted(responses.items()))

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
