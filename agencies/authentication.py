"""DRF authentication by agency API key: ``Authorization: Api-Key isn_<prefix>_<secret>``."""

from __future__ import annotations

import base64
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
        return self._key(presented, request)

    def _key(self, presented: str, request: Request) -> tuple[Any, ApiKey]:
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


class ApiKeyBasicAuthentication(ApiKeyAuthentication):
    """An agency API key as HTTP Basic credentials, for clients that only do Basic (TAXII clients, MISP, OpenCTI):
    the key's id (``isn_<prefix>`` or ``<prefix>``) as the user name and its secret as the password. The same key,
    checks, refusal records and throttles as ``Authorization: Api-Key``; used by the TAXII server only."""

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        keyword, _, encoded = header.partition(" ")
        if keyword.lower() != "basic":
            return None
        try:
            user, _, secret = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            raise exceptions.AuthenticationFailed(
                "Send the API key's id as the user name, its secret as the password."
            ) from None
        prefix = user.removeprefix("isn_")
        return self._key(f"isn_{prefix}_{secret}", request)

    def authenticate_header(self, request: Request) -> str:
        return 'Basic realm="ISN"'
