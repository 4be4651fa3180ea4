"""The consent requests API, /api/v1/consents/: thin views over ``messaging.sharing.consents``.

A request is seen by its two sides only (the agency that asked and the item's originating agency); for anyone else it
answers 404 with the same body as one that does not exist or an id that is not an id. Errors are
``{"detail", "code"}`` (and ``errors`` per field for bad input), from ``isn.api.exception_handler``; authentication and
permissions are the API's defaults (a session with both factors or an API key; writes need the key's write scope).
Forwarding itself is an item action: ``POST /api/v1/items/{id}/forward/`` (``messaging.api.items``).
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from agencies.models import CountryCode
from isn.errors import InvalidInput, PermissionDenied
from isn.input import RefuseUnknownFields, id_field, takes_no_body
from messaging.api.common import ERROR, AgencyRefSerializer, ItemFilterBackend, NewestFirstPagination, idempotent
from messaging.core.people import content_membership
from messaging.models import CONSENT_TEXT_MAX_LENGTH, ConsentRequest, ConsentStatus
from messaging.selectors.sharing import consent_get, consents_visible_to
from messaging.sharing.consents import (
    consent_cancel,
    consent_decline,
    consent_grant,
    consent_list,
    consent_read,
    consent_request_create,
)


class ConsentFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ConsentStatus.choices)
    item = django_filters.UUIDFilter(field_name="item_id", label="Only requests about this item")

    class Meta:
        model = ConsentRequest
        fields = ["status", "item"]


class ConsentCreateSerializer(RefuseUnknownFields, serializers.Serializer):
    item = serializers.UUIDField(help_text="The item to share: one you may read.")
    target_country = serializers.ChoiceField(
        choices=CountryCode.choices,
        help_text=(
            "Any member country but yours and the originator's: one the item is released to already is taken like any "
            "other (only the originating agency sees the release)."
        ),
    )
    target_agency = id_field(
        required=False,
        allow_null=True,
        default=None,
        help_text="Optionally one agency of that country: then only it receives the item there.",
    )
    justification = serializers.CharField(
        max_length=CONSENT_TEXT_MAX_LENGTH,
        trim_whitespace=False,
        help_text="Why; sealed like the item, shown to your agency and the originating agency only.",
    )


class ConsentDeclineSerializer(RefuseUnknownFields, serializers.Serializer):
    # Judged by the service, after it has checked that the caller may decide at all.
    reason = serializers.CharField(
        max_length=CONSENT_TEXT_MAX_LENGTH,
        trim_whitespace=False,
        required=False,
        allow_blank=True,
        default="",
        help_text="Required: why not. Sealed; shown to the two sides only.",
    )


class ConsentSerializer(serializers.Serializer):
    """A consent request's metadata: who asked, for which country, and where it stands."""

    id = serializers.UUIDField(source="consent.id")
    item = serializers.UUIDField(source="consent.item_id")
    requester_agency = AgencyRefSerializer(source="consent.requester_agency")
    requester = serializers.CharField(source="consent.requester_user.username")
    target_country = serializers.CharField(source="consent.target_country_id")
    target_agency = AgencyRefSerializer(source="consent.target_agency", allow_null=True)
    status = serializers.ChoiceField(choices=ConsentStatus.choices, source="consent.status")
    due_at = serializers.DateTimeField(source="consent.due_at")
    escalation_level = serializers.IntegerField(
        source="consent.escalation_level", help_text="0: none; 1: supervisors reminded; 2: national focal points."
    )
    decided_by = serializers.CharField(source="consent.decided_by.username", allow_null=True)
    decided_at = serializers.DateTimeField(source="consent.decided_at", allow_null=True)
    revoked_at = serializers.DateTimeField(source="consent.revoked_at", allow_null=True)
    created_at = serializers.DateTimeField(source="consent.created_at")


class ConsentDetailSerializer(ConsentSerializer):
    justification = serializers.CharField(
        allow_null=True, help_text="Null when your country no longer holds the item, or not opened by this call."
    )
    decline_reason = serializers.CharField(allow_null=True)


def _validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise InvalidInput("The request is not valid; see errors.", extra={"fields": serializer.errors})
    return dict(serializer.validated_data)


_CONSENT_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The request's id.")
_NOT_FOUND = OpenApiResponse(ERROR, description="No such request, or not one you may see (indistinguishable).")


def _consent_replay(request: Request, kwargs: dict[str, Any], consent_id: str) -> Any:
    return ConsentDetailSerializer(consent_read(actor=request.user, consent_id=consent_id)).data


def _decision_replay(request: Request, kwargs: dict[str, Any], consent_id: str) -> Any:
    return ConsentSerializer(consent_read(actor=request.user, consent_id=consent_id)).data


@extend_schema_view(
    list=extend_schema(
        summary="Consent requests your agency asked, or was asked about its items, newest first (recorded)",
        responses={200: ConsentSerializer(many=True), 400: ERROR, 403: ERROR},
    ),
    create=extend_schema(
        summary="Ask the originating agency's consent to share an item with another country (the third-party rule)",
        request=ConsentCreateSerializer,
        responses={201: ConsentDetailSerializer, 400: ERROR, 403: ERROR, 404: ERROR, 409: ERROR},
    ),
    retrieve=extend_schema(
        summary="One consent request, its justification and decline reason opened for its two sides (recorded)",
        parameters=[_CONSENT_ID],
        responses={200: ConsentDetailSerializer, 404: _NOT_FOUND, 409: ERROR},
    ),
)
class ConsentViewSet(viewsets.GenericViewSet):
    """Consent requests, scoped to their two sides by ``messaging.selectors.sharing.consents_visible_to``."""

    queryset = ConsentRequest.objects.none()  # names the model for the schema and denial records; see get_queryset
    serializer_class = ConsentDetailSerializer
    pagination_class = NewestFirstPagination
    filter_backends = [ItemFilterBackend]
    filterset_class = ConsentFilter
    # Any segment reaches the view, so a malformed id gets the same JSON 404 as an unknown one.
    lookup_value_regex = "[^/]+"
    http_method_names = ["get", "post", "head", "options"]

    def get_queryset(self) -> QuerySet[ConsentRequest]:
        return consents_visible_to(self.request.user)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset())) or []
        views = consent_list(actor=request.user, consents=page)
        return self.get_paginated_response(ConsentSerializer(views, many=True).data)

    @idempotent("messaging.consentrequest", replay=_consent_replay)
    def create(self, request: Request) -> Response:
        if content_membership(request.user) is None:  # refused before the body is judged
            raise PermissionDenied("Only officers of a member agency may ask for consent.")
        data = _validated(ConsentCreateSerializer, request.data)
        view = consent_request_create(
            actor=request.user,
            item_id=data["item"],
            target_country=data["target_country"],
            target_agency=data["target_agency"],
            justification=data["justification"],
        )
        return Response(ConsentDetailSerializer(view).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(ConsentDetailSerializer(consent_read(actor=request.user, consent_id=pk)).data)

    @idempotent("messaging.consentrequest", replay=_decision_replay)
    @extend_schema(
        summary="Originating agency's supervisor or national focal point: approve (the item is then shared)",
        parameters=[_CONSENT_ID],
        request=None,
        responses={200: ConsentSerializer, 403: ERROR, 404: _NOT_FOUND, 409: ERROR},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    @takes_no_body
    def approve(self, request: Request, pk: str) -> Response:
        return Response(ConsentSerializer(consent_grant(actor=request.user, consent_id=pk)).data)

    @idempotent("messaging.consentrequest", replay=_decision_replay)
    @extend_schema(
        summary="Originating agency's supervisor or national focal point: decline, with a reason",
        parameters=[_CONSENT_ID],
        request=ConsentDeclineSerializer,
        responses={200: ConsentSerializer, 400: ERROR, 403: ERROR, 404: _NOT_FOUND, 409: ERROR},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def decline(self, request: Request, pk: str) -> Response:
        consent_get(request.user, consent_id=pk)  # a hidden request is refused before the body is judged
        reason = _validated(ConsentDeclineSerializer, request.data)["reason"]
        view = consent_decline(actor=request.user, consent_id=pk, reason=reason)
        return Response(ConsentSerializer(view).data)

    @idempotent("messaging.consentrequest", replay=_decision_replay)
    @extend_schema(
        summary="The agency that asked: cancel a pending request",
        parameters=[_CONSENT_ID],
        request=None,
        responses={200: ConsentSerializer, 403: ERROR, 404: _NOT_FOUND, 409: ERROR},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    @takes_no_body
    def cancel(self, request: Request, pk: str) -> Response:
        return Response(ConsentSerializer(consent_cancel(actor=request.user, consent_id=pk)).data)
