"""The auditors' search: one FilterSet for the API and the portal form, applied to an already scoped queryset."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from agencies.models import CountryCode
from audit.models import AuditEvent, Outcome
from isn.input import IdFilter, MomentFilter, within_id_range


def _is_user_id(value: str) -> bool:
    return value.isascii() and value.isdigit()


def _actor_id_in_range(value: str) -> None:
    """An actor given as a user id names one the database can hold (a label is any text)."""
    if _is_user_id(value.strip()):
        within_id_range(int(value))


class AuditEventFilter(django_filters.FilterSet):
    actor = django_filters.CharFilter(
        method="filter_actor", validators=[_actor_id_in_range], label=_("Actor (user id or username)")
    )
    agency = IdFilter(field_name="actor_agency_id", label=_("Actor's agency id"))
    country = django_filters.ChoiceFilter(
        method="filter_country", choices=CountryCode.choices, label=_("Country (actor's or target's)")
    )
    action = django_filters.CharFilter(method="filter_action", label=_("Action (exact, or a prefix ending in '.')"))
    target_type = django_filters.CharFilter(field_name="target_type", label=_("Target type"))
    target_id = django_filters.CharFilter(field_name="target_id", label=_("Target id"))
    outcome = django_filters.ChoiceFilter(field_name="outcome", choices=Outcome.choices, label=_("Outcome"))
    since = MomentFilter(field_name="created_at", lookup_expr="gte", label=_("From (ISO 8601)"))
    until = MomentFilter(field_name="created_at", lookup_expr="lt", label=_("Until (ISO 8601)"))

    class Meta:
        model = AuditEvent
        fields: list[str] = []

    def filter_actor(self, queryset: QuerySet[AuditEvent], name: str, value: str) -> QuerySet[AuditEvent]:
        value = value.strip()
        if _is_user_id(value):
            return queryset.filter(Q(actor_user_id=int(value)) | Q(actor_label=value))
        return queryset.filter(actor_label=value)

    def filter_country(self, queryset: QuerySet[AuditEvent], name: str, value: str) -> QuerySet[AuditEvent]:
        return queryset.filter(Q(actor_country=value) | Q(target_country=value))

    def filter_action(self, queryset: QuerySet[AuditEvent], name: str, value: str) -> QuerySet[AuditEvent]:
        value = value.strip()
        if value.endswith("*"):
            value = value[:-1]
        if value.endswith("."):
            return queryset.filter(action__startswith=value)
        return queryset.filter(action=value)

    def used(self) -> dict[str, Any]:
        """The filters the caller actually set, for the audit event that records this search."""
        return {name: value for name, value in self.form.cleaned_data.items() if value is not None and value != ""}
