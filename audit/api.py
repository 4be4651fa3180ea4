"""The auditors' workspace API under /api/v1/audit/. Every search, view and export made here is itself audited."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agencies.permissions import ApiKeyScopes
from audit.exports import FIELDS, csv_cell, csv_lines, event_row
from audit.filters import AuditEventFilter
from audit.models import AuditCheckpoint, AuditEvent
from audit.permissions import IsAuditor
from audit.selectors import actor_timeline, checkpoints_visible_to, events_visible_to
from audit.workspace import (
    audit_checkpoints_view,
    audit_events_export,
    audit_events_search,
    audit_flags_view,
    audit_status_view,
    audit_timeline_view,
)
from isn.input import path_id

DEFAULT_EXPORT_MAX_ROWS = 100_000
# The schema lists a list view's filters by itself; the export and flags views declare theirs.
_FILTER_PARAMETERS = [
    OpenApiParameter(name, str, description=str(field.label)) for name, field in AuditEventFilter.base_filters.items()
]
_PERIOD_PARAMETERS = [parameter for parameter in _FILTER_PARAMETERS if parameter.name in ("since", "until")]


class EventPagination(CursorPagination):
    """Stable pages over a log that grows while it is read; ids only ever increase."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class CheckpointPagination(CursorPagination):
    ordering = "-last_event_id"
    page_size = 50


class AuditEventSerializer(serializers.ModelSerializer):
    sealed = serializers.SerializerMethodField()

    class Meta:
        model = AuditEvent
        fields = FIELDS
        read_only_fields = fields

    def get_sealed(self, event: AuditEvent) -> bool:
        return bool(event.hash)


class AuditCheckpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditCheckpoint
        fields = ["last_event_id", "chain_hash", "created_at", "public_key", "signature"]
        read_only_fields = fields


class AuditArchiveSummarySerializer(serializers.Serializer):
    first_event_id = serializers.IntegerField()
    last_event_id = serializers.IntegerField()
    event_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class ChainStatusSerializer(serializers.Serializer):
    last_event_id = serializers.IntegerField(allow_null=True)
    last_sealed_id = serializers.IntegerField(allow_null=True)
    unsealed_count = serializers.IntegerField()
    latest_checkpoint = AuditCheckpointSerializer(allow_null=True)
    latest_archive = AuditArchiveSummarySerializer(allow_null=True)


class FlagSerializer(serializers.Serializer):
    actor_user_id = serializers.IntegerField(allow_null=True)
    actor_api_key_id = serializers.IntegerField(allow_null=True)
    actor_label = serializers.CharField()
    count = serializers.IntegerField()
    window_start = serializers.DateTimeField()
    window_end = serializers.DateTimeField()
    window_minutes = serializers.IntegerField(allow_null=True, help_text="The sliding window; null for a whole period.")
    declared_daily_reads = serializers.IntegerField(
        allow_null=True,
        help_text="For an approved sync key: the approved daily volume its reads in a day were judged by; else null.",
    )


class FlagsSerializer(serializers.Serializer):
    bulk_reads = FlagSerializer(many=True)
    off_hours_reads = FlagSerializer(many=True)
    repeated_denials = FlagSerializer(many=True)
    many_countries = FlagSerializer(many=True)
    many_identifiers = FlagSerializer(many=True, help_text="More identifiers checked in the window than allowed.")
    hit_countries = FlagSerializer(many=True, help_text="Hits on items held in many countries within the window.")


class AuditEventListView(ListAPIView):
    """Search the events within your scope: a national auditor's country, or every country for the regional auditor."""

    permission_classes = [ApiKeyScopes, IsAuditor]
    serializer_class = AuditEventSerializer
    pagination_class = EventPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = AuditEventFilter

    def get_queryset(self) -> QuerySet[AuditEvent]:
        return events_visible_to(self.request.user)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        filterset = AuditEventFilter(request.query_params, queryset=AuditEvent.objects.none(), request=request)
        if not filterset.is_valid():
            raise serializers.ValidationError(filterset.errors)
        page = audit_events_search(actor=request.user, search=filterset, page=self.paginate_queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class ActorTimelineView(ListAPIView):
    """What one person did, newest first, within your scope."""

    permission_classes = [ApiKeyScopes, IsAuditor]
    serializer_class = AuditEventSerializer
    pagination_class = EventPagination
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[AuditEvent]:
        return actor_timeline(self.request.user, user_id=self.kwargs["user_id"])

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        user_id = path_id("user_id", self.kwargs["user_id"])
        page = audit_timeline_view(actor=request.user, user_id=user_id, page=self.paginate_queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class CheckpointListView(ListAPIView):
    """Signed checkpoints of the whole chain, newest first; keep one to prove later that the log still extends it."""

    permission_classes = [ApiKeyScopes, IsAuditor]
    serializer_class = AuditCheckpointSerializer
    pagination_class = CheckpointPagination
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[AuditCheckpoint]:
        return checkpoints_visible_to(self.request.user)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = audit_checkpoints_view(actor=request.user, page=self.paginate_queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class ChainStatusView(APIView):
    """How far the chain is sealed and the newest checkpoint. Whether it verifies is ``manage.py audit_verify``'s."""

    permission_classes = [ApiKeyScopes, IsAuditor]

    @extend_schema(responses={200: ChainStatusSerializer})
    def get(self, request: Request) -> Response:
        status = audit_status_view(actor=request.user)
        assert status is not None  # IsAuditor let the caller in
        checkpoint, archive = status.latest_checkpoint, status.latest_archive
        return Response(
            {
                "last_event_id": status.last_event_id,
                "last_sealed_id": status.last_sealed_id,
                "unsealed_count": status.unsealed_count,
                "latest_checkpoint": AuditCheckpointSerializer(checkpoint).data if checkpoint else None,
                "latest_archive": (
                    {
                        "first_event_id": archive.first_event_id,
                        "last_event_id": archive.last_event_id,
                        "event_count": archive.event_count,
                        "created_at": archive.created_at,
                    }
                    if archive
                    else None
                ),
            }
        )


class FlagsView(APIView):
    """Patterns to review in your scope: bulk reads, reads out of office hours, repeated denials, many countries."""

    permission_classes = [ApiKeyScopes, IsAuditor]

    @extend_schema(parameters=_PERIOD_PARAMETERS, responses={200: FlagsSerializer})
    def get(self, request: Request) -> Response:
        period = AuditEventFilter(request.query_params, queryset=AuditEvent.objects.none(), request=request)
        if not period.is_valid():
            raise serializers.ValidationError(period.errors)
        since, until = period.form.cleaned_data.get("since"), period.form.cleaned_data.get("until")
        found = audit_flags_view(actor=request.user, since=since, until=until)
        return Response(
            {
                kind: [
                    {
                        "actor_user_id": flag.actor_user_id,
                        "actor_api_key_id": flag.actor_api_key_id,
                        "actor_label": flag.actor_label,
                        "count": flag.count,
                        "window_start": flag.window_start,
                        "window_end": flag.window_end,
                        "window_minutes": flag.window_minutes,
                        "declared_daily_reads": flag.declared_daily_reads,
                    }
                    for flag in rows
                ]
                for kind, rows in found.items()
            }
        )


class CSVRenderer(BaseRenderer):
    """Lets ``?format=csv`` through content negotiation; errors render as key,value lines."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> str:
        if isinstance(data, dict):
            return "".join(f"{csv_cell(key)},{csv_cell(value)}\r\n" for key, value in data.items())
        return csv_cell(data)


def _json_lines(events: QuerySet[AuditEvent]) -> Iterator[str]:
    yield "["
    for index, event in enumerate(events.iterator(chunk_size=2000)):
        yield ("," if index else "") + json.dumps(event_row(event), ensure_ascii=False)
    yield "]"


class AuditEventExportView(GenericAPIView):
    """Every event matching the search filters (up to a configured maximum), newest first, as CSV or JSON."""

    permission_classes = [ApiKeyScopes, IsAuditor]
    renderer_classes = [JSONRenderer, CSVRenderer]
    filter_backends: list[Any] = []
    pagination_class = None

    def get_queryset(self) -> QuerySet[AuditEvent]:
        return events_visible_to(self.request.user)

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["csv", "json"]), *_FILTER_PARAMETERS],
        # JSON is a list of events; CSV is text: documented per content type, so clients can check either.
        responses={
            (200, "application/json"): AuditEventSerializer(many=True),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="One header line, then one per event."),
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        filterset = AuditEventFilter(request.query_params, queryset=AuditEvent.objects.none(), request=request)
        if not filterset.is_valid():
            raise serializers.ValidationError(filterset.errors)
        export_format = request.accepted_renderer.format
        limit = getattr(settings, "AUDIT_EXPORT_MAX_ROWS", DEFAULT_EXPORT_MAX_ROWS)
        events = audit_events_export(actor=request.user, search=filterset, export_format=export_format, limit=limit)
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        if export_format == "csv":
            response = StreamingHttpResponse(csv_lines(events.iterator(chunk_size=2000)), content_type="text/csv")
        else:
            response = StreamingHttpResponse(_json_lines(events), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="isn-audit-{stamp}.{export_format}"'
        return response
