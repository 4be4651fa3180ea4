"""Shared pieces of the REST API: pagination and the one translation of domain errors into responses."""

from __future__ import annotations

from typing import Any

from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from isn.errors import ApplicationError


class DefaultPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus ApplicationError -> its status with ``{"detail", "code"}``."""
    if isinstance(exc, ApplicationError):
        body: dict[str, object] = {"detail": exc.message, "code": exc.code}
        if exc.extra:
            body["errors"] = exc.extra
        return Response(body, status=exc.status)
    return drf_exception_handler(exc, context)
