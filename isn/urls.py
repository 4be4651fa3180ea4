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
from messaging.api import ItemViewSet, NotificationViewSet, WebhookViewSet

api_v1 = DefaultRouter(trailing_slash=True)
api_v1.include_root_view = False
api_v1.register("agencies", AgencyViewSet, basename="agency")
api_v1.register("offices", OfficeViewSet, basename="office")
api_v1.register("api-keys", ApiKeyViewSet, basename="api-key")
api_v1.register("items", ItemViewSet, basename="item")
api_v1.register("notifications", NotificationViewSet, basename="notification")
api_v1.register("webhooks", WebhookViewSet, basename="webhook")

audit_api_v1 = [
    path("events/", audit_api.AuditEventListView.as_view(), name="audit-event-list"),
    path("events/export/", audit_api.AuditEventExportView.as_view(), name="audit-event-export"),
    path("actors/<int:user_id>/timeline/", audit_api.ActorTimelineView.as_view(), name="audit-actor-timeline"),
    path("checkpoints/", audit_api.CheckpointListView.as_view(), name="audit-checkpoint-list"),
    path("status/", audit_api.ChainStatusView.as_view(), name="audit-status"),
    path("flags/", audit_api.FlagsView.as_view(), name="audit-flags"),
]

portal = [
    path("", views.home, name="home"),
    path("directory/", agencies_views.directory, name="directory"),
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
