"""Request context: every request carries an id (echoed in the response and in every log line written while it
runs), and the caller's address and user agent, which the audit trail records without each service passing them."""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from isn.net import client_ip
from isn.problems import PROBLEM_CONTENT_TYPE, is_api_request, problem_response
from isn.ratelimit import ratelimit_headers, ratelimit_open, ratelimits_of

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
        request_id = current_request_id()
        if request_id == _NO_REQUEST.request_id:
            # Django logs a 4xx or 5xx answer ("Not Found: /path") after the middleware has returned, with the request
            # passed along: its id is still the request's.
            request_id = getattr(getattr(record, "request", None), "request_id", request_id)
        record.request_id = request_id
        return True


class PermissionsPolicyMiddleware:
    """Switches off browser features ISN never uses (camera, microphone, location, ...) on every response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", settings.ISN_PERMISSIONS_POLICY)
        return response


class RateLimitHeadersMiddleware:
    """RateLimit-Policy and RateLimit (``isn.ratelimit``) on every answer under /api/ whose caller a throttle counted or
    read: every answer of an API view, unknown routes included (``isn.api.ApiNotFound``). What Django answers before
    any view runs (a Host not allowed, a failure in a middleware) carries neither: no caller is known then."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_api_request(request):
            return self.get_response(request)
        ratelimit_open(request)
        response = self.get_response(request)
        for header, value in ratelimit_headers(ratelimits_of(request)).items():
            response[header] = value
        return response


class ApiProblemMiddleware:
    """Errors under /api/ that Django answers itself (an unknown route, a request too large, a server error) become
    problem details like every other API error, never an HTML page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code < 400 or not is_api_request(request):
            return response
        if response.get("Content-Type", "").startswith((PROBLEM_CONTENT_TYPE, "application/json")):
            return response
        status = response.status_code
        if status >= 500:
            replacement = problem_response(500, code="server_error", detail="The server could not answer this request.")
        elif status == 404:
            replacement = problem_response(404, code="not_found", detail="Not found.")
        else:
            code = _CODES.get(status, "invalid" if status == 400 else "error")
            replacement = problem_response(status, code=code, detail=HTTPStatus(status).phrase + ".")
        for header, value in response.items():
            if header.lower() not in ("content-type", "content-length"):
                replacement[header] = value
        return replacement


_CODES = {403: "permission_denied", 405: "method_not_allowed", 413: "too_large"}
