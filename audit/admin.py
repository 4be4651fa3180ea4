"""The audit trail in the Django admin: readable by whoever may view it, writable by nobody, superusers included."""

from __future__ import annotations

from django.contrib import admin

from audit.models import AuditArchive, AuditCheckpoint, AuditEvent
from isn.admin_audit import ReadOnlyAuditedModelAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAuditedModelAdmin):
    list_display = ["id", "created_at", "actor_label", "actor_country", "action", "target_type", "target_id", "outcome"]
    list_filter = ["outcome", "actor_country", "target_country"]
    show_full_result_count = False  # counting millions of rows on every page view is not worth it


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAuditedModelAdmin):
    list_display = ["last_event_id", "chain_hash", "created_at", "public_key"]


@admin.register(AuditArchive)
class AuditArchiveAdmin(ReadOnlyAuditedModelAdmin):
    list_display = ["first_event_id", "last_event_id", "event_count", "file_name", "created_at"]
