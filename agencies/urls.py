"""The agencies' REST API, mounted at /api/v1/ by ``isn.urls``."""

from __future__ import annotations

from rest_framework.routers import DefaultRouter

from agencies.api import (
    AgencyViewSet,
    ApiKeyViewSet,
    EnrolmentCodeViewSet,
    MembershipProposalViewSet,
    MembershipViewSet,
    OfficeViewSet,
    SyncDeclarationViewSet,
)
from agencies.reviews_api import AccessReviewViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("agencies", AgencyViewSet, basename="agency")
router.register("offices", OfficeViewSet, basename="office")
router.register("api-keys", ApiKeyViewSet, basename="api-key")
router.register("enrolment-codes", EnrolmentCodeViewSet, basename="enrolment-code")
router.register("sync-declarations", SyncDeclarationViewSet, basename="sync-declaration")
router.register("memberships", MembershipViewSet, basename="membership")
router.register("membership-proposals", MembershipProposalViewSet, basename="membership-proposal")
router.register("access-reviews", AccessReviewViewSet, basename="access-review")

urlpatterns = router.urls
