from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from agencies import views as agencies_views
from agencies.api import AgencyViewSet, ApiKeyViewSet, OfficeViewSet
from audit import api as audit_api
from audit import views as audit_views
from isn import health, twofactor, views
from messaging import sharing_views
from messaging import views as messaging_views
from messaging.api import ItemViewSet, NotificationViewSet, SubscriptionViewSet, WebhookViewSet
from messaging.forwarding_api import ConsentViewSet
from messaging.rfis_api import RfiViewSet

api_v1 = DefaultRouter(trailing_slash=True)
api_v1.include_root_view = False
api_v1.register("agencies", AgencyViewSet, basename="agency")
api_v1.register("offices", OfficeViewSet, basename="office")
api_v1.register("api-keys", ApiKeyViewSet, basename="api-key")
api_v1.register("items", ItemViewSet, basename="item")
api_v1.register("notifications", NotificationViewSet, basename="notification")
api_v1.register("webhooks", WebhookViewSet, basename="webhook")
api_v1.register("subscriptions", SubscriptionViewSet, basename="subscription")
api_v1.register("rfis", RfiViewSet, basename="rfi")
api_v1.register("consents", ConsentViewSet, basename="consent")

audit_api_v1 = [
    path("events/", audit_api.AuditEventListView.as_view(), name="audit-event-list"),
    path("events/export/", audit_api.AuditEventExportView.as_view(), name="audit-event-export"),
    path("actors/<int:user_id>/timeline/", audit_api.ActorTimelineView.as_view(), name="audit-actor-timeline"),
    path("checkpoints/", audit_api.CheckpointListView.as_view(), name="audit-checkpoint-list"),
    path("status/", audit_api.ChainStatusView.as_view(), name="audit-status"),
    path("flags/", audit_api.FlagsView.as_view(), name="audit-flags"),
]

# The portal: server-rendered pages for signed-in members (agencies.portal.portal_view). /consents/<uuid>/ and
# /rfis/<uuid>/ are kept for the consent and RFI pages (names "consent" and "rfi": notifications link to them).
portal = [
    path("", agencies_views.home, name="home"),
    path("language/", agencies_views.set_language, name="language"),
    path("items/", messaging_views.inbox, name="inbox"),
    path("items/new/", messaging_views.compose, name="item_new"),
    path("items/<uuid:item_id>/", messaging_views.item_detail, name="item"),
    path("items/<uuid:item_id>/acknowledge/", messaging_views.item_acknowledge_view, name="item_acknowledge"),
    path("items/<uuid:item_id>/attachments/", messaging_views.item_attach, name="item_attach"),
    path(
        "items/<uuid:item_id>/attachments/<uuid:attachment_id>/",
        messaging_views.item_attachment,
        name="item_attachment",
    ),
    path("items/<uuid:item_id>/tracking/", messaging_views.item_tracking, name="item_tracking"),
    path("items/<uuid:item_id>/narrow/", messaging_views.item_narrow, name="item_narrow"),
    path("items/<uuid:item_id>/withdraw/", messaging_views.item_withdraw_view, name="item_withdraw"),
    path("items/<uuid:item_id>/forward/", sharing_views.item_forward_view, name="item_forward"),
    path("items/<uuid:item_id>/consent/", sharing_views.item_consent_view, name="item_consent"),
    path("consents/", sharing_views.consents_page, name="consents"),
    path("consents/<uuid:consent_id>/", sharing_views.consent_detail, name="consent"),
    path("consents/<uuid:consent_id>/approve/", sharing_views.consent_approve, name="consent_approve"),
    path("consents/<uuid:consent_id>/decline/", sharing_views.consent_decline_view, name="consent_decline"),
    path("consents/<uuid:consent_id>/cancel/", sharing_views.consent_cancel_view, name="consent_cancel"),
    path("rfis/", sharing_views.rfis_page, name="rfis"),
    path("rfis/new/", sharing_views.rfi_new, name="rfi_new"),
    path("rfis/<uuid:rfi_id>/", sharing_views.rfi_detail, name="rfi"),
    path("rfis/<uuid:rfi_id>/reply/", sharing_views.rfi_reply_view, name="rfi_reply"),
    path("rfis/<uuid:rfi_id>/close/", sharing_views.rfi_close_view, name="rfi_close"),
    path("notifications/", messaging_views.notifications_page, name="notifications"),
    path("notifications/<int:notification_id>/read/", messaging_views.notification_read, name="notification_read"),
    path("statistics/", messaging_views.statistics_page, name="statistics"),
    path("directory/", agencies_views.directory, name="directory"),
    path("account/", agencies_views.account, name="account"),
]

audit_portal = [
    path("", audit_views.events, name="events"),
    path("actors/<int:user_id>/", audit_views.timeline, name="timeline"),
    path("flags/", audit_views.flags, name="flags"),
]

urlpatterns = [
    path("", include((portal, "portal"))),
    path("audit/", include((audit_portal, "audit"))),
    path("accounts/login/", twofactor.LoginView.as_view(), name="login"),
    path("accounts/two-factor/", twofactor.second_factor, name="two_factor"),
    path("accounts/two-factor/enrol/", twofactor.enrol, name="two_factor_enrol"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="portal/password_change_done.html"),
        name="password_change_done",
    ),
    # One way in, with both factors and the lockout: the admin's own password-only form is not used.
    path("admin/login/", RedirectView.as_view(pattern_name="login", query_string=True)),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("api/v1/audit/", include(audit_api_v1)),
    path("api/v1/", include(api_v1.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file of its own, so the strict CSP holds on this page too.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
]

# Every refused portal request is audited (the API's refusals are, in isn.api.exception_handler).
handler403 = "isn.views.permission_denied"

admin.site.site_header = "ISN administration"
admin.site.site_title = "ISN"
