"""Messaging's REST API, mounted at /api/v1/ by ``isn.urls``."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import DefaultRouter

from messaging.api.consents import ConsentViewSet
from messaging.api.delivery import NotificationViewSet, SubscriptionViewSet, WebhookViewSet
from messaging.api.feed import ChangeFeedView
from messaging.api.items import ItemViewSet
from messaging.api.matches import HitViewSet, MatchViewSet
from messaging.api.rfis import RfiViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("items", ItemViewSet, basename="item")
router.register("notifications", NotificationViewSet, basename="notification")
router.register("webhooks", WebhookViewSet, basename="webhook")
router.register("subscriptions", SubscriptionViewSet, basename="subscription")
router.register("rfis", RfiViewSet, basename="rfi")
router.register("consents", ConsentViewSet, basename="consent")
router.register("matches", MatchViewSet, basename="match")
router.register("hits", HitViewSet, basename="hit")

urlpatterns = [*router.urls, path("changes/", ChangeFeedView.as_view(), name="change-list")]
