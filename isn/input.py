"""What the API takes in, judged before any app sees it: JSON bodies nested within reason, ids within the database's
range, moments in UTC with room for a day's arithmetic either side, and no field an operation does not take.

Every refusal here is bad input (400, problem details naming the field where there is one): never a server error
from a recursion, an integer the database cannot hold, or a date past the calendar's end.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import MaxValueValidator
from django_filters.fields import IsoDateTimeField
from rest_framework import exceptions, parsers, serializers
from rest_framework.settings import api_settings

# PostgreSQL's bigint: every id in ISN is one (DEFAULT_AUTO_FIELD is BigAutoField).
DB_ID_MAX = 2**63 - 1
# Deeper than any body the API describes (two levels at most), shallow enough for every recursive step after parsing.
MAX_JSON_DEPTH = 64
# Moments are compared and shifted by days (a lookback, a whole day "before"): keep a year of the calendar either side.
_EARLIEST = datetime.min.replace(tzinfo=UTC) + timedelta(days=366)
_LATEST = datetime.max.replace(tzinfo=UTC) - timedelta(days=366)
UNKNOWN_FIELD = "This operation does not take this field."


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser that refuses, as a parse error, a body nested deeper than ``MAX_JSON_DEPTH``, including one
    too deep for Python's parser itself (which would otherwise end in a RecursionError)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        deep = exceptions.ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.")
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise deep from None
        if not nested_within(data, MAX_JSON_DEPTH):
            raise deep
        return data


def nested_within(value: Any, depth: int) -> bool:
    """Whether no object or array in ``value`` sits deeper than ``depth`` (a flat object is depth 1); without
    recursion, so a deep value cannot exhaust the stack while it is being measured."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, level = pending.pop()
        if isinstance(node, Mapping):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if level > depth:
            return False
        pending.extend((child, level + 1) for child in children)
    return True


# --- fields a request does not take ------------------------------------------------------------------------------


class RefuseUnknownFields:
    """For input serializers: a field the serializer does not take (unknown, or read-only) is bad input named like any
    other, reported together with the other fields' problems, instead of being silently dropped."""

    fields: Any

    def to_internal_value(self, data: Any) -> Any:
        unknown: list[str] = []
        if isinstance(data, Mapping):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(str(key) for key in data if key not in writable)
        refusal = {name: [UNKNOWN_FIELD] for name in unknown}
        try:
            value = super().to_internal_value(data)  # type: ignore[misc]
        except serializers.ValidationError as exc:
            if not refusal:
                raise
            detail = exc.detail
            errors = dict(detail) if isinstance(detail, Mapping) else {api_settings.NON_FIELD_ERRORS_KEY: detail}
            raise serializers.ValidationError({**errors, **refusal}) from None
        if refusal:
            raise serializers.ValidationError(refusal)
        return value


def _has_body(request: Any) -> bool:
    """Whether the request carries anything: a multipart body without a single part (what some clients send for "no
    body") carries nothing; any other bytes are judged by the API's parsers (JSON, or 415 for another type)."""
    raw = request._request.body
    if not raw.strip():
        return False
    return not (request.content_type.startswith("multipart/") and b"content-disposition" not in raw.lower())


def takes_no_body(view: Callable[..., Any]) -> Callable[..., Any]:
    """For an action that takes no body (approve, cancel, withdraw, revoke, ...): a body with anything in it is bad
    input naming what was sent, judged before the action runs (so before any object is looked up: a hidden object
    and an absent one still answer alike), instead of being ignored while the client believes it counted."""

    @functools.wraps(view)
    def checked(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        data = request.data if _has_body(request) else None
        if data:
            names = (
                sorted(str(key) for key in data) if isinstance(data, Mapping) else [api_settings.NON_FIELD_ERRORS_KEY]
            )
            raise serializers.ValidationError({name: [UNKNOWN_FIELD] for name in names})
        return view(self, request, *args, **kwargs)

    return checked


# --- ids within the database's range -----------------------------------------------------------------------------


def id_field(**kwargs: Any) -> serializers.IntegerField:
    """A serializer field for an id: a whole number from 1 to the database's largest."""
    return serializers.IntegerField(min_value=1, max_value=DB_ID_MAX, **kwargs)


class IdFilter(django_filters.NumberFilter):
    """A filter on an id: a whole number from 1 to the database's largest (Django's own messages otherwise)."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", DB_ID_MAX)
        super().__init__(*args, **kwargs)


def within_id_range(value: int) -> None:
    """Django's validator message for a number past the database's range."""
    MaxValueValidator(DB_ID_MAX)(value)


def path_id(name: str, value: int) -> int:
    """An id taken from the path (``<int:...>``): past the database's range it is bad input naming ``name``."""
    try:
        within_id_range(value)
    except DjangoValidationError as exc:
        raise serializers.ValidationError({name: list(exc.messages)}) from None
    return value


# --- moments -----------------------------------------------------------------------------------------------------


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, in UTC: any offset Python reads is taken; one whose moment has no UTC date, or is within a
    year of the calendar's ends (where a day's arithmetic would overflow), is bad input."""

    def to_python(self, value: object) -> datetime | None:
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:
            raise DjangoValidationError("Out of range.", code="invalid") from None
        if not _EARLIEST <= moment <= _LATEST:
            raise DjangoValidationError("Out of range.", code="invalid")
        return moment


class MomentFilter(django_filters.IsoDateTimeFilter):
    """A time filter read by ``UtcDateTimeField``."""

    field_class = UtcDateTimeField
