"""The root URLs: isn's own pages (sign-in, health, the admin, the API schema), and each app's, included by name."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from isn import health, metrics, twofactor, views
from isn.api import ApiNotFound

# The portal: server-rendered pages for signed-in members (agencies.portal.portal_view), in one namespace ("portal")
# whatever app serves them.
portal = [
    path("", include("agencies.portal_urls")),
    path("", include("messaging.portal_urls")),
]

urlpatterns = [
    path("", include((portal, "portal"))),
    path("audit/", include("audit.portal_urls")),
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
    # Prometheus, with the bearer token of ISN_METRICS_TOKEN; 404 while none is configured (isn.metrics).
    path("metrics", metrics.metrics, name="metrics"),
    path("api/v1/audit/", include("audit.urls")),
    path("api/v1/", include("agencies.urls")),
    path("api/v1/", include("messaging.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Open to anyone (SPECTACULAR_SETTINGS). The split view serves its start-up script as a file of its own, and our
    # template keeps its styles in a file, so the strict CSP holds on this page too.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="isn/api_docs.html"),
        name="api-docs",
    ),
    # Last: whatever else is under /api/ is a 404 answered by the API itself (counted, with its RateLimit headers).
    re_path(r"^api/", ApiNotFound.as_view(), name="api-not-found"),
]

# Every refused portal request is audited (the API's refusals are, in isn.api.exception_handler).
handler403 = "isn.views.permission_denied"
# A database out of reach is answered 503 (problem details under /api/), never a traceback or a 500.
handler500 = "isn.views.server_error"

admin.site.site_header = "ISN administration"
admin.site.site_title = "ISN"
