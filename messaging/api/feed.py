"""The change feed over HTTP: ``GET /api/v1/changes/`` (see ``messaging.delivery.feed``)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from isn.schema import ProblemSerializer
from messaging.api.common import validated
from messaging.delivery.feed import FEED_PAGE_MAX, changes_page
from messaging.models import ChangeKind

FEED_PAGE_DEFAULT = 500


class ChangeSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ChangeKind.choices)
    at = serializers.DateTimeField()
    item = serializers.UUIDField(source="item_id", allow_null=True, help_text="The item it is about, if any.")
    consent = serializers.UUIDField(source="consent_id", allow_null=True, help_text="The consent request, if any.")
    rfi = serializers.UUIDField(source="rfi_id", allow_null=True, help_text="The request for information, if any.")
    hit_reference = serializers.CharField(
        help_text="For hit.on_item and hit.received: the hit's reference (GET /api/v1/hits/); empty otherwise."
    )


class ChangePageSerializer(serializers.Serializer):
    results = ChangeSerializer(source="changes", many=True)
    cursor = serializers.CharField(help_text="Pass as `cursor` to read on from here; store it once you have acted.")
    more = serializers.BooleanField(help_text="More changes are already waiting: read on at once.")


class ChangeQuerySerializer(serializers.Serializer):
    cursor = serializers.CharField(required=False, max_length=200)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=FEED_PAGE_MAX, default=FEED_PAGE_DEFAULT)
    start = serializers.ChoiceField(choices=["latest"], required=False)

    def validate(self, attrs: dict) -> dict:
        if attrs.get("cursor") and attrs.get("start"):
            raise serializers.ValidationError({"start": ["Give a cursor or start, not both."]})
        return attrs


class ChangeFeedView(generics.GenericAPIView):
    """What changed for you, in order: ids, kinds and times, never content."""

    serializer_class = ChangePageSerializer
    pagination_class = None
    filter_backends = []

    @extend_schema(
        operation_id="v1_changes_list",
        summary="What changed for you since a cursor",
        description=(
            "An ordered stream of what changed for the caller (the person, or the API key's own account): an item "
            "became visible (posted, routed, forwarded, consented, named), changed (a correction), was acknowledged "
            "(to its originator), was narrowed away, withdrawn or expired; consent and RFI events for both sides; a "
            "check of identifiers hit an item of your agency (hit.on_item, naming your item) or your own check got "
            "a hit (hit.received, the reference only). "
            "Ids, kinds and times only: fetch what a change names (a 404 means it is no longer yours to read).\n\n"
            "At least once and in order. Start without a cursor (every change kept, oldest first) or with "
            "`start=latest` (an empty page and a cursor at now: list your items first, then follow the feed). "
            "A cursor stays good for at least 30 days; an older one answers 410 `cursor_expired`."
        ),
        parameters=[
            OpenApiParameter("cursor", OpenApiTypes.STR, description="The `cursor` of the last page you read."),
            OpenApiParameter("limit", OpenApiTypes.INT, description=f"At most this many (1-{FEED_PAGE_MAX})."),
            OpenApiParameter("start", OpenApiTypes.STR, enum=["latest"], description="Start at now (no cursor)."),
        ],
        responses={200: ChangePageSerializer, 410: ProblemSerializer},
    )
    def get(self, request: Request) -> Response:
        query = validated(ChangeQuerySerializer, request.query_params)
        page = changes_page(
            actor=request.user,
            cursor=query.get("cursor"),
            limit=query["limit"],
            latest=query.get("start") == "latest",
        )
        return Response(ChangePageSerializer(page).data)
