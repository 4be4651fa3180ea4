"""The audit trail's REST API, mounted at /api/v1/audit/ by ``isn.urls``."""

from __future__ import annotations

from django.urls import path

from audit import api

urlpatterns = [
    path("events/", api.AuditEventListView.as_view(), name="audit-event-list"),
    path("events/export/", api.AuditEventExportView.as_view(), name="audit-event-export"),
    path("actors/<int:user_id>/timeline/", api.ActorTimelineView.as_view(), name="audit-actor-timeline"),
    path("checkpoints/", api.CheckpointListView.as_view(), name="audit-checkpoint-list"),
    path("status/", api.ChainStatusView.as_view(), name="audit-status"),
    path("flags/", api.FlagsView.as_view(), name="audit-flags"),
]
