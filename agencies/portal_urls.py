"""The agencies' portal pages, in the portal's namespace ("portal") given by ``isn.urls``."""

from __future__ import annotations

from django.urls import path

from agencies import views

urlpatterns = [
    path("", views.home, name="home"),
    path("language/", views.set_language, name="language"),
    path("directory/", views.directory, name="directory"),
    path("account/", views.account, name="account"),
    path("access-review/", views.access_review, name="access_review"),
]
