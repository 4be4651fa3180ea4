"""DRF authentication by agency API key: ``Authorization: Api-Key isn_<prefix>_<secret>``."""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from agencies.api_keys import KeyRefused, api_key_authenticate, api_key_record_refusal
from agencies.models import ApiKey
from agencies.throttling import RefusedKeyThrottle

KEYWORD = "Api-Key"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        keyword, _, presented = header.partition(" ")
        if keyword != KEYWORD:
            return None  # not ours: another scheme, or none
        try:
            key = api_key_authenticate(presented)
        except KeyRefused as refusal:
            api_key_record_refusal(refusal)
            throttle = RefusedKeyThrottle()
            if not throttle.allow_request(request, None):
                raise exceptions.Throttled(throttle.wait()) from None
            raise exceptions.AuthenticationFailed("This API key is not valid, has expired or was revoked.") from None
        # Lets the audit trail name the key, not only its service account, without another query.
        key.user.isn_api_key_id = key.pk
        return key.user, key

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD
