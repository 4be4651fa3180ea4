"""Hit/no-hit discovery over HTTP: ``POST /api/v1/matches/`` checks identifiers, ``GET /api/v1/hits/`` lists the
hits on your agency's items and those your agency received (``messaging.matching.discovery``)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from agencies.models import ApiKey
from isn.errors import PermissionDenied
from isn.input import RefuseUnknownFields
from messaging.api.common import ERROR, NewestFirstPagination, validated
from messaging.core.people import content_membership
from messaging.matching.discovery import hit_list, identifiers_check
from messaging.matching.entities import ENTITY_FIELDS
from messaging.models import IDENTIFIERS_PER_CHECK_MAX, EntityType, Hit
from messaging.selectors.hits import DIRECTIONS, ON_OUR_ITEMS, hits_in_direction

# --- serializers ---------------------------------------------------------------------------------------------------


class HitAgencySerializer(serializers.Serializer):
    id = serializers.IntegerField(source="agency_id")
    code = serializers.CharField(source="agency_code", help_text="The agency's acronym, e.g. BGC.")
    name = serializers.CharField(source="agency_name")


class HitViewSerializer(serializers.Serializer):
    """A hit as its asker sees it: who holds something, and the reference to ask them about (never the item)."""

    reference = serializers.CharField(help_text="Fresh for this check and identifier; only the holder resolves it.")
    agency = HitAgencySerializer(source="*")
    country = serializers.CharField()


class IdentifierResultSerializer(serializers.Serializer):
    position = serializers.IntegerField(help_text="The identifier's position in the request (from 0).")
    type = serializers.ChoiceField(choices=EntityType.choices, source="entity_type")
    related = serializers.ListField(
        child=serializers.UUIDField(), help_text="Active items you can read that carry it (their ids)."
    )
    hits = HitViewSerializer(many=True, help_text="Active discoverable items you cannot read that carry it.")


class MatchResultSerializer(serializers.Serializer):
    check_id = serializers.IntegerField(source="check.pk")
    results = IdentifierResultSerializer(many=True)


class MatchRequestSerializer(RefuseUnknownFields, serializers.Serializer):
    # Each identifier is judged by the service, as identifiers[i].field (the same rules as an item's entities).
    identifiers = serializers.ListField(
        child=serializers.JSONField(),
        allow_empty=False,
        help_text=(
            f"1 to {IDENTIFIERS_PER_CHECK_MAX} identifiers, each shaped like an item's entity: "
            '{"type": "phone", "number": "012 345 678", "country": "KH"}. The fields of each type: '
            + "; ".join(f"{kind}: {', '.join(names)}" for kind, names in ENTITY_FIELDS.items())
            + ". A person needs a name and a birth_date (a name alone never matches); a location never matches."
        ),
    )


class AgencyCodeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField(source="short_name", help_text="The agency's acronym, e.g. BGC.")
    name = serializers.CharField()


class HitSerializer(serializers.Serializer):
    """A hit as your agency sees it: on your items, which item and who asked; received, who holds something."""

    reference = serializers.CharField(help_text="The hit's reference; a request for information may quote it.")
    type = serializers.ChoiceField(choices=EntityType.choices, source="entity_type")
    at = serializers.DateTimeField(source="created_at")
    item = serializers.SerializerMethodField(
        help_text="Your agency's item the hit named (on_our_items); null for hits received: the item is the holder's."
    )
    holder_agency = AgencyCodeSerializer()
    holder_country = serializers.CharField()
    asker_agency = AgencyCodeSerializer()
    asker_country = serializers.CharField()
    asker = serializers.SerializerMethodField(help_text="The name of the person (or agency system) who checked.")

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_item(self, hit: Hit) -> str | None:
        return str(hit.item_id) if self.context.get("direction") == ON_OUR_ITEMS else None

    def get_asker(self, hit: Hit) -> str:
        return hit.asker_user.get_full_name() or hit.asker_user.get_username()


class HitQuerySerializer(serializers.Serializer):
    direction = serializers.ChoiceField(choices=DIRECTIONS)


# --- views ---------------------------------------------------------------------------------------------------------


class MatchViewSet(viewsets.GenericViewSet):
    """Checks of identifiers against every item in ISN: related items you can read, and hit/no-hit for the rest."""

    queryset = Hit.objects.none()
    serializer_class = MatchResultSerializer
    pagination_class = None
    filter_backends: list[Any] = []

    @extend_schema(
        summary="Check identifiers: items you can read that carry them, and which agencies hold others (hit/no-hit)",
        description=(
            "For each identifier: `related`, the active items you can read that carry it; `hits`, for each active "
            "discoverable item you cannot read that carries it, only its agency, that agency's country and a hit "
            "reference, fresh for this check and identifier: quote it in a request for information to that agency, "
            "which alone can tell which of its items it names. The holder is told of every hit, with who asked.\n\n"
            f"At most {IDENTIFIERS_PER_CHECK_MAX} identifiers per check. Identifiers checked are counted per person, "
            "per API key and per agency per UTC day (a post's own check of its entities counts too); over a quota "
            "the answer is 429 `quota_exceeded`, with `errors.quota` (scope person, key or agency; limit; used; "
            "resets_at) and Retry-After. Every check is recorded (counts and types, never the values)."
        ),
        request=MatchRequestSerializer,
        responses={200: MatchResultSerializer, 400: ERROR, 403: ERROR, 429: ERROR},
    )
    def create(self, request: Request) -> Response:
        if content_membership(request.user) is None:  # refused before the body is judged
            raise PermissionDenied("Only officers of a member agency may check identifiers.")
        data = validated(MatchRequestSerializer, request.data)
        api_key = request.auth if isinstance(request.auth, ApiKey) else None
        result = identifiers_check(actor=request.user, identifiers=data["identifiers"], api_key=api_key)
        return Response(MatchResultSerializer(result).data)


_DIRECTION = OpenApiParameter(
    "direction",
    OpenApiTypes.STR,
    enum=[code for code, _label in DIRECTIONS],
    required=True,
    description=f"{ON_OUR_ITEMS}: hits on your agency's items, with who asked; received: hits your agency's checks "
    "received.",
)


@extend_schema_view(
    list=extend_schema(
        summary="Hits on your agency's items (with who asked), or hits your agency received (newest first; recorded)",
        parameters=[_DIRECTION],
        responses={200: HitSerializer(many=True), 400: ERROR},
        filters=False,
    ),
)
class HitViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Hits, scoped to the caller's agency by ``messaging.selectors.hits``."""

    queryset = Hit.objects.none()
    serializer_class = HitSerializer
    pagination_class = NewestFirstPagination
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[Hit]:
        return hits_in_direction(self.request.user, self._direction()).select_related(
            "holder_agency", "asker_agency", "asker_user"
        )

    def _direction(self) -> str:
        return validated(HitQuerySerializer, self.request.query_params)["direction"]

    def list(self, request: Request) -> Response:
        if content_membership(request.user) is None:
            raise PermissionDenied("Only officers of a member agency may list hits.")
        direction = self._direction()
        page = self.paginate_queryset(self.get_queryset()) or []
        hits = hit_list(actor=request.user, direction=direction, hits=page)
        data = HitSerializer(hits, many=True, context={"direction": direction}).data
        return self.get_paginated_response(data)
