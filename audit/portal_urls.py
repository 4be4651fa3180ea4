"""The auditors' workspace in the portal, mounted at /audit/ by ``isn.urls`` (namespace "audit")."""

from __future__ import annotations

from django.urls import path

from audit import views

app_name = "audit"

urlpatterns = [
    path("", views.events, name="events"),
    path("actors/<int:user_id>/", views.timeline, name="timeline"),
    path("flags/", views.flags, name="flags"),
]
