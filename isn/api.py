"""Shared pieces of the REST API: pagination, content negotiation, and the one translation of errors into responses.

Every error under /api/ is a problem details document (RFC 9457), ``application/problem+json``::

    {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "...", "code": "not_found"}

``type`` is always ``about:blank`` (so ``title`` is the HTTP status phrase) and the stable, machine-readable reason is
``code``; bad input adds ``errors``: ``{"fields": {field: [message, ...]}}``. DRF's and the services' errors pass
through ``exception_handler``; Django's own (an unknown route, a server error) through
``isn.middleware.ApiProblemMiddleware``.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import Http404, HttpResponse, HttpResponsePermanentRedirect
from django.urls import is_valid_path
from rest_framework import exceptions
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

import isn.audit
from isn.errors import ApplicationError, Probed
from isn.errors import NotFound as DomainNotFound
from isn.errors import PermissionDenied as DomainPermissionDenied
from isn.problems import PROBLEM_CONTENT_TYPE, problem
from isn.throttling import ratelimit_for_error

_PLAIN_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class DefaultPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class ApiNotFound(APIView):
    """Any path under /api/ that no route claims (the last of the root URLs): 404 as problem details, after
    authentication and throttling like every API request, so it counts against the caller's rate and carries the
    RateLimit headers. A GET missing only its trailing slash is sent to the route, as Django's APPEND_SLASH would."""

    permission_classes: list[Any] = []  # DRF throttles after permissions: none here, so every caller is counted
    schema = None  # not an operation of the API

    def http_method_not_allowed(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        path = request.path_info
        if request.method in ("GET", "HEAD") and settings.APPEND_SLASH and not path.endswith("/"):
            match = is_valid_path(f"{path}/")
            if match and getattr(match.func, "view_class", None) is not ApiNotFound:
                return HttpResponsePermanentRedirect(request.get_full_path(force_append_slash=True))
        raise exceptions.NotFound()

    options = http_method_not_allowed  # not DRF's description of the view


_INVALID_DETAIL = "The request is not valid; see errors."
# A DRF or Django error that is not an APIException: its code by status.
_CODE_BY_STATUS = {400: "invalid", 401: "not_authenticated", 403: "permission_denied", 404: "not_found"}


def _denial_reason(exc: Exception, context: dict[str, Any]) -> str | None:
    """Why this error is a refused attempt on something protected, or None when it is not one."""
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        return "not_authenticated"
    if isinstance(exc, exceptions.PermissionDenied | DomainPermissionDenied):
        return "permission_denied"
    # Objects outside a viewer's scope are filtered out by the query and so answer 404: on a detail route that is a
    # refusal. A list's "invalid page" 404 names no object and is not.
    if isinstance(exc, Http404 | exceptions.NotFound | DomainNotFound) and context.get("kwargs"):
        return "not_found"
    # An object named in the body (the item of a consent request, say) that the caller may not see.
    if isinstance(exc, DomainNotFound) and exc.probed is not None:
        return "not_found"
    return None


def _target_type(view: Any) -> str:
    model = getattr(getattr(view, "queryset", None), "model", None)
    if model is None:
        model = getattr(getattr(getattr(view, "serializer_class", None), "Meta", None), "model", None)
    return model._meta.label_lower if model is not None else ""


def _record_denial(reason: str, context: dict[str, Any], probed: Probed | None = None) -> None:
    request: Request | None = context.get("request")
    view = context.get("view")
    if request is None:
        return
    kwargs: dict[str, Any] = context.get("kwargs") or {}
    lookup = getattr(view, "lookup_url_kwarg", None) or getattr(view, "lookup_field", "pk")
    looked_up = str(kwargs.get(lookup, ""))
    match = getattr(request, "resolver_match", None)
    details = {
        "reason": reason,
        "method": request.method,
        "path": request.path,
        "view": match.view_name if match is not None else type(view).__name__,
    }
    # Only a plain id goes in the indexed target column; anything else the caller typed stays in the (neutralised)
    # details, where it cannot break a log line or an export.
    if looked_up and not _PLAIN_ID.match(looked_up):
        details["lookup"] = looked_up
        looked_up = ""
    target_type = _target_type(view) if lookup in kwargs else ""
    if probed is not None:  # the service knows what was looked for, and whose it is
        target_type, looked_up = probed.type, probed.id
    # A denial has no act to roll back and must outlive whatever the view did: its own transaction.
    with transaction.atomic():
        isn.audit.record(
            action="access.denied",
            actor=request.user,
            outcome="denied",
            target_type=target_type,
            target_id=looked_up,
            # Filed under the country whose object it was, so that its national auditors see who probed it.
            target_country=probed.country if probed is not None else "",
            details=details,
        )


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every error as problem details: ApplicationError by its status and code, DRF's by theirs; denials audited."""
    reason = _denial_reason(exc, context)
    if reason is not None:
        _record_denial(reason, context, exc.probed if isinstance(exc, DomainNotFound) else None)
    if isinstance(exc, ApplicationError):
        response = Response(
            problem(exc.status, code=exc.code, detail=exc.message, errors=exc.extra),
            status=exc.status,
            headers=exc.headers or None,
        )
    elif isinstance(exc, RequestDataTooBig):
        response = Response(problem(413, code="too_large", detail="The request body is too large."), status=413)
    else:
        response = drf_exception_handler(exc, context)
        if response is None:
            return None  # a server error: Django answers it, and ApiProblemMiddleware makes that problem details
        response.data = _problem_of(exc, response)
    # Whatever the caller accepts (and whatever the view renders otherwise, CSV say), errors are problem details.
    request: Request | None = context.get("request")
    if request is not None:
        ratelimit_for_error(request, context.get("view"))  # the RateLimit headers, also before the throttles ran
        from isn.renderers import ProblemJSONRenderer  # not at the top: see isn.renderers

        request.accepted_renderer = ProblemJSONRenderer()
        request.accepted_media_type = PROBLEM_CONTENT_TYPE
    return response


def _problem_of(exc: Exception, response: Response) -> dict[str, object]:
    status, data = response.status_code, response.data
    if isinstance(exc, exceptions.ValidationError):
        fields = data if isinstance(data, dict) else {"non_field_errors": data}
        return problem(status, code="invalid", detail=_INVALID_DETAIL, errors={"fields": fields})
    detail = data.get("detail", "") if isinstance(data, dict) else ""
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
    else:
        code = _CODE_BY_STATUS.get(status, "error")
    return problem(status, code=str(code), detail=str(detail or HTTPStatus(status).phrase))
