from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from agencies import views as agencies_views
from agencies.api import AgencyViewSet, OfficeViewSet
from isn import health, views

api_v1 = DefaultRouter(trailing_slash=True)
api_v1.include_root_view = False
api_v1.register("agencies", AgencyViewSet, basename="agency")
api_v1.register("offices", OfficeViewSet, basename="office")

portal = [
    path("", views.home, name="home"),
    path("directory/", agencies_views.directory, name="directory"),
]

urlpatterns = [
    path("", include((portal, "portal"))),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("api/v1/", include(api_v1.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]

admin.site.site_header = "ISN administration"
admin.site.site_title = "ISN"
