"""The items filter shared by the API and the portal's inbox: it narrows a queryset a selector already scoped."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from agencies.models import CountryCode
from messaging.models import Category, Item, ItemStatus, Priority
from messaging.selectors.items import unread_by


class ItemFilter(django_filters.FilterSet):
    priority = django_filters.ChoiceFilter(choices=Priority.choices)
    category = django_filters.ChoiceFilter(choices=Category.choices)
    originator_country = django_filters.ChoiceFilter(choices=CountryCode.choices)
    status = django_filters.ChoiceFilter(choices=ItemStatus.choices)
    created = django_filters.DateFromToRangeFilter(
        field_name="created_at", label="Created on or after (created_after) / on or before (created_before)"
    )
    unread = django_filters.BooleanFilter(method="filter_unread", label="Only items you have (not) opened")

    class Meta:
        model = Item
        fields = ["priority", "category", "originator_country", "status", "created", "unread"]

    def filter_unread(self, queryset: QuerySet[Item], name: str, value: bool) -> QuerySet[Item]:
        unread = unread_by(self.request.user)
        return queryset.filter(unread) if value else queryset.exclude(unread)
