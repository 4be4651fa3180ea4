"""The items API, /api/v1/items/: thin views over messaging's selectors and services.

An item the caller may not see answers 404 with the same body as one that does not exist or an id that is not an
id. Errors are ``{"detail", "code"}`` (and ``errors`` per field for bad input), from ``isn.api.exception_handler``.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpResponse
from django.utils.http import content_disposition_header
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from agencies.models import Agency, CountryCode
from agencies.permissions import ApiKeyScopes, IsAgencyAdmin, IsNetworkMember
from isn.errors import InvalidInput, PermissionDenied
from messaging import forwarding, notifications, selectors, services, subscriptions, webhooks
from messaging.models import (
    ACKNOWLEDGEMENT_TEXT_MAX_LENGTH,
    BODY_MAX_LENGTH,
    BORDER_CROSSING_MAX_LENGTH,
    FORWARD_REASON_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    AcknowledgementNote,
    AgencyWebhook,
    Category,
    HandlingCode,
    InfoCredibility,
    Item,
    ItemStatus,
    Notification,
    NotificationKind,
    Priority,
    SourceReliability,
    Subscription,
)

# --- pagination and filters ---------------------------------------------------------------------------------------


class ItemCursorPagination(CursorPagination):
    """Newest first; a cursor, not page numbers, so the first page costs the same at a million items."""

    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class AccessCursorPagination(CursorPagination):
    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500


class ItemFilter(django_filters.FilterSet):
    priority = django_filters.ChoiceFilter(choices=Priority.choices)
    category = django_filters.ChoiceFilter(choices=Category.choices)
    originator_country = django_filters.ChoiceFilter(choices=CountryCode.choices)
    status = django_filters.ChoiceFilter(choices=ItemStatus.choices)
    created = django_filters.DateFromToRangeFilter(
        field_name="created_at", label="Created on or after (created_after) / on or before (created_before)"
    )
    unread = django_filters.BooleanFilter(method="filter_unread", label="Only items you have (not) opened")

    class Meta:
        model = Item
        fields = ["priority", "category", "originator_country", "status", "created", "unread"]

    def filter_unread(self, queryset: QuerySet[Item], name: str, value: bool) -> QuerySet[Item]:
        unread = selectors.unread_by(self.request.user)
        return queryset.filter(unread) if value else queryset.exclude(unread)


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


# --- serializers: input --------------------------------------------------------------------------------------------


class ItemCreateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=TITLE_MAX_LENGTH)
    body = serializers.CharField(max_length=BODY_MAX_LENGTH, trim_whitespace=False)
    language = serializers.ChoiceField(choices=[], help_text="The language the text is written in.")
    category = serializers.ChoiceField(choices=Category.choices)
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.ROUTINE)
    source_reliability = serializers.ChoiceField(choices=SourceReliability.choices)
    info_credibility = serializers.ChoiceField(choices=InfoCredibility.choices)
    handling_code = serializers.ChoiceField(choices=HandlingCode.choices)
    border_crossing = serializers.CharField(
        max_length=BORDER_CROSSING_MAX_LENGTH, required=False, allow_blank=True, default=""
    )
    review_date = serializers.DateField(help_text="After this date the item expires and its keys are shredded.")
    countries = serializers.ListField(
        child=serializers.CharField(max_length=8),
        allow_empty=False,
        max_length=len(CountryCode.values),
        help_text="Country codes to release to; must include your own country.",
    )
    agencies = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        default=list,
        max_length=200,
        help_text="Agency ids: within each of their countries, only these agencies see the item.",
    )
    named_users = serializers.ListField(
        child=serializers.CharField(max_length=150),
        required=False,
        default=list,
        max_length=200,
        help_text="Usernames of people (in released countries) who see it even outside the named agencies.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Read when a serializer is made, not when this module is imported.
        self.fields["language"].choices = settings.LANGUAGES


class ItemChangeSerializer(serializers.Serializer):
    """Every field optional; the release lists, when given, are complete and may only narrow."""

    countries = serializers.ListField(
        child=serializers.CharField(max_length=8), required=False, max_length=len(CountryCode.values)
    )
    agencies = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, max_length=200)
    named_users = serializers.ListField(child=serializers.CharField(max_length=150), required=False, max_length=200)
    review_date = serializers.DateField(required=False)
    title = serializers.CharField(max_length=TITLE_MAX_LENGTH, required=False)
    body = serializers.CharField(max_length=BODY_MAX_LENGTH, trim_whitespace=False, required=False)


def _validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise InvalidInput("The request is not valid; see errors.", extra={"fields": serializer.errors})
    return dict(serializer.validated_data)


# --- serializers: output -------------------------------------------------------------------------------------------


class AgencyRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    short_name = serializers.CharField()
    country = serializers.CharField(source="country_id")


class OfficeRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class _ItemMetadataSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="item.id")
    originator_agency = AgencyRefSerializer(source="item.originator_agency")
    originator_country = serializers.CharField(source="item.originator_country")
    language = serializers.CharField(source="item.language")
    category = serializers.ChoiceField(choices=Category.choices, source="item.category")
    priority = serializers.ChoiceField(choices=Priority.choices, source="item.priority")
    source_reliability = serializers.ChoiceField(choices=SourceReliability.choices, source="item.source_reliability")
    info_credibility = serializers.ChoiceField(choices=InfoCredibility.choices, source="item.info_credibility")
    handling_code = serializers.ChoiceField(choices=HandlingCode.choices, source="item.handling_code")
    border_crossing = serializers.CharField(source="item.border_crossing")
    review_date = serializers.DateField(source="item.review_date")
    status = serializers.ChoiceField(choices=ItemStatus.choices, source="item.status")
    content_version = serializers.IntegerField(source="item.content_version")
    created_at = serializers.DateTimeField(source="item.created_at")
    updated_at = serializers.DateTimeField(source="item.updated_at")
    read = serializers.BooleanField(source="is_read")


class ItemSummarySerializer(_ItemMetadataSerializer):
    title = serializers.CharField(allow_null=True, help_text="Null when it could not be opened (recorded).")


class AttachmentSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    filename = serializers.CharField()
    content_type = serializers.CharField(help_text="Detected from the content, not from the name.")
    size = serializers.IntegerField()
    sha256 = serializers.CharField(help_text="SHA-256 of the plaintext, hex.")
    created_at = serializers.DateTimeField()


class ReleaseSerializer(serializers.Serializer):
    countries = serializers.ListField(child=serializers.CharField())
    agencies = serializers.ListField(
        child=inline_serializer(
            "ReleasedAgency",
            {
                "id": serializers.IntegerField(),
                "short_name": serializers.CharField(),
                "country_id": serializers.CharField(),
            },
        )
    )
    named_users = serializers.ListField(child=serializers.CharField())


class ItemDetailSerializer(_ItemMetadataSerializer):
    originator_office = OfficeRefSerializer(source="item.originator_office", allow_null=True)
    title = serializers.CharField()
    body = serializers.CharField()
    attachments = AttachmentSerializer(many=True)
    release = ReleaseSerializer(
        allow_null=True, help_text="Who the item is released to: shown to the originating agency only."
    )


class ItemChangeResultSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=ItemStatus.choices)
    content_version = serializers.IntegerField()
    review_date = serializers.DateField()


class AccessEventSerializer(serializers.Serializer):
    action = serializers.CharField()
    at = serializers.DateTimeField(source="created_at")
    actor = serializers.CharField(source="actor_label")
    agency = serializers.SerializerMethodField()
    country = serializers.CharField(source="actor_country")
    attachment_id = serializers.SerializerMethodField()

    def get_agency(self, event: Any) -> str | None:
        agency = self.context["agencies"].get(event.actor_agency_id)
        return agency.short_name if agency is not None else None

    def get_attachment_id(self, event: Any) -> str | None:
        return (event.details or {}).get("attachment_id")


class CountSerializer(serializers.Serializer):
    count = serializers.IntegerField()


class AcknowledgeSerializer(serializers.Serializer):
    note = serializers.ChoiceField(choices=AcknowledgementNote.choices, required=False, allow_blank=True, default="")
    note_text = serializers.CharField(
        max_length=ACKNOWLEDGEMENT_TEXT_MAX_LENGTH,
        required=False,
        allow_blank=True,
        default="",
        help_text="Free text for the originator; stored sealed like the item.",
    )


class AcknowledgementSerializer(serializers.Serializer):
    item = serializers.UUIDField(source="item_id")
    agency = serializers.IntegerField(source="agency_id")
    acknowledged_at = serializers.DateTimeField(source="created_at")
    note = serializers.CharField()


class AgencyDeliverySerializer(serializers.Serializer):
    agency = AgencyRefSerializer()
    routed_at = serializers.DateTimeField()
    notified_at = serializers.DateTimeField(allow_null=True)
    read_at = serializers.DateTimeField(allow_null=True)
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    acknowledged_by = serializers.CharField(allow_null=True)
    note = serializers.CharField()
    note_text = serializers.CharField(allow_null=True)
    escalation_level = serializers.IntegerField(help_text="0: none; 1: supervisors and duty desk; 2: national.")
    revoked = serializers.BooleanField(help_text="True when a narrowing or withdrawal took the item away again.")


class ForwardCreateSerializer(serializers.Serializer):
    to_agency = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, help_text="An active agency of your own country."
    )
    to_office = serializers.IntegerField(
        min_value=1,
        max_value=2**63 - 1,
        required=False,
        allow_null=True,
        default=None,
        help_text="One of that agency's offices.",
    )
    reason = serializers.CharField(
        max_length=FORWARD_REASON_MAX_LENGTH,
        trim_whitespace=False,
        help_text="Why the recipient needs it; sealed like the item, shown to the originator and your agency only.",
    )


class ForwardSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="forward.id")
    from_agency = AgencyRefSerializer(source="forward.from_agency")
    from_user = serializers.CharField(source="forward.from_user.username")
    to_agency = AgencyRefSerializer(source="forward.to_agency")
    to_office = OfficeRefSerializer(source="forward.to_office", allow_null=True)
    created_at = serializers.DateTimeField(source="forward.created_at")
    active = serializers.BooleanField(help_text="False once a narrowing or withdrawal cut the forward off.")
    revoked_at = serializers.DateTimeField(source="forward.revoked_at", allow_null=True)
    reason = serializers.CharField(allow_null=True, help_text="Null when your country no longer holds the item.")


_ITEM_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The item's id.")
_ATTACHMENT_ID = OpenApiParameter("attachment_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
_ERROR = inline_serializer("Error", {"detail": serializers.CharField(), "code": serializers.CharField()})
_NOT_FOUND = OpenApiResponse(_ERROR, description="No such item, or not one you may see (indistinguishable).")


# --- the viewset ---------------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="Your inbox: items you may see, newest first (metadata and title; every id listed is recorded)",
        responses=ItemSummarySerializer(many=True),
    ),
    create=extend_schema(
        summary="Post an item",
        request=ItemCreateSerializer,
        responses={201: ItemDetailSerializer, 400: _ERROR, 403: _ERROR},
    ),
    retrieve=extend_schema(
        summary="Open an item (recorded)",
        parameters=[_ITEM_ID],
        responses={200: ItemDetailSerializer, 404: _NOT_FOUND, 409: _ERROR},
    ),
    partial_update=extend_schema(
        summary="Originator: narrow the release, move the review date, or correct the text",
        parameters=[_ITEM_ID],
        request=ItemChangeSerializer,
        responses={200: ItemChangeResultSerializer, 400: _ERROR, 403: _ERROR, 404: _NOT_FOUND, 409: _ERROR},
    ),
)
class ItemViewSet(viewsets.GenericViewSet):
    """Intelligence items, scoped to the caller by ``messaging.selectors.items_visible_to``."""

    queryset = Item.objects.none()  # names the model for the schema and denial records; see get_queryset
    serializer_class = ItemDetailSerializer
    pagination_class = ItemCursorPagination
    filter_backends = [ItemFilterBackend]
    filterset_class = ItemFilter
    # Any segment reaches the view, so a malformed id gets the same JSON 404 as an unknown one.
    lookup_value_regex = "[^/]+"
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[Item]:
        return selectors.items_for_listing(self.request.user)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        summaries = services.item_list(actor=request.user, items=page or [])
        return self.get_paginated_response(ItemSummarySerializer(summaries, many=True).data)

    def create(self, request: Request) -> Response:
        if selectors.content_membership(request.user) is None:  # refused before the body is judged
            raise PermissionDenied("Only officers of a member agency may post items.")
        content = services.item_create(actor=request.user, **_validated(ItemCreateSerializer, request.data))
        return Response(ItemDetailSerializer(content).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, pk: str) -> Response:
        content = services.item_read(actor=request.user, item_id=pk)
        return Response(ItemDetailSerializer(content).data)

    def partial_update(self, request: Request, pk: str) -> Response:
        item = services.item_change(actor=request.user, item_id=pk, **_validated(ItemChangeSerializer, request.data))
        return Response(ItemChangeResultSerializer(item).data)

    @extend_schema(
        summary="Count the items you may see (same filters as the list)",
        responses=CountSerializer,
        filters=True,
    )
    @action(detail=False, methods=["get"], pagination_class=None)
    def count(self, request: Request) -> Response:
        items = self.filter_queryset(selectors.items_visible_to(request.user))
        filters = {key: request.query_params[key] for key in ItemFilter.base_filters if key in request.query_params}
        return Response({"count": services.item_count(actor=request.user, items=items, filters=filters)})

    @extend_schema(
        summary="Originator: withdraw the item (recipients lose it at once; their keys are shredded)",
        parameters=[_ITEM_ID],
        request=None,
        responses={200: ItemChangeResultSerializer, 403: _ERROR, 404: _NOT_FOUND, 409: _ERROR},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def withdraw(self, request: Request, pk: str) -> Response:
        item = services.item_withdraw(actor=request.user, item_id=pk)
        return Response(ItemChangeResultSerializer(item).data)

    @extend_schema(
        summary="Originator: attach a file (multipart field 'file'; its type is judged from its content)",
        parameters=[_ITEM_ID],
        request={
            "multipart/form-data": inline_serializer("AttachmentUpload", {"file": serializers.FileField()}),
        },
        responses={201: AttachmentSerializer, 400: _ERROR, 403: _ERROR, 404: _NOT_FOUND, 409: _ERROR},
    )
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser], filter_backends=[])
    def attachments(self, request: Request, pk: str) -> Response:
        limit = settings.ISN_ATTACHMENT_MAX_BYTES
        # Refused before the body is read: a bigger request would not fit the in-memory upload handler anyway.
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if not declared.isdigit() or int(declared) > settings.FILE_UPLOAD_MAX_MEMORY_SIZE:
            raise InvalidInput(f"The attachment is larger than the limit of {limit} bytes.")
        upload = request.FILES.get("file")
        if upload is None:
            raise InvalidInput("Send the file as the multipart form field 'file'.")
        summary = services.attachment_add(actor=request.user, item_id=pk, filename=upload.name, content=upload.read())
        return Response(AttachmentSerializer(summary).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Download an attachment (recorded)",
        parameters=[_ITEM_ID, _ATTACHMENT_ID],
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The file, with the content type detected at upload."
            ),
            404: _NOT_FOUND,
            409: _ERROR,
        },
    )
    @action(
        detail=True,
        methods=["get"],
        url_path=r"attachments/(?P<attachment_id>[^/]+)",
        url_name="attachment-download",
        filter_backends=[],
    )
    def download(self, request: Request, pk: str, attachment_id: str) -> HttpResponse:
        file = services.attachment_download(actor=request.user, item_id=pk, attachment_id=attachment_id)
        response = HttpResponse(file.content, content_type=file.content_type)
        response["Content-Disposition"] = content_disposition_header(True, file.filename)
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "no-store"
        response["Content-Length"] = str(len(file.content))
        return response

    @extend_schema(
        summary="Acknowledge the item for your agency (once per agency; a second time answers 409)",
        parameters=[_ITEM_ID],
        request=AcknowledgeSerializer,
        responses={201: AcknowledgementSerializer, 400: _ERROR, 403: _ERROR, 404: _NOT_FOUND, 409: _ERROR},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def acknowledge(self, request: Request, pk: str) -> Response:
        acknowledgement = services.item_acknowledge(
            actor=request.user, item_id=pk, **_validated(AcknowledgeSerializer, request.data)
        )
        return Response(AcknowledgementSerializer(acknowledgement).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Originator: per recipient agency, when the item was routed, notified, read and acknowledged",
        parameters=[_ITEM_ID],
        responses={200: AgencyDeliverySerializer(many=True), 403: _ERROR, 404: _NOT_FOUND},
        filters=False,
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def deliveries(self, request: Request, pk: str) -> Response:
        states = services.item_deliveries_view(actor=request.user, item_id=pk)
        return Response(AgencyDeliverySerializer(states, many=True).data)

    @extend_schema(
        summary="Originator: who opened the item or downloaded its attachments, and when (newest first)",
        parameters=[_ITEM_ID],
        responses={200: AccessEventSerializer(many=True), 403: _ERROR, 404: _NOT_FOUND},
        filters=False,
    )
    @action(detail=True, methods=["get"], pagination_class=AccessCursorPagination, filter_backends=[])
    def access(self, request: Request, pk: str) -> Response:
        page = self.paginate_queryset(services.item_access_view(actor=request.user, item_id=pk)) or []
        agencies = Agency.objects.in_bulk({event.actor_agency_id for event in page if event.actor_agency_id})
        return self.get_paginated_response(AccessEventSerializer(page, many=True, context={"agencies": agencies}).data)

    @extend_schema(
        summary="Forward the item inside your own country, as its handling code allows (never TLP:RED; "
        "TLP:AMBER+STRICT only to offices of your own agency); another country needs a consent request",
        parameters=[_ITEM_ID],
        request=ForwardCreateSerializer,
        responses={201: ForwardSerializer, 400: _ERROR, 403: _ERROR, 404: _NOT_FOUND, 409: _ERROR},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def forward(self, request: Request, pk: str) -> Response:
        selectors.item_get(request.user, item_id=pk)  # a hidden item is refused before the body is judged
        data = _validated(ForwardCreateSerializer, request.data)
        view = forwarding.item_forward(actor=request.user, item_id=pk, **data)
        return Response(ForwardSerializer(view).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="The item's forwards with their reasons: all of them for the originator, your agency's own for a "
        "forwarding agency (recorded)",
        parameters=[_ITEM_ID],
        responses={200: ForwardSerializer(many=True), 404: _NOT_FOUND, 409: _ERROR},
        filters=False,
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def forwards(self, request: Request, pk: str) -> Response:
        views = forwarding.item_forwards_view(actor=request.user, item_id=pk)
        return Response(ForwardSerializer(views, many=True).data)


# --- notifications and webhooks ------------------------------------------------------------------------------------


class NotificationCursorPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class NotificationSerializer(serializers.Serializer):
    """What a notification may say: what it is about (an item, a consent request about an item, or a request for
    information), its priority, the item's category and originating country, and a link; never any content."""

    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=NotificationKind.choices)
    item = serializers.UUIDField(source="item_id", allow_null=True)
    consent = serializers.UUIDField(source="consent_id", allow_null=True)
    rfi = serializers.UUIDField(source="rfi_id", allow_null=True)
    priority = serializers.SerializerMethodField()
    category = serializers.SerializerMethodField()
    originator_country = serializers.SerializerMethodField()
    link = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    read_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(serializers.ChoiceField(choices=Priority.choices))
    def get_priority(self, notification: Notification) -> str:
        return notification.rfi.priority if notification.rfi_id else notification.item.priority

    @extend_schema_field(serializers.ChoiceField(choices=Category.choices, allow_null=True))
    def get_category(self, notification: Notification) -> str | None:
        return None if notification.rfi_id else notification.item.category

    @extend_schema_field(serializers.CharField(help_text="The item's originating country, or the asking country."))
    def get_originator_country(self, notification: Notification) -> str:
        if notification.rfi_id:
            return notification.rfi.requester_country
        return notification.item.originator_country

    def get_link(self, notification: Notification) -> str:
        return notifications.portal_path(notification)


class NotificationFilter(django_filters.FilterSet):
    unread = django_filters.BooleanFilter(field_name="read_at", lookup_expr="isnull", label="Only unread (true)")
    kind = django_filters.ChoiceFilter(choices=NotificationKind.choices)

    class Meta:
        model = Notification
        fields = ["unread", "kind"]


@extend_schema_view(
    list=extend_schema(summary="Your notifications, newest first (recorded)"),
)
class NotificationViewSet(viewsets.GenericViewSet):
    """The caller's own notifications: nobody sees anyone else's."""

    queryset = Notification.objects.none()
    serializer_class = NotificationSerializer
    pagination_class = NotificationCursorPagination
    filter_backends = [ItemFilterBackend]
    filterset_class = NotificationFilter
    lookup_value_regex = "[^/]+"

    def get_queryset(self) -> QuerySet[Notification]:
        return notifications.notifications_for(self.request.user)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset())) or []
        notifications.notification_list(actor=request.user, notifications=page)
        return self.get_paginated_response(NotificationSerializer(page, many=True).data)

    @extend_schema(summary="Mark one of your notifications read", request=None, responses={200: NotificationSerializer})
    @action(detail=True, methods=["post"], filter_backends=[])
    def read(self, request: Request, pk: str) -> Response:
        notification = notifications.notification_mark_read(actor=request.user, notification_id=pk)
        return Response(NotificationSerializer(notification).data)

    @extend_schema(summary="How many of your notifications are unread", responses=CountSerializer, filters=False)
    @action(detail=False, methods=["get"], url_path="unread-count", pagination_class=None, filter_backends=[])
    def unread_count(self, request: Request) -> Response:
        return Response({"count": notifications.notifications_unread_count(request.user)})


class DeadLetterSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    item = serializers.UUIDField(source="item_id")
    event = serializers.CharField()
    attempts = serializers.IntegerField()
    last_error = serializers.CharField(help_text="HTTP status or error class.")
    created_at = serializers.DateTimeField()


class DeadLetterRetriedSerializer(serializers.Serializer):
    delivery = serializers.CharField(
        source="pk", help_text="The X-ISN-Delivery of the queued call (the original one while ISN still keeps it)."
    )
    event = serializers.CharField(source="payload.event")


class WebhookConfigureSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=500)
    is_active = serializers.BooleanField(default=True)


class WebhookSerializer(serializers.Serializer):
    """An agency's webhook as its admins see it: never the signing secret."""

    id = serializers.IntegerField()
    url = serializers.URLField()
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class WebhookConfiguredSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()
    is_active = serializers.BooleanField()
    secret = serializers.CharField(help_text="The HMAC-SHA256 signing secret: shown this once, keep it safe.")


_WEBHOOK_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The webhook's id.")
_DEAD_LETTER_ID = OpenApiParameter(
    "letter_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The failed call's id (from dead-letters)."
)
_WEBHOOK_NOT_FOUND = OpenApiResponse(_ERROR, description="Not your agency's webhook, or none (indistinguishable).")


def _configured(webhook: Any, secret: str) -> dict[str, Any]:
    return {"id": webhook.pk, "url": webhook.url, "is_active": webhook.is_active, "secret": secret}


class WebhookViewSet(viewsets.GenericViewSet):
    """An agency's webhook: its admins set, see, rotate and remove it, and see and retry the calls that failed."""

    queryset = AgencyWebhook.objects.none()
    serializer_class = WebhookSerializer
    # Refused before the body is read: a caller who may not configure webhooks learns nothing from validation.
    permission_classes = [ApiKeyScopes, IsNetworkMember, IsAgencyAdmin]
    pagination_class = None
    filter_backends: list[Any] = []
    lookup_value_regex = "[^/]+"

    @extend_schema(
        summary="Agency admin: your agency's webhook (none or one; URL and state, never the secret; recorded)",
        responses={200: WebhookSerializer(many=True), 403: _ERROR},
    )
    def list(self, request: Request) -> Response:
        return Response(WebhookSerializer(webhooks.webhook_view(actor=request.user), many=True).data)

    @extend_schema(
        summary="Agency admin: set your agency's webhook URL (a new signing secret is returned once)",
        request=WebhookConfigureSerializer,
        responses={200: WebhookConfiguredSerializer, 400: _ERROR, 403: _ERROR},
    )
    def create(self, request: Request) -> Response:
        webhook, secret = webhooks.webhook_configure(
            actor=request.user, **_validated(WebhookConfigureSerializer, request.data)
        )
        return Response(_configured(webhook, secret))

    @extend_schema(
        summary="Agency admin: your agency's webhook (recorded)",
        parameters=[_WEBHOOK_ID],
        responses={200: WebhookSerializer, 403: _ERROR, 404: _WEBHOOK_NOT_FOUND},
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        [webhook] = webhooks.webhook_view(actor=request.user, webhook_id=pk)
        return Response(WebhookSerializer(webhook).data)

    @extend_schema(
        summary="Agency admin: remove your agency's webhook (calls still queued are dropped)",
        parameters=[_WEBHOOK_ID],
        responses={204: None, 403: _ERROR, 404: _WEBHOOK_NOT_FOUND},
    )
    def destroy(self, request: Request, pk: str) -> Response:
        webhooks.webhook_delete(actor=request.user, webhook_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Agency admin: a new signing secret, returned once; the old one stops signing at once",
        parameters=[_WEBHOOK_ID],
        request=None,
        responses={200: WebhookConfiguredSerializer, 403: _ERROR, 404: _WEBHOOK_NOT_FOUND},
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str) -> Response:
        webhook, secret = webhooks.webhook_rotate_secret(actor=request.user, webhook_id=pk)
        return Response(_configured(webhook, secret))

    @extend_schema(
        summary="Agency admin: webhook calls of your agency that failed every try (newest first)",
        responses={200: DeadLetterSerializer(many=True), 403: _ERROR},
    )
    @action(detail=False, methods=["get"], url_path="dead-letters", pagination_class=AccessCursorPagination)
    def dead_letters(self, request: Request) -> Response:
        page = self.paginate_queryset(webhooks.webhook_dead_letters_for(request.user)) or []
        webhooks.webhook_dead_letter_list(actor=request.user, dead_letters=page)
        return self.get_paginated_response(DeadLetterSerializer(page, many=True).data)

    @extend_schema(
        summary="Agency admin: queue a failed call again (while the webhook is active and the item still yours)",
        parameters=[_DEAD_LETTER_ID],
        request=None,
        responses={
            202: DeadLetterRetriedSerializer,
            403: _ERROR,
            404: OpenApiResponse(_ERROR, description="Not a failed call of your agency."),
            409: _ERROR,
        },
    )
    @action(
        detail=False,
        methods=["post"],
        url_path=r"dead-letters/(?P<letter_id>[^/]+)/retry",
        url_name="dead-letter-retry",
    )
    def dead_letter_retry(self, request: Request, letter_id: str) -> Response:
        message = webhooks.webhook_dead_letter_retry(actor=request.user, dead_letter_id=letter_id)
        return Response(DeadLetterRetriedSerializer(message).data, status=status.HTTP_202_ACCEPTED)


# --- subscriptions ---------------------------------------------------------------------------------------------------


class _SubscriptionCriteriaSerializer(serializers.Serializer):
    """Blank or left out: any. At least one criterion must be set."""

    category = serializers.ChoiceField(choices=Category.choices, required=False, allow_blank=True)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False, allow_blank=True)
    originator_country = serializers.ChoiceField(choices=CountryCode.choices, required=False, allow_blank=True)
    border_crossing = serializers.CharField(
        max_length=BORDER_CROSSING_MAX_LENGTH,
        required=False,
        allow_blank=True,
        help_text="The item's border crossing (case-insensitive, one line).",
    )
    province = serializers.CharField(
        max_length=100,
        required=False,
        allow_blank=True,
        help_text="The province of the posting office (case-insensitive, one line).",
    )
    is_active = serializers.BooleanField(required=False)


class SubscriptionCreateSerializer(_SubscriptionCriteriaSerializer):
    office = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, help_text="Agency admins: an office of your agency."
    )
    user = serializers.CharField(
        max_length=150,
        required=False,
        allow_blank=True,
        help_text="Agency admins: the username of a person of your agency. Neither office nor user: yourself.",
    )


class SubscriptionChangeSerializer(_SubscriptionCriteriaSerializer):
    """The subscriber stays; to subscribe someone else, create a new subscription."""


class SubscriptionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    agency = serializers.IntegerField(source="agency_id")
    office = OfficeRefSerializer(allow_null=True)
    user = serializers.CharField(source="user.username", allow_null=True)
    category = serializers.ChoiceField(choices=Category.choices, allow_blank=True)
    priority = serializers.ChoiceField(choices=Priority.choices, allow_blank=True)
    originator_country = serializers.ChoiceField(choices=CountryCode.choices, allow_blank=True)
    border_crossing = serializers.CharField(allow_blank=True)
    province = serializers.CharField(allow_blank=True)
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()


_SUBSCRIPTION_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The subscription's id.")
_SUBSCRIPTION_NOT_FOUND = OpenApiResponse(_ERROR, description="No such subscription, or not one you manage.")


@extend_schema_view(
    list=extend_schema(
        summary="Subscriptions you manage: your own; an agency admin, all of the agency's (recorded)",
        responses=SubscriptionSerializer(many=True),
    ),
    create=extend_schema(
        summary="Subscribe yourself (or, as an agency admin, an office or person of your agency) to matching items",
        request=SubscriptionCreateSerializer,
        responses={201: SubscriptionSerializer, 400: _ERROR, 403: _ERROR, 409: _ERROR},
    ),
    retrieve=extend_schema(
        summary="One subscription you manage (recorded)",
        parameters=[_SUBSCRIPTION_ID],
        responses={200: SubscriptionSerializer, 404: _SUBSCRIPTION_NOT_FOUND},
    ),
    update=extend_schema(
        summary="Replace a subscription's criteria (left out: any) and state",
        parameters=[_SUBSCRIPTION_ID],
        request=SubscriptionChangeSerializer,
        responses={200: SubscriptionSerializer, 400: _ERROR, 404: _SUBSCRIPTION_NOT_FOUND, 409: _ERROR},
    ),
    partial_update=extend_schema(
        summary="Change some of a subscription's criteria, or switch it off and on",
        parameters=[_SUBSCRIPTION_ID],
        request=SubscriptionChangeSerializer,
        responses={200: SubscriptionSerializer, 400: _ERROR, 404: _SUBSCRIPTION_NOT_FOUND, 409: _ERROR},
    ),
    destroy=extend_schema(
        summary="Delete a subscription (routing stops using it at once)",
        parameters=[_SUBSCRIPTION_ID],
        responses={204: None, 404: _SUBSCRIPTION_NOT_FOUND},
    ),
)
class SubscriptionViewSet(viewsets.GenericViewSet):
    """Which items an agency's offices and people receive, by criteria; scoped by
    ``messaging.subscriptions.subscriptions_visible_to``."""

    queryset = Subscription.objects.none()  # names the model for the schema and denial records; see get_queryset
    serializer_class = SubscriptionSerializer
    filter_backends: list[Any] = []
    lookup_value_regex = "[^/]+"

    def get_queryset(self) -> QuerySet[Subscription]:
        return subscriptions.subscriptions_visible_to(self.request.user)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset()) or []
        subscriptions.subscription_list(actor=request.user, subscriptions=page)
        return self.get_paginated_response(SubscriptionSerializer(page, many=True).data)

    def create(self, request: Request) -> Response:
        if selectors.content_membership(request.user) is None:  # refused before the body is judged
            raise PermissionDenied("Only members who receive items may have subscriptions.")
        subscription = subscriptions.subscription_create(
            actor=request.user, **_validated(SubscriptionCreateSerializer, request.data)
        )
        return Response(SubscriptionSerializer(subscription).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, pk: str) -> Response:
        subscription = subscriptions.subscription_read(actor=request.user, subscription_id=pk)
        return Response(SubscriptionSerializer(subscription).data)

    def update(self, request: Request, pk: str) -> Response:
        values = _validated(SubscriptionChangeSerializer, request.data)
        # A whole new set of criteria: whatever is left out matches anything.
        values = dict.fromkeys(subscriptions.CRITERIA, "") | {"is_active": True} | values
        subscription = subscriptions.subscription_update(actor=request.user, subscription_id=pk, **values)
        return Response(SubscriptionSerializer(subscription).data)

    def partial_update(self, request: Request, pk: str) -> Response:
        values = _validated(SubscriptionChangeSerializer, request.data)
        subscription = subscriptions.subscription_update(actor=request.user, subscription_id=pk, **values)
        return Response(SubscriptionSerializer(subscription).data)

    def destroy(self, request: Request, pk: str) -> Response:
        subscriptions.subscription_delete(actor=request.user, subscription_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
