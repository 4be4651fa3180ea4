"""Teaches drf-spectacular the API-key scheme, so /api/schema/ documents ``Authorization: Api-Key <key>``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "agencies.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "An agency API key: `Authorization: Api-Key isn_<prefix>_<secret>`.",
        }
