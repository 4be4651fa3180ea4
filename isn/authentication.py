"""DRF session authentication that, like the portal, counts a session only once its second factor is verified."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request


class VerifiedSessionAuthentication(SessionAuthentication):
    """A signed-in session whose second factor is verified; a password-only session is anonymous to the API.

    Agency systems use API keys (``agencies.authentication``), which this does not touch.
    """

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        is_verified = getattr(user, "is_verified", None)  # installed by django_otp's OTPMiddleware
        if is_verified is None or not is_verified():
            return None
        return result


class VerifiedSessionScheme(OpenApiAuthenticationExtension):
    """Documents the verified session in /api/schema/ as the session cookie it is."""

    target_class = "isn.authentication.VerifiedSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": settings.SESSION_COOKIE_NAME,
            "description": "A portal session, after both sign-in factors.",
        }
