"""Every change made through the Django admin is an audit event, written in the admin's own transaction.

The mixin lives in ``isn`` so that ``agencies`` can use it without importing the audit app; it records through the
audit port. Events name the changed fields, never their values (a field may hold a password hash or a contact).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib import admin
from django.db import transaction
from django.db.models import Model
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse

import isn.audit

# construct_change_message sees the form; log_change does not. The field names travel between them on the request.
_CHANGED_FIELDS = "_isn_admin_changed_fields"


class AuditedAdminMixin:
    """Records ``admin.<app>.<model>.add|change|delete`` for every object the admin writes."""

    def audit_target_country(self, obj: Model) -> str:
        """The country that owns ``obj``, so that country's auditor sees the change; override where it is indirect."""
        value = getattr(obj, "country_id", "")
        return value if isinstance(value, str) else ""

    def _audit(self, request: HttpRequest, obj: Model, verb: str, details: dict[str, Any]) -> None:
        isn.audit.record(
            action=f"admin.{obj._meta.app_label}.{obj._meta.model_name}.{verb}",
            actor=request.user,
            target=obj,
            target_country=self.audit_target_country(obj),
            details=details,
        )

    def construct_change_message(
        self, request: HttpRequest, form: BaseForm, formsets: Iterable[Any] | None, add: bool = False
    ) -> Any:
        fields = list(form.changed_data)
        for formset in formsets or ():
            if formset.has_changed():
                fields.append(formset.model._meta.model_name)  # an inline changed: name it, not its rows
        setattr(request, _CHANGED_FIELDS, fields)
        return super().construct_change_message(request, form, formsets, add)  # type: ignore[misc]

    def log_addition(self, request: HttpRequest, obj: Model, message: Any) -> Any:
        self._audit(request, obj, "add", {"fields": getattr(request, _CHANGED_FIELDS, [])})
        return super().log_addition(request, obj, message)  # type: ignore[misc]

    def log_change(self, request: HttpRequest, obj: Model, message: Any) -> Any:
        self._audit(request, obj, "change", {"fields": getattr(request, _CHANGED_FIELDS, [])})
        return super().log_change(request, obj, message)  # type: ignore[misc]

    def log_deletions(self, request: HttpRequest, queryset: Iterable[Model]) -> Any:
        objects = list(queryset)  # the action passes a queryset that is about to be emptied
        for obj in objects:
            self._audit(request, obj, "delete", {})
        return super().log_deletions(request, objects)  # type: ignore[misc]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        # Bulk actions (delete_selected) and list_editable write from here without a transaction of their own; the
        # audit event must commit or fail with the change.
        with transaction.atomic():
            return super().changelist_view(request, extra_context)  # type: ignore[misc]


class AuditedModelAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """The base of every ModelAdmin in ISN."""


class ReadOnlyAuditedModelAdmin(AuditedModelAdmin):
    """Viewable by whoever may view it; nobody, superusers included, may add, change or delete through the admin."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
