"""Access reviews in the API (/api/v1/access-reviews/): the memberships a reviewer confirms, soonest due first, and
their confirmation. People only, in person: a confirmation is an agency admin's own word, never a system's."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from agencies.models import Agency, Membership, Role
from agencies.permissions import IsSignedInPerson
from agencies.reviews import MAX_BATCH, due_at, memberships_confirm, reviews_visible_to
from agencies.selectors import membership_for
from isn.errors import InvalidInput, NotFound
from isn.input import RefuseUnknownFields


class IsReviewer(BasePermission):
    """An agency admin, or a national focal point (who confirms their country's agency admins)."""

    message = "Only an agency admin (or, for agency admins, a national focal point) may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        membership = membership_for(request.user) if request.user else None
        return membership is not None and membership.role in (Role.AGENCY_ADMIN, Role.NATIONAL_FOCAL_POINT)


class AccessReviewSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    agency = serializers.CharField(source="agency.short_name", read_only=True)
    country = serializers.CharField(source="agency.country_id", read_only=True)
    confirmed_by = serializers.SerializerMethodField()
    due_at = serializers.SerializerMethodField()

    class Meta:
        model = Membership
        fields = ["id", "username", "agency", "country", "role", "is_active", "confirmed_at", "confirmed_by", "due_at"]
        read_only_fields = fields

    def get_confirmed_by(self, membership: Membership) -> str | None:
        """Who last confirmed it; null: ISN itself, when the membership was created or the review began."""
        return membership.confirmed_by.get_username() if membership.confirmed_by else None

    def get_due_at(self, membership: Membership) -> datetime:
        """When it lapses unless confirmed again: the membership is then suspended and its person cut off."""
        return due_at(membership)


class AccessReviewConfirmSerializer(RefuseUnknownFields, serializers.Serializer):
    memberships = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        min_length=1,
        max_length=MAX_BATCH,
        help_text="Ids of memberships you review, as listed by GET /api/v1/access-reviews/.",
    )


class AccessReviewViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Agency admins, in person: every member of their agency with when they were last confirmed and when the review
    lapses (then the membership is suspended and its person loses sessions, keys and subscriptions); national focal
    points: the agency admins of their country. Nobody reviews themselves. Confirm any of them with ``confirm``."""

    serializer_class = AccessReviewSerializer
    permission_classes = [IsSignedInPerson, IsReviewer]

    def get_queryset(self) -> QuerySet[Membership]:
        return reviews_visible_to(self.request.user)

    @extend_schema(request=AccessReviewConfirmSerializer, responses={200: AccessReviewSerializer(many=True)})
    @action(detail=False, methods=["post"])
    def confirm(self, request: Request) -> Response:
        """Confirm that these people still need their place: each one's review period starts again. All or nothing."""
        incoming = AccessReviewConfirmSerializer(data=request.data)
        if not incoming.is_valid():
            raise InvalidInput("The confirmation is not valid.", extra={"fields": incoming.errors})
        ids = set(incoming.validated_data["memberships"])
        by_agency: dict[int, list[int]] = {}
        for pk, agency_id in self.get_queryset().filter(pk__in=ids).values_list("pk", "agency_id"):
            by_agency.setdefault(agency_id, []).append(pk)
        if sum(len(found) for found in by_agency.values()) != len(ids):
            raise NotFound("No such membership among those you review.")
        confirmed: list[Membership] = []
        with transaction.atomic():
            for agency in Agency.objects.filter(pk__in=by_agency).order_by("pk"):
                result = memberships_confirm(actor=request.user, agency=agency, membership_ids=by_agency[agency.pk])
                confirmed.extend(result.memberships)
        rows = self.get_queryset().filter(pk__in=[m.pk for m in confirmed])
        return Response(AccessReviewSerializer(rows, many=True).data)
