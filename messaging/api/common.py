"""What the API modules share: refs to agencies and offices, filter errors as bad input, the error shape, and
exactly-once writes (``idempotent``)."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from audit.services import record
from isn.errors import ApplicationError, Conflict, InvalidInput
from isn.schema import IDEMPOTENCY_KEY, ProblemSerializer
from messaging.core.idempotency import (
    Caller,
    IdempotencyKeyHeld,
    IdempotencyKeyReused,
    PendingClaim,
    idempotency_claim,
    idempotency_complete,
    idempotency_in_service,
    idempotency_key_checked,
    idempotency_release,
    request_fingerprint,
)
from messaging.models import IdempotencyKey


class ItemFilterBackend(DjangoFilterBackend):
    """django-filter, with bad filter values reported like every other bad input."""

    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: Any) -> QuerySet[Any]:
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            errors = {name: list(messages) for name, messages in filterset.errors.items()}
            raise InvalidInput("Invalid filter.", extra={"fields": errors})
        return filterset.qs


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise InvalidInput("The request is not valid; see errors.", extra={"fields": serializer.errors})
    return dict(serializer.validated_data)


@extend_schema_field({"type": "string", "format": "binary"})
class UploadField(serializers.FileField):
    """A file sent as a multipart part: binary in the schema, so generated clients can upload it."""


class AgencyRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    short_name = serializers.CharField()
    country = serializers.CharField(source="country_id")


class OfficeRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


# The one error body (problem details); isn.api.ApiSchema documents every error answer with it.
ERROR = ProblemSerializer


class CountSerializer(serializers.Serializer):
    count = serializers.IntegerField()


class AccessCursorPagination(CursorPagination):
    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500


class NewestFirstPagination(CursorPagination):
    """Newest first; a cursor, not page numbers, so the first page costs the same at a million rows. The one
    paginator of the inbox, notifications, consent requests and requests for information."""

    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


# --- exactly-once writes: the Idempotency-Key header ------------------------------------------------------------

IDEMPOTENCY_KEY_HEADER = OpenApiParameter(
    IDEMPOTENCY_KEY,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Makes the write exactly-once: a retry with the same key and the same body within 24 hours answers with the "
        "first outcome's status and resource (read afresh, as a read would answer now) and does nothing again; the "
        "same key with another body is refused (422, code idempotency_key_reused). A key belongs to its caller (the "
        "person, or the API key); 1 to 255 visible ASCII characters."
    ),
)

Replay = Callable[[Request, dict[str, Any], str], Any]


def _canonical_body(request: Request) -> bytes:
    """The parsed body, so that a retry differing only in key order or a multipart boundary is the same request."""
    data = request.data
    if hasattr(data, "lists"):  # a form or multipart body: each field's values, each file by its name and digest
        fields: dict[str, list[Any]] = {}
        for name, values in data.lists():
            fields[name] = [_file_digest(value) if hasattr(value, "chunks") else value for value in values]
        data = fields
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()


def _file_digest(upload: Any) -> list[str]:
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return [upload.name or "", digest.hexdigest()]


def idempotent(
    resource_type: str,
    *,
    replay: Replay,
    resource_id: Callable[[Any], str] = lambda data: str(data["id"]),
    natural_key: Callable[[Request], str | None] | None = None,
    claimed_in_service: bool = False,
) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """A POST or PATCH action made exactly-once by its ``Idempotency-Key`` header (or by ``natural_key``, a
    client-chosen id that is its own key: reusing it for another request is then a plain 409).

    The key is claimed in one transaction with the write (``messaging.core.idempotency``). A retry answers with the
    first status and ``replay(request, view kwargs, resource id)``: the resource re-read through its audited read,
    recorded as ``messaging.api.idempotent_replay``. A refused write leaves no claim, so a retry performs it.

    ``claimed_in_service``: the service claims the key with its outcome in its own write, on PostgreSQL (posting an
    item: ``messaging.core.idempotency``, "Claimed by the write itself"); when it finds the key held, its write rolls
    back and the usual path follows.
    """

    def decorate(handler: Callable[..., Response]) -> Callable[..., Response]:
        @functools.wraps(handler)
        def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
            natural = natural_key(request) if natural_key is not None else None
            key = natural or request.headers.get(IDEMPOTENCY_KEY)
            if key is None:
                return handler(view, request, *args, **kwargs)
            caller = Caller(user_id=request.user.pk, api_key_id=getattr(request.user, "isn_api_key_id", None))
            fingerprint = request_fingerprint(
                method=request.method or "", path=request.path, body=_canonical_body(request)
            )
            if claimed_in_service and natural is None and connection.vendor == "postgresql":
                pending = PendingClaim(caller, idempotency_key_checked(key), fingerprint, resource_type)
                try:
                    with idempotency_in_service(pending):
                        response = handler(view, request, *args, **kwargs)
                except IdempotencyKeyHeld:
                    pass  # the write rolled back whole: the usual path below replays, refuses or performs it
                else:
                    if not pending.claimed and response.status_code < 400:
                        raise RuntimeError("The service did not claim the Idempotency-Key it was handed.")
                    return response
            refusal: ApplicationError | None = None
            with transaction.atomic():
                try:
                    claim = idempotency_claim(caller=caller, key=idempotency_key_checked(key), request_hash=fingerprint)
                except IdempotencyKeyReused:
                    if natural is None:
                        raise
                    raise Conflict("This id is taken.") from None
                if not claim.earlier:
                    try:
                        response = handler(view, request, *args, **kwargs)
                    except ApplicationError as exc:
                        # The service's own transaction has rolled back its write already; what it recorded about
                        # the refusal after that (a decryption failure) is kept. Only the claim goes.
                        idempotency_release(claim)
                        refusal = exc
                    else:
                        if response.status_code < 400:
                            idempotency_complete(
                                claim,
                                status=response.status_code,
                                resource_type=resource_type,
                                resource_id=resource_id(response.data),
                            )
                        else:
                            idempotency_release(claim)
            if refusal is not None:
                raise refusal
            if not claim.earlier:
                return response
            return _replayed(request, kwargs, claim.record, replay)

        wrapper = extend_schema(parameters=[IDEMPOTENCY_KEY_HEADER])(wrapper)
        return wrapper

    return decorate


def _replayed(request: Request, kwargs: dict[str, Any], earlier: IdempotencyKey, replay: Replay) -> Response:
    with transaction.atomic():
        data = replay(request, kwargs, earlier.resource_id)
        record(
            action="messaging.api.idempotent_replay",
            actor=request.user,
            target_type=earlier.resource_type,
            target_id=earlier.resource_id,
            details={"status": earlier.response_status, "method": request.method},
        )
    response = Response(data, status=earlier.response_status)
    response["Idempotent-Replayed"] = "true"
    return response
