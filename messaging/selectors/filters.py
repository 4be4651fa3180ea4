"""The items filter shared by the API and the portal's inbox: it narrows a queryset a selector already scoped."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import django_filters
from django.db.models import QuerySet

from agencies.models import CountryCode
from isn.input import MomentFilter
from messaging.models import Category, Item, ItemStatus, Priority
from messaging.selectors.items import unread_by

DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


class ItemFilter(django_filters.FilterSet):
    priority = django_filters.ChoiceFilter(choices=Priority.choices)
    category = django_filters.ChoiceFilter(choices=Category.choices)
    originator_country = django_filters.ChoiceFilter(choices=CountryCode.choices)
    status = django_filters.ChoiceFilter(choices=ItemStatus.choices)
    created_after = MomentFilter(
        field_name="created_at", lookup_expr="gte", label="Created at or after this time (ISO 8601; a date: 00:00 UTC)"
    )
    created_before = MomentFilter(
        field_name="created_at", method="filter_before", label="Created at or before this time (a date: all that day)"
    )
    updated_after = MomentFilter(
        field_name="updated_at", lookup_expr="gte", label="Changed at or after this time (ISO 8601)"
    )
    updated_before = MomentFilter(
        field_name="updated_at", method="filter_before", label="Changed at or before this time (a date: all that day)"
    )
    unread = django_filters.BooleanFilter(method="filter_unread", label="Only items you have (not) opened")

    class Meta:
        model = Item
        fields = [
            "priority",
            "category",
            "originator_country",
            "status",
            "created_after",
            "created_before",
            "updated_after",
            "updated_before",
            "unread",
        ]

    def filter_before(self, queryset: QuerySet[Item], name: str, value: datetime) -> QuerySet[Item]:
        """At or before a moment; a bare date means the whole of that day, as the inbox's date fields send it."""
        raw = str(self.data.get(name.replace("_at", "_before"), ""))
        if DATE_ONLY.fullmatch(raw.strip()):
            return queryset.filter(**{f"{name}__lt": value + timedelta(days=1)})
        return queryset.filter(**{f"{name}__lte": value})

    def filter_unread(self, queryset: QuerySet[Item], name: str, value: bool) -> QuerySet[Item]:
        unread = unread_by(self.request.user)
        return queryset.filter(unread) if value else queryset.exclude(unread)
