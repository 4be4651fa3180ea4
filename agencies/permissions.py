from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from agencies.models import ApiKey, ApiKeyScope, Role
from agencies.selectors import delivery_admin_membership, is_network_member, membership_for


class IsNetworkMember(BasePermission):
    """Default for every API view: an active member of an active agency, nobody else."""

    message = "You need an active membership of an ISN member agency."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and is_network_member(request.user))


class ApiKeyScopes(BasePermission):
    """An API key does only what its scopes allow: reading needs read (or audit), anything else needs write; on the
    views of an agency's delivery settings (``api_key_admin_scope = True``: webhooks, subscriptions) admin allows both.
    """

    message = "This API key's scopes do not allow this request."

    def has_permission(self, request: Request, view: Any) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            return True  # a signed-in person: their role decides
        if getattr(view, "api_key_admin_scope", False) and ApiKeyScope.ADMIN in key.scopes:
            return True
        if request.method in SAFE_METHODS:
            return ApiKeyScope.READ in key.scopes or ApiKeyScope.AUDIT in key.scopes
        return ApiKeyScope.WRITE in key.scopes


class IsSignedInPerson(BasePermission):
    """A person signed in to the portal, not an agency system: keys do not manage keys."""

    message = "Only a signed-in person may do this, not an API key."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and not isinstance(request.auth, ApiKey))


class IsAgencyAdmin(BasePermission):
    """An agency admin (of their own agency, which the views' selectors and services then enforce)."""

    message = "Only an agency admin may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        membership = membership_for(request.user) if request.user else None
        return membership is not None and membership.role == Role.AGENCY_ADMIN


class IsAgencyAdminOrAuditor(BasePermission):
    """An agency admin (who declares sync keys) or an auditor (who approves them, or sees that they were)."""

    message = "Only an agency admin or an auditor may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        membership = membership_for(request.user) if request.user else None
        return membership is not None and membership.role in (
            Role.AGENCY_ADMIN,
            Role.NATIONAL_AUDITOR,
            Role.REGIONAL_AUDITOR,
        )


class ProposesOrDecides(BasePermission):
    """Who takes part in the two-person rules: an agency admin, a national focal point, or the platform's operator
    (who proposes an agency's first admin; the views' selectors and services judge each proposal)."""

    message = "Only an agency admin, a national focal point or the platform's operator may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            return False
        if getattr(user, "is_superuser", False):
            return True
        membership = membership_for(user)
        return membership is not None and membership.role in (Role.AGENCY_ADMIN, Role.NATIONAL_FOCAL_POINT)


class ManagesAgencyDelivery(BasePermission):
    """An agency admin, or an agency system whose key has the admin scope: the agency's webhooks and subscriptions."""

    message = "Only an agency admin, or an API key with the admin scope, may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user) and delivery_admin_membership(request.user) is not None
