"""The items API, /api/v1/items/: thin views over messaging's selectors and services.

An item the caller may not see answers 404 with the same body as one that does not exist or an id that is not an
id. Errors are ``{"detail", "code"}`` (and ``errors`` per field for bad input), from ``isn.api.exception_handler``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import replace
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.http import HttpResponse
from django.utils.http import content_disposition_header, parse_etags, quote_etag
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
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from agencies.models import Agency, CountryCode
from isn.errors import InvalidInput, NotFound, PermissionDenied, TooLarge
from isn.input import RefuseUnknownFields, id_field, takes_no_body
from messaging.api.common import (
    ERROR,
    AccessCursorPagination,
    AgencyRefSerializer,
    CountSerializer,
    ItemFilterBackend,
    NewestFirstPagination,
    OfficeRefSerializer,
    UploadField,
    idempotent,
    validated,
)
from messaging.api.matches import IdentifierResultSerializer
from messaging.items.acknowledgement import item_acknowledge, item_deliveries_view
from messaging.items.attachments import ALLOWED_TYPES, TEXT_TYPE, attachment_add, attachment_download
from messaging.items.changes import item_change, item_withdraw
from messaging.items.lifecycle import item_access_view, item_count, item_create, item_list, item_read
from messaging.matching.discovery import POST_CHECK_SKIPPED, REPLAYED, PostCheck
from messaging.matching.entities import ALIASES_MAX, ENTITY_FIELDS, ENTITY_TEXT_MAX_LENGTH
from messaging.models import (
    ACKNOWLEDGEMENT_TEXT_MAX_LENGTH,
    BODY_MAX_LENGTH,
    BORDER_CROSSING_MAX_LENGTH,
    ENTITIES_MAX,
    FORWARD_REASON_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    AcknowledgementNote,
    Category,
    EntityType,
    HandlingCode,
    InfoCredibility,
    Item,
    ItemStatus,
    Priority,
    SourceReliability,
)
from messaging.selectors import items as selectors
from messaging.selectors.filters import ItemFilter
from messaging.sharing.forwards import item_forward, item_forwards_view

# --- serializers: input --------------------------------------------------------------------------------------------


def _entity_fields() -> dict[str, serializers.Field]:
    def text(name: str) -> serializers.Field:
        takers = ", ".join(sorted(kind for kind, names in ENTITY_FIELDS.items() if name in names))
        return serializers.CharField(max_length=ENTITY_TEXT_MAX_LENGTH, required=False, help_text=f"Of: {takers}.")

    fields: dict[str, serializers.Field] = {
        "type": serializers.ChoiceField(choices=EntityType.choices),
    }
    for name in sorted({name for names in ENTITY_FIELDS.values() for name in names}):
        fields[name] = text(name)
    fields["aliases"] = serializers.ListField(
        child=serializers.CharField(max_length=ENTITY_TEXT_MAX_LENGTH),
        max_length=ALIASES_MAX,
        required=False,
        help_text="Of: person. Other names the person goes by.",
    )
    return fields


_ENTITY_TYPES_DOC = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in ENTITY_FIELDS.items())


class EntitySerializer(serializers.Serializer):
    """One entity an item names: its ``type`` and only the fields that type takes (see ``entities``)."""

    # Documents ``EntityField`` in the schema; the items service judges each entity (as ``entities[i].field``).

    def get_fields(self) -> dict[str, serializers.Field]:
        return _entity_fields()


@extend_schema_field(EntitySerializer)
class EntityField(serializers.JSONField):
    """One entity an item names: ``type`` and that type's fields, all text but a person's ``aliases``; any other
    field is refused (as ``entities[i].field``). A person matches on a name with a date of birth, a company on its
    registration number; a location never matches."""

    default_error_messages = {"not_an_object": "An object with a type and its fields."}

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            self.fail("not_an_object")
        return super().to_internal_value(data)


def _entities_field(**kwargs: Any) -> serializers.ListField:
    return serializers.ListField(
        child=EntityField(),
        max_length=ENTITIES_MAX,
        help_text=(
            "The people, phones, vehicles... the item names, each {type, fields}; sealed with the item, and only "
            f"blind tokens of their matchable values kept. The fields of each type: {_ENTITY_TYPES_DOC}."
        ),
        **kwargs,
    )


class ItemCreateSerializer(RefuseUnknownFields, serializers.Serializer):
    id = serializers.UUIDField(
        required=False,
        help_text="Optional: the id the item is to have, chosen by your system. Posting it again with the same body "
        "answers with the item again (it is its own Idempotency-Key); with another body, or by another caller, 409.",
    )
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
        child=id_field(),
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
    entities = _entities_field(required=False, default=list)
    discoverable = serializers.BooleanField(
        help_text=(
            "Required, never defaulted: whether officers who may not read the item may learn, when they check an "
            "identifier it carries, that your agency holds something on it (hit/no-hit: your agency and country and "
            "a reference only; you are told of every hit). Never true for TLP:RED. A discoverable item's entities "
            "are checked as it is posted (counted against your daily quota) and the hits returned."
        )
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Read when a serializer is made, not when this module is imported.
        self.fields["language"].choices = settings.LANGUAGES


class ItemChangeSerializer(RefuseUnknownFields, serializers.Serializer):
    """Every field optional; the release lists, when given, are complete (but for a consented restriction, see
    ``agencies``) and may only narrow."""

    countries = serializers.ListField(
        child=serializers.CharField(max_length=8), required=False, max_length=len(CountryCode.values)
    )
    agencies = serializers.ListField(
        child=id_field(),
        required=False,
        max_length=200,
        help_text=(
            "Agency ids: the complete new list of agency restrictions, which may only narrow. A country restricted "
            "to the agency an approved consent named keeps that restriction unless the list names an agency of it."
        ),
    )
    named_users = serializers.ListField(child=serializers.CharField(max_length=150), required=False, max_length=200)
    review_date = serializers.DateField(required=False)
    title = serializers.CharField(max_length=TITLE_MAX_LENGTH, required=False)
    body = serializers.CharField(max_length=BODY_MAX_LENGTH, trim_whitespace=False, required=False)
    entities = _entities_field(required=False)
    discoverable = serializers.BooleanField(required=False, help_text="Never true for TLP:RED.")


# --- serializers: output -------------------------------------------------------------------------------------------


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
    entities = serializers.ListField(child=EntityField(), help_text="The entities the item names.")
    release = ReleaseSerializer(
        allow_null=True, help_text="Who the item is released to: shown to the originating agency only."
    )
    discoverable = serializers.BooleanField(
        source="item.discoverable", help_text="Whether checks by those who may not read it can get a hit on it."
    )


class ItemCreatedSerializer(ItemDetailSerializer):
    """The item as posted, and its own check of its entities (``hits``, as a check of identifiers answers)."""

    hits_checked = serializers.BooleanField(
        source="post_check.checked", help_text="Whether the item's entities were checked as it was posted."
    )
    hits_not_checked = serializers.ChoiceField(
        source="post_check.reason",
        choices=POST_CHECK_SKIPPED,
        allow_blank=True,
        help_text="Why not, when not: " + "; ".join(f"{code}: {text}" for code, text in POST_CHECK_SKIPPED),
    )
    hits = IdentifierResultSerializer(
        source="post_check.results",
        many=True,
        help_text="Per entity that can match (position: the entity's position in the item): related items you can "
        "read, and hits on discoverable items you cannot.",
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


class AcknowledgeSerializer(RefuseUnknownFields, serializers.Serializer):
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


class ForwardCreateSerializer(RefuseUnknownFields, serializers.Serializer):
    to_agency = id_field(help_text="An active agency of your own country.")
    to_office = id_field(
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
_NOT_FOUND = OpenApiResponse(ERROR, description="No such item, or not one you may see (indistinguishable).")


# --- replays: a write retried with its Idempotency-Key answers with what a read of its result gives now ----------


def _client_chosen_id(request: Request) -> str | None:
    data = request.data
    chosen = data.get("id") if hasattr(data, "get") else None
    try:
        return f"item:{uuid.UUID(str(chosen))}" if chosen is not None else None
    except ValueError:
        return None  # judged with the rest of the body


def _item_replay(request: Request, kwargs: dict[str, Any], item_id: str) -> Any:
    content = item_read(actor=request.user, item_id=item_id)
    return ItemCreatedSerializer(replace(content, post_check=PostCheck(checked=False, reason=REPLAYED))).data


def _item_change_replay(request: Request, kwargs: dict[str, Any], item_id: str) -> Any:
    return ItemChangeResultSerializer(item_read(actor=request.user, item_id=item_id).item).data


def _attachment_replay(request: Request, kwargs: dict[str, Any], attachment_id: str) -> Any:
    content = item_read(actor=request.user, item_id=kwargs["pk"])
    for summary in content.attachments:
        if str(summary.id) == attachment_id:
            return AttachmentSerializer(summary).data
    raise NotFound("No such attachment.")


def _acknowledgement_replay(request: Request, kwargs: dict[str, Any], item_id: str) -> Any:
    reader = selectors.reader_required(request.user)
    item = selectors.item_get(reader, item_id=item_id)  # one the caller can no longer see is 404, as a read is
    acknowledgement = selectors.agency_acknowledgement(item, agency_id=reader.agency_id)
    if acknowledgement is None:
        raise NotFound("No such item.")
    return AcknowledgementSerializer(acknowledgement).data


def _forward_replay(request: Request, kwargs: dict[str, Any], forward_id: str) -> Any:
    for view in item_forwards_view(actor=request.user, item_id=kwargs["pk"]):
        if str(view.forward.pk) == forward_id:
            return ForwardSerializer(view).data
    raise NotFound("No such forward.")


# --- the viewset ---------------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="Your inbox: items you may see, newest first (metadata and title; every id listed is recorded)",
        responses=ItemSummarySerializer(many=True),
    ),
    create=extend_schema(
        summary="Post an item",
        request=ItemCreateSerializer,
        description=(
            "`discoverable` is required (true or false, never true for TLP:RED). A discoverable item's entities are "
            "checked as it is posted, like `POST /api/v1/matches/`, counted against your daily quota: the answer "
            "carries `hits`. Over the quota the item is still posted, unchecked (`hits_checked` false, "
            "`hits_not_checked` quota_exceeded)."
        ),
        responses={201: ItemCreatedSerializer, 400: ERROR, 403: ERROR},
    ),
    retrieve=extend_schema(
        summary="Open an item (recorded)",
        description=(
            "The answer carries an `ETag`; send it back in `If-None-Match` to get 304 Not Modified while the item "
            "reads the same to you. A 304 is still a read, and recorded as one."
        ),
        parameters=[
            _ITEM_ID,
            OpenApiParameter("If-None-Match", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False),
            OpenApiParameter("ETag", OpenApiTypes.STR, OpenApiParameter.HEADER, response=[200, 304]),
        ],
        responses={
            200: ItemDetailSerializer,
            304: OpenApiResponse(description="Unchanged since the ETag sent in If-None-Match."),
            404: _NOT_FOUND,
            409: ERROR,
        },
    ),
    partial_update=extend_schema(
        summary="Originator: narrow the release, move the review date, or correct the text",
        parameters=[_ITEM_ID],
        request=ItemChangeSerializer,
        responses={200: ItemChangeResultSerializer, 400: ERROR, 403: ERROR, 404: _NOT_FOUND, 409: ERROR},
    ),
)
class ItemViewSet(viewsets.GenericViewSet):
    """Intelligence items, scoped to the caller by ``messaging.selectors.items.items_visible_to``."""

    queryset = Item.objects.none()  # names the model for the schema and denial records; see get_queryset
    serializer_class = ItemDetailSerializer
    pagination_class = NewestFirstPagination
    filter_backends = [ItemFilterBackend]
    filterset_class = ItemFilter
    # Any segment reaches the view, so a malformed id gets the same JSON 404 as an unknown one.
    lookup_value_regex = "[^/]+"
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[Item]:
        return selectors.items_for_listing(self.request.user)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        summaries = item_list(actor=request.user, items=page or [])
        return self.get_paginated_response(ItemSummarySerializer(summaries, many=True).data)

    @idempotent("messaging.item", replay=_item_replay, natural_key=_client_chosen_id, claimed_in_service=True)
    def create(self, request: Request) -> Response:
        if selectors.content_membership(request.user) is None:  # refused before the body is judged
            raise PermissionDenied("Only officers of a member agency may post items.")
        data = validated(ItemCreateSerializer, request.data)
        content = item_create(actor=request.user, item_id=data.pop("id", None), **data)
        return Response(ItemCreatedSerializer(content).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, pk: str) -> Response:
        content = item_read(actor=request.user, item_id=pk)
        data = ItemDetailSerializer(content).data
        # A digest of what this caller was shown: it changes with the content version, the release the originator
        # sees, the read flag and the attachments, and tells nothing the body did not.
        shown = json.dumps(data, sort_keys=True, cls=DjangoJSONEncoder).encode("utf-8")
        etag = quote_etag(hashlib.sha256(shown).hexdigest()[:32])
        if etag in parse_etags(request.headers.get("If-None-Match", "")):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
        return Response(data, headers={"ETag": etag})

    @idempotent("messaging.item", replay=_item_change_replay)
    def partial_update(self, request: Request, pk: str) -> Response:
        item = item_change(actor=request.user, item_id=pk, **validated(ItemChangeSerializer, request.data))
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
        return Response({"count": item_count(actor=request.user, items=items, filters=filters)})

    @idempotent("messaging.item", replay=_item_change_replay)
    @extend_schema(
        summary="Originator: withdraw the item (recipients lose it at once; their keys are shredded)",
        parameters=[_ITEM_ID],
        request=None,
        responses={200: ItemChangeResultSerializer, 403: ERROR, 404: _NOT_FOUND, 409: ERROR},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    @takes_no_body
    def withdraw(self, request: Request, pk: str) -> Response:
        item = item_withdraw(actor=request.user, item_id=pk)
        return Response(ItemChangeResultSerializer(item).data)

    @idempotent("messaging.attachment", replay=_attachment_replay)
    @extend_schema(
        summary="Originator: attach a file (multipart field 'file'; its type is judged from its content)",
        parameters=[_ITEM_ID],
        request={
            "multipart/form-data": inline_serializer("AttachmentUpload", {"file": UploadField()}),
        },
        responses={201: AttachmentSerializer, 400: ERROR, 403: ERROR, 404: _NOT_FOUND, 409: ERROR},
    )
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser], filter_backends=[])
    def attachments(self, request: Request, pk: str) -> Response:
        limit = settings.ISN_ATTACHMENT_MAX_BYTES
        # Refused before the body is read: a bigger request would not fit the in-memory upload handler anyway.
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if not declared.isdigit() or int(declared) > settings.FILE_UPLOAD_MAX_MEMORY_SIZE:
            raise TooLarge(f"The attachment is larger than the limit of {limit} bytes.")
        upload = request.FILES.get("file")
        if upload is None:
            raise InvalidInput("Send the file as the multipart form field 'file'.")
        summary = attachment_add(actor=request.user, item_id=pk, filename=upload.name, content=upload.read())
        return Response(AttachmentSerializer(summary).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Download an attachment (recorded)",
        parameters=[_ITEM_ID, _ATTACHMENT_ID],
        responses={
            **{
                (200, content_type): OpenApiResponse(
                    OpenApiTypes.BINARY, description="The file, with the content type detected at upload."
                )
                for content_type in [*ALLOWED_TYPES, TEXT_TYPE]
            },
            404: _NOT_FOUND,
            409: ERROR,
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
        file = attachment_download(actor=request.user, item_id=pk, attachment_id=attachment_id)
        response = HttpResponse(file.content, content_type=file.content_type)
        response["Content-Disposition"] = content_disposition_header(True, file.filename)
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "no-store"
        response["Content-Length"] = str(len(file.content))
        return response

    @idempotent("messaging.acknowledgement", replay=_acknowledgement_replay, resource_id=lambda data: str(data["item"]))
    @extend_schema(
        summary="Acknowledge the item for your agency (once per agency; a second time answers 409)",
        parameters=[_ITEM_ID],
        request=AcknowledgeSerializer,
        responses={201: AcknowledgementSerializer, 400: ERROR, 403: ERROR, 404: _NOT_FOUND, 409: ERROR},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def acknowledge(self, request: Request, pk: str) -> Response:
        acknowledgement = item_acknowledge(
            actor=request.user, item_id=pk, **validated(AcknowledgeSerializer, request.data)
        )
        return Response(AcknowledgementSerializer(acknowledgement).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Originator: per recipient agency, when the item was routed, notified, read and acknowledged",
        parameters=[_ITEM_ID],
        responses={200: AgencyDeliverySerializer(many=True), 403: ERROR, 404: _NOT_FOUND},
        filters=False,
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def deliveries(self, request: Request, pk: str) -> Response:
        states = item_deliveries_view(actor=request.user, item_id=pk)
        return Response(AgencyDeliverySerializer(states, many=True).data)

    @extend_schema(
        summary="Originator: who opened the item or downloaded its attachments, and when (newest first)",
        parameters=[_ITEM_ID],
        responses={200: AccessEventSerializer(many=True), 403: ERROR, 404: _NOT_FOUND},
        filters=False,
    )
    @action(detail=True, methods=["get"], pagination_class=AccessCursorPagination, filter_backends=[])
    def access(self, request: Request, pk: str) -> Response:
        page = self.paginate_queryset(item_access_view(actor=request.user, item_id=pk)) or []
        agencies = Agency.objects.in_bulk({event.actor_agency_id for event in page if event.actor_agency_id})
        return self.get_paginated_response(AccessEventSerializer(page, many=True, context={"agencies": agencies}).data)

    @idempotent("messaging.forward", replay=_forward_replay)
    @extend_schema(
        summary="Forward the item inside your own country, as its handling code allows (never TLP:RED; "
        "TLP:AMBER+STRICT only to offices of your own agency); another country needs a consent request",
        parameters=[_ITEM_ID],
        request=ForwardCreateSerializer,
        responses={201: ForwardSerializer, 400: ERROR, 403: ERROR, 404: _NOT_FOUND, 409: ERROR},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def forward(self, request: Request, pk: str) -> Response:
        selectors.item_get(request.user, item_id=pk)  # a hidden item is refused before the body is judged
        data = validated(ForwardCreateSerializer, request.data)
        view = item_forward(actor=request.user, item_id=pk, **data)
        return Response(ForwardSerializer(view).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="The item's forwards with their reasons: all of them for the originator, your agency's own for a "
        "forwarding agency (recorded)",
        parameters=[_ITEM_ID],
        responses={200: ForwardSerializer(many=True), 404: _NOT_FOUND, 409: ERROR},
        filters=False,
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def forwards(self, request: Request, pk: str) -> Response:
        views = item_forwards_view(actor=request.user, item_id=pk)
        return Response(ForwardSerializer(views, many=True).data)
