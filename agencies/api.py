"""Read-only directory API: /api/v1/agencies/ and /api/v1/offices/."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet
from rest_framework import serializers, viewsets

from agencies.models import Agency, AgencyKind, CountryCode, Office, OfficeKind
from agencies.selectors import agencies_visible_to, offices_visible_to


class CountrySummarySerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class AgencySerializer(serializers.ModelSerializer):
    country = CountrySummarySerializer(read_only=True)

    class Meta:
        model = Agency
        fields = ["id", "name", "short_name", "kind", "country"]
        read_only_fields = fields


class OfficeSummarySerializer(serializers.ModelSerializer):
    agency = serializers.CharField(source="agency.short_name", read_only=True)
    country = serializers.CharField(source="agency.country_id", read_only=True)

    class Meta:
        model = Office
        fields = ["id", "name", "border_crossing", "agency", "country"]
        read_only_fields = fields


class OfficeSerializer(serializers.ModelSerializer):
    agency = AgencySerializer(read_only=True)
    counterparts = OfficeSummarySerializer(many=True, read_only=True)

    class Meta:
        model = Office
        fields = [
            "id",
            "name",
            "kind",
            "agency",
            "border_crossing",
            "province",
            "opens_at",
            "closes_at",
            "contact_phone",
            "contact_email",
            "counterparts",
        ]
        read_only_fields = fields


class AgencyFilter(django_filters.FilterSet):
    country = django_filters.ChoiceFilter(field_name="country_id", choices=CountryCode.choices)
    kind = django_filters.ChoiceFilter(choices=AgencyKind.choices)

    class Meta:
        model = Agency
        fields = ["country", "kind"]


class OfficeFilter(django_filters.FilterSet):
    country = django_filters.ChoiceFilter(field_name="agency__country_id", choices=CountryCode.choices)
    agency = django_filters.NumberFilter(field_name="agency_id")
    kind = django_filters.ChoiceFilter(choices=OfficeKind.choices)
    q = django_filters.CharFilter(method="search", label="Name, border crossing or province contains")

    class Meta:
        model = Office
        fields = ["country", "agency", "kind", "q"]

    def search(self, queryset: QuerySet[Office], name: str, value: str) -> QuerySet[Office]:
        return queryset.filter(
            Q(name__icontains=value) | Q(border_crossing__icontains=value) | Q(province__icontains=value)
        )


class AgencyViewSet(viewsets.ReadOnlyModelViewSet):
    """Member agencies of the network."""

    serializer_class = AgencySerializer
    filterset_class = AgencyFilter

    def get_queryset(self) -> QuerySet[Agency]:
        return agencies_visible_to(self.request.user)


class OfficeViewSet(viewsets.ReadOnlyModelViewSet):
    """Border Liaison Offices and duty desks, with their counterpart offices across the border."""

    serializer_class = OfficeSerializer
    filterset_class = OfficeFilter

    def get_queryset(self) -> QuerySet[Office]:
        return offices_visible_to(self.request.user)
