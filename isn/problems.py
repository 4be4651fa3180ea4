"""Problem details (RFC 9457): the shape of every error answer under /api/, whoever makes it (DRF's exception handler
in ``isn.api``, or ``isn.middleware.ApiProblemMiddleware`` for what Django answers itself).

``type`` is always ``about:blank``, so ``title`` is the HTTP status phrase; the stable, machine-readable reason is
ISN's ``code``, and bad input adds ``errors``: ``{"fields": {field: [message, ...]}}``.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from django.http import HttpRequest, HttpResponse

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE = "about:blank"


def problem(status: int, *, code: str, detail: str, errors: dict[str, object] | None = None) -> dict[str, object]:
    """The problem details body of an error answer."""
    body: dict[str, object] = {
        "type": PROBLEM_TYPE,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors:
        body["errors"] = errors
    return body


def problem_response(status: int, *, code: str, detail: str) -> HttpResponse:
    """An error answer made outside DRF, in the same shape."""
    body = problem(status, code=code, detail=detail)
    return HttpResponse(json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)


def is_api_request(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")
