"""Request context: every request carries an id (echoed in the response and in every log line written while it
runs), and the caller's address and user agent, which the audit trail records without each service passing them."""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from isn.net import client_ip

REQUEST_ID_HEADER = "X-Request-ID"
# A caller-supplied id is kept only when it is short and plain, so it cannot smuggle text into logs.
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


@dataclass(frozen=True)
class RequestContext:
    request_id: str
    ip: str | None
    user_agent: str


_NO_REQUEST = RequestContext(request_id="-", ip=None, user_agent="")
_current: contextvars.ContextVar[RequestContext] = contextvars.ContextVar("isn_request_context", default=_NO_REQUEST)


def current_request() -> RequestContext:
    """The context of the request being served, or an empty one (Celery tasks, management commands)."""
    return _current.get()


def current_request_id() -> str:
    return _current.get().request_id


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        supplied = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = supplied if _ACCEPTABLE.match(supplied) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        # Proxy headers are believed only from the proxies the operator configured (isn.net), never from the caller.
        context = RequestContext(
            request_id=request_id,
            ip=client_ip(request),
            user_agent=request.headers.get("User-Agent", ""),
        )
        token = _current.set(context)
        try:
            response = self.get_response(request)
        finally:
            _current.reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response


class RequestIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        return True


class PermissionsPolicyMiddleware:
    """Switches off browser features ISN never uses (camera, microphone, location, ...) on every response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", settings.ISN_PERMISSIONS_POLICY)
        return response
