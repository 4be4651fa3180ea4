"""Notifications, webhooks and subscriptions in the API: /api/v1/notifications/, /webhooks/, /subscriptions/."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from agencies.models import CountryCode
from agencies.permissions import ApiKeyScopes, IsNetworkMember, ManagesAgencyDelivery
from isn.errors import PermissionDenied
from isn.input import RefuseUnknownFields, id_field, takes_no_body
from messaging.api.common import (
    ERROR,
    AccessCursorPagination,
    CountSerializer,
    ItemFilterBackend,
    NewestFirstPagination,
    OfficeRefSerializer,
    idempotent,
    validated,
)
from messaging.delivery import notifications, subscriptions, webhooks
from messaging.models import (
    BORDER_CROSSING_MAX_LENGTH,
    AgencyWebhook,
    Category,
    Notification,
    NotificationKind,
    Priority,
    Subscription,
)
from messaging.selectors import items as selectors

# --- notifications and webhooks ------------------------------------------------------------------------------------


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
    pagination_class = NewestFirstPagination
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
    @takes_no_body
    def read(self, request: Request, pk: str) -> Response:
        notification = notifications.notification_mark_read(actor=request.user, notification_id=pk)
        return Response(NotificationSerializer(notification).data)

    @extend_schema(summary="How many of your notifications are unread", responses=CountSerializer, filters=False)
    @action(detail=False, methods=["get"], url_path="unread-count", pagination_class=None, filter_backends=[])
    def unread_count(self, request: Request) -> Response:
        return Response({"count": notifications.notifications_unread_count(request.user)})


class DeadLetterSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    item = serializers.UUIDField(source="item_id", allow_null=True)
    rfi = serializers.UUIDField(source="rfi_id", allow_null=True)
    event = serializers.CharField()
    attempts = serializers.IntegerField()
    last_error = serializers.CharField(help_text="HTTP status or error class.")
    created_at = serializers.DateTimeField()


class DeadLetterRetriedSerializer(serializers.Serializer):
    delivery = serializers.CharField(
        source="pk", help_text="The X-ISN-Delivery of the queued call (the original one while ISN still keeps it)."
    )
    event = serializers.CharField(source="payload.event")


class WebhookConfigureSerializer(RefuseUnknownFields, serializers.Serializer):
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
    secret = serializers.CharField(
        required=False,
        help_text=(
            "The HMAC-SHA256 signing secret: shown this once, keep it safe. Absent from a replayed answer "
            "(Idempotent-Replayed: true), which is never given the secret again."
        ),
    )


_WEBHOOK_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The webhook's id.")
_DEAD_LETTER_ID = OpenApiParameter(
    "letter_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The failed call's id (from dead-letters)."
)
_WEBHOOK_NOT_FOUND = OpenApiResponse(ERROR, description="Not your agency's webhook, or none (indistinguishable).")


def _configured(webhook: Any, secret: str) -> dict[str, Any]:
    return {"id": webhook.pk, "url": webhook.url, "is_active": webhook.is_active, "secret": secret}


def _webhook_replay(request: Request, kwargs: dict[str, Any], webhook_id: str) -> Any:
    # The secret was shown once and is stored only sealed: a replay answers with the webhook as it stands, without it.
    [webhook] = webhooks.webhook_view(actor=request.user, webhook_id=webhook_id)
    return WebhookSerializer(webhook).data


class WebhookViewSet(viewsets.GenericViewSet):
    """An agency's webhook: its admins (and its systems, by a key with the admin scope) set, see, rotate and remove it,
    and see and retry the calls that failed."""

    queryset = AgencyWebhook.objects.none()
    serializer_class = WebhookSerializer
    # Refused before the body is read: a caller who may not configure webhooks learns nothing from validation.
    permission_classes = [ApiKeyScopes, IsNetworkMember, ManagesAgencyDelivery]
    api_key_admin_scope = True
    pagination_class = None
    filter_backends: list[Any] = []
    lookup_value_regex = "[^/]+"

    @extend_schema(
        summary="Agency admin: your agency's webhook (none or one; URL and state, never the secret; recorded)",
        responses={200: WebhookSerializer(many=True), 403: ERROR},
    )
    def list(self, request: Request) -> Response:
        return Response(WebhookSerializer(webhooks.webhook_view(actor=request.user), many=True).data)

    @idempotent("messaging.agencywebhook", replay=_webhook_replay)
    @extend_schema(
        summary="Agency admin: set your agency's webhook URL (a new signing secret is returned once)",
        description=(
            "With an `Idempotency-Key`, a retry answers 200 with the webhook as it stands now and without `secret`: "
            "the secret is shown once only and never kept with the key. A caller that lost the first answer gets a "
            "new secret with `rotate-secret`."
        ),
        request=WebhookConfigureSerializer,
        responses={200: WebhookConfiguredSerializer, 400: ERROR, 403: ERROR},
    )
    def create(self, request: Request) -> Response:
        webhook, secret = webhooks.webhook_configure(
            actor=request.user, **validated(WebhookConfigureSerializer, request.data)
        )
        return Response(_configured(webhook, secret))

    @extend_schema(
        summary="Agency admin: your agency's webhook (recorded)",
        parameters=[_WEBHOOK_ID],
        responses={200: WebhookSerializer, 403: ERROR, 404: _WEBHOOK_NOT_FOUND},
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        [webhook] = webhooks.webhook_view(actor=request.user, webhook_id=pk)
        return Response(WebhookSerializer(webhook).data)

    @extend_schema(
        summary="Agency admin: remove your agency's webhook (calls still queued are dropped)",
        parameters=[_WEBHOOK_ID],
        responses={204: None, 403: ERROR, 404: _WEBHOOK_NOT_FOUND},
    )
    def destroy(self, request: Request, pk: str) -> Response:
        webhooks.webhook_delete(actor=request.user, webhook_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Agency admin: a new signing secret, returned once; the old one stops signing at once",
        parameters=[_WEBHOOK_ID],
        request=None,
        responses={200: WebhookConfiguredSerializer, 403: ERROR, 404: _WEBHOOK_NOT_FOUND},
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    @takes_no_body
    def rotate_secret(self, request: Request, pk: str) -> Response:
        webhook, secret = webhooks.webhook_rotate_secret(actor=request.user, webhook_id=pk)
        return Response(_configured(webhook, secret))

    @extend_schema(
        summary="Agency admin: webhook calls of your agency that failed every try (newest first)",
        responses={200: DeadLetterSerializer(many=True), 403: ERROR},
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
            403: ERROR,
            404: OpenApiResponse(ERROR, description="Not a failed call of your agency."),
            409: ERROR,
        },
    )
    @action(
        detail=False,
        methods=["post"],
        url_path=r"dead-letters/(?P<letter_id>[^/]+)/retry",
        url_name="dead-letter-retry",
    )
    @takes_no_body
    def dead_letter_retry(self, request: Request, letter_id: str) -> Response:
        message = webhooks.webhook_dead_letter_retry(actor=request.user, dead_letter_id=letter_id)
        return Response(DeadLetterRetriedSerializer(message).data, status=status.HTTP_202_ACCEPTED)


# --- subscriptions ---------------------------------------------------------------------------------------------------


class _SubscriptionCriteriaSerializer(RefuseUnknownFields, serializers.Serializer):
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
    office = id_field(required=False, allow_null=True, help_text="Agency admins: an office of your agency.")
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
_SUBSCRIPTION_NOT_FOUND = OpenApiResponse(ERROR, description="No such subscription, or not one you manage.")


def _subscription_replay(request: Request, kwargs: dict[str, Any], subscription_id: str) -> Any:
    subscription = subscriptions.subscription_read(actor=request.user, subscription_id=subscription_id)
    return SubscriptionSerializer(subscription).data


@extend_schema_view(
    list=extend_schema(
        summary="Subscriptions you manage: your own; an agency admin, all of the agency's (recorded)",
        responses=SubscriptionSerializer(many=True),
    ),
    create=extend_schema(
        summary="Subscribe yourself (or, as an agency admin, an office or person of your agency) to matching items",
        request=SubscriptionCreateSerializer,
        responses={201: SubscriptionSerializer, 400: ERROR, 403: ERROR, 409: ERROR},
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
        responses={200: SubscriptionSerializer, 400: ERROR, 404: _SUBSCRIPTION_NOT_FOUND, 409: ERROR},
    ),
    partial_update=extend_schema(
        summary="Change some of a subscription's criteria, or switch it off and on",
        parameters=[_SUBSCRIPTION_ID],
        request=SubscriptionChangeSerializer,
        responses={200: SubscriptionSerializer, 400: ERROR, 404: _SUBSCRIPTION_NOT_FOUND, 409: ERROR},
    ),
    destroy=extend_schema(
        summary="Delete a subscription (routing stops using it at once)",
        parameters=[_SUBSCRIPTION_ID],
        responses={204: None, 404: _SUBSCRIPTION_NOT_FOUND},
    ),
)
class SubscriptionViewSet(viewsets.GenericViewSet):
    """Which items an agency's offices and people receive, by criteria; scoped by
    ``messaging.delivery.subscriptions.subscriptions_visible_to``. An API key needs read (to list) or write (to
    change) for its own account's subscriptions, or admin for all of its agency's."""

    queryset = Subscription.objects.none()  # names the model for the schema and denial records; see get_queryset
    serializer_class = SubscriptionSerializer
    filter_backends: list[Any] = []
    lookup_value_regex = "[^/]+"
    api_key_admin_scope = True

    def get_queryset(self) -> QuerySet[Subscription]:
        return subscriptions.subscriptions_visible_to(self.request.user)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset()) or []
        subscriptions.subscription_list(actor=request.user, subscriptions=page)
        return self.get_paginated_response(SubscriptionSerializer(page, many=True).data)

    @idempotent("messaging.subscription", replay=_subscription_replay)
    def create(self, request: Request) -> Response:
        if selectors.content_membership(request.user) is None:  # refused before the body is judged
            raise PermissionDenied("Only members who receive items may have subscriptions.")
        subscription = subscriptions.subscription_create(
            actor=request.user, **validated(SubscriptionCreateSerializer, request.data)
        )
        return Response(SubscriptionSerializer(subscription).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, pk: str) -> Response:
        subscription = subscriptions.subscription_read(actor=request.user, subscription_id=pk)
        return Response(SubscriptionSerializer(subscription).data)

    @idempotent("messaging.subscription", replay=_subscription_replay)
    def update(self, request: Request, pk: str) -> Response:
        values = validated(SubscriptionChangeSerializer, request.data)
        # A whole new set of criteria: whatever is left out matches anything.
        values = dict.fromkeys(subscriptions.CRITERIA, "") | {"is_active": True} | values
        subscription = subscriptions.subscription_update(actor=request.user, subscription_id=pk, **values)
        return Response(SubscriptionSerializer(subscription).data)

    @idempotent("messaging.subscription", replay=_subscription_replay)
    def partial_update(self, request: Request, pk: str) -> Response:
        values = validated(SubscriptionChangeSerializer, request.data)
        subscription = subscriptions.subscription_update(actor=request.user, subscription_id=pk, **values)
        return Response(SubscriptionSerializer(subscription).data)

    def destroy(self, request: Request, pk: str) -> Response:
        subscriptions.subscription_delete(actor=request.user, subscription_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
