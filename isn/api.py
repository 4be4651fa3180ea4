"""Shared pieces of the REST API: pagination and the one translation of domain errors into responses."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.http import Http404
from rest_framework import exceptions
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

import isn.audit
from isn.errors import ApplicationError
from isn.errors import NotFound as DomainNotFound
from isn.errors import PermissionDenied as DomainPermissionDenied

_PLAIN_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class DefaultPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


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
    return None


def _target_type(view: Any) -> str:
    model = getattr(getattr(view, "queryset", None), "model", None)
    if model is None:
        model = getattr(getattr(getattr(view, "serializer_class", None), "Meta", None), "model", None)
    return model._meta.label_lower if model is not None else ""


def _record_denial(reason: str, context: dict[str, Any]) -> None:
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
    # A denial has no act to roll back and must outlive whatever the view did: its own transaction.
    with transaction.atomic():
        isn.audit.record(
            action="access.denied",
            actor=request.user,
            outcome="denied",
            target_type=_target_type(view) if lookup in kwargs else "",
            target_id=looked_up,
            details=details,
        )


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus ApplicationError -> its status with ``{"detail", "code"}``; denials are audited."""
    reason = _denial_reason(exc, context)
    if reason is not None:
        _record_denial(reason, context)
    if isinstance(exc, ApplicationError):
        body: dict[str, object] = {"detail": exc.message, "code": exc.code}
        if exc.extra:
            body["errors"] = exc.extra
        return Response(body, status=exc.status)
    response = drf_exception_handler(exc, context)
    # One error shape for the whole API, as the schema documents it: DRF's own refusals (401, 403, 404, 405, 429)
    # carry a "code" too.
    if (
        response is not None
        and isinstance(exc, exceptions.APIException)
        and isinstance(response.data, dict)
        and "detail" in response.data
        and "code" not in response.data
    ):
        codes = exc.get_codes()
        response.data["code"] = codes if isinstance(codes, str) else exc.default_code
    return response
