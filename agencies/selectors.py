"""Reads of the directory, always scoped to a viewer. Members of the network see the whole directory; others nothing."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import OuterRef, Prefetch, Q, QuerySet, Subquery
from django.utils import timezone

from agencies.models import (
    NO_CONTENT_ROLES,
    Agency,
    ApiKey,
    ApiKeyScope,
    Country,
    CountryCode,
    Membership,
    MembershipProposal,
    Office,
    ProposalKind,
    Role,
    SyncDeclaration,
    SyncDeclarationStatus,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
    from django.db.models.expressions import Combinable

    Viewer = AbstractBaseUser | AnonymousUser

_CACHE_ATTRIBUTE = "_isn_membership"


def is_platform_staff(user: object) -> bool:
    """Whether ``user`` is one of the platform's staff (Django's ``is_staff`` or ``is_superuser``)."""
    return bool(getattr(user, "is_staff", False) or getattr(user, "is_superuser", False))


def membership_for(viewer: Viewer) -> Membership | None:
    """The viewer's active membership in an active agency, or None. Cached on the user object for the request.

    Platform staff hold no content role: a content-bearing membership of a staff account (one written straight into
    the database, or a member later made staff) counts for nothing, so it reads no item and administers no agency."""
    if not viewer.is_authenticated or not viewer.is_active:
        return None
    if hasattr(viewer, _CACHE_ATTRIBUTE):
        return getattr(viewer, _CACHE_ATTRIBUTE)
    membership = (
        Membership.objects.select_related("agency__country", "office")
        .filter(user_id=viewer.pk, is_active=True, agency__is_active=True)
        .first()
    )
    if membership is not None and membership.role not in NO_CONTENT_ROLES and is_platform_staff(viewer):
        membership = None
    setattr(viewer, _CACHE_ATTRIBUTE, membership)
    return membership


def country_scope(viewer: Viewer, *, roles: Collection[str], network_wide: Collection[str] = ()) -> str | None:
    """How far the viewer's role reaches across countries: ``""`` for the whole network, a country code for their own
    country, None for nowhere. The regional auditor (UNODC) reaches the whole network, and so does a member of UNODC
    with a role in ``network_wide``; a member of a state with a role in ``roles`` reaches their own country."""
    membership = membership_for(viewer)
    if membership is None:
        return None
    country, role = membership.agency.country_id, membership.role
    if country == CountryCode.UNODC:
        return "" if role == Role.REGIONAL_AUDITOR or role in network_wide else None
    return country if role in roles else None


def delivery_admin_membership(viewer: Viewer) -> Membership | None:
    """The viewer's membership when they manage their agency's webhooks and subscriptions, else None: an agency admin,
    or an agency system whose live key has the admin scope. API keys and people stay with agency admins alone."""
    membership = membership_for(viewer)
    if membership is None or membership.role == Role.AGENCY_ADMIN:
        return membership
    if membership.role != Role.OFFICER:  # a key's service account is an officer of its agency (api_key_issue)
        return None
    # None for a person (Django's "no related object" is an AttributeError); cached with a key's user by authentication.
    key: ApiKey | None = getattr(viewer, "api_key", None)
    if key is None:
        return None
    live = key.revoked_at is None and key.expires_at > timezone.now() and key.agency_id == membership.agency_id
    return membership if live and ApiKeyScope.ADMIN in key.scopes else None


def is_network_member(viewer: Viewer) -> bool:
    return membership_for(viewer) is not None


def countries_visible_to(viewer: Viewer) -> QuerySet[Country]:
    if not is_network_member(viewer):
        return Country.objects.none()
    return Country.objects.all()


def agencies_visible_to(viewer: Viewer) -> QuerySet[Agency]:
    if not is_network_member(viewer):
        return Agency.objects.none()
    return Agency.objects.filter(is_active=True).select_related("country")


def offices_visible_to(viewer: Viewer) -> QuerySet[Office]:
    """Active offices of active agencies, each with its active counterparts prefetched (a fixed number of queries)."""
    if not is_network_member(viewer):
        return Office.objects.none()
    active_counterparts = Office.objects.filter(is_active=True, agency__is_active=True).select_related(
        "agency__country"
    )
    return (
        Office.objects.filter(is_active=True, agency__is_active=True)
        .select_related("agency__country")
        .prefetch_related(Prefetch("counterparts", queryset=active_counterparts))
    )


def api_keys_visible_to(viewer: Viewer) -> QuerySet[ApiKey]:
    """Keys (never their secrets) to the people who manage them: an agency admin sees their own agency's keys but its
    audit keys; an auditor the audit keys of their own reach (a national auditor their country's, whoever of its
    auditors issued them; the regional auditor the network-wide ones). Nobody else sees any."""
    membership = membership_for(viewer)
    if membership is None:
        return ApiKey.objects.none()
    audit_keys = Q(scopes__contains=[ApiKeyScope.AUDIT])
    if membership.role == Role.AGENCY_ADMIN:
        keys = ApiKey.objects.filter(agency_id=membership.agency_id).exclude(audit_keys)
    else:
        country = country_scope(viewer, roles=(Role.NATIONAL_AUDITOR,))
        if country is None:
            return ApiKey.objects.none()
        if country == "":
            keys = ApiKey.objects.filter(audit_keys, user__membership__role=Role.REGIONAL_AUDITOR)
        else:
            keys = ApiKey.objects.filter(
                audit_keys, agency__country_id=country, user__membership__role=Role.NATIONAL_AUDITOR
            )
    declarations = SyncDeclaration.objects.filter(key_id=OuterRef("pk")).values("daily_reads")
    return keys.select_related("agency").annotate(
        sync_daily_reads=Subquery(declarations.filter(status=SyncDeclarationStatus.APPROVED)[:1]),
        sync_pending_daily_reads=Subquery(declarations.filter(status=SyncDeclarationStatus.PENDING)[:1]),
    )


def sync_declarations_visible_to(viewer: Viewer) -> QuerySet[SyncDeclaration]:
    """An agency admin sees their agency's declarations, a national auditor their country's, the regional auditor all;
    nobody else sees any. Newest first."""
    membership = membership_for(viewer)
    declarations = SyncDeclaration.objects.select_related("key__agency", "declared_by", "decided_by")
    if membership is None:
        return declarations.none()
    if membership.role == Role.AGENCY_ADMIN:
        return declarations.filter(key__agency_id=membership.agency_id)
    country = country_scope(viewer, roles=(Role.NATIONAL_AUDITOR,))
    if country is None:
        return declarations.none()
    return declarations if country == "" else declarations.filter(key__agency__country_id=country)


def sync_declaration_in_force(at: datetime | Combinable, *, prefix: str = "") -> Q:
    """The condition on a declaration (through ``prefix``, e.g. ``"key__sync_declarations__"``) of being in force
    at ``at``: approved by then and not replaced by then. Negation-free, so that within one ``filter()`` every part
    of it applies to the same declaration even across a to-many relation."""
    return Q(
        **{
            f"{prefix}status__in": [SyncDeclarationStatus.APPROVED, SyncDeclarationStatus.REPLACED],
            f"{prefix}decided_at__lte": at,
        }
    ) & (Q(**{f"{prefix}replaced_at__isnull": True}) | Q(**{f"{prefix}replaced_at__gt": at}))


def membership_proposals_visible_to(viewer: Viewer) -> QuerySet[MembershipProposal]:
    """Proposals to the people who may propose or decide them: an agency admin sees their agency's, a national focal
    point every agency's of their country, the platform's staff the first-admin proposals (theirs to make); nobody
    else any. A proposal of another country is, to them, one that does not exist."""
    proposals = MembershipProposal.objects.select_related("agency", "subject", "office", "proposed_by", "decided_by")
    if is_platform_staff(viewer) and viewer.is_authenticated and viewer.is_active:
        return proposals.filter(kind=ProposalKind.FIRST_ADMIN)
    membership = membership_for(viewer)
    if membership is None:
        return proposals.none()
    if membership.role == Role.AGENCY_ADMIN:
        return proposals.filter(agency_id=membership.agency_id)
    if membership.role == Role.NATIONAL_FOCAL_POINT:
        return proposals.filter(agency__country_id=membership.agency.country_id)
    return proposals.none()


def memberships_visible_to(viewer: Viewer) -> QuerySet[Membership]:
    """The memberships an agency admin manages: their own agency's (API keys' service accounts aside); none to
    anyone else."""
    membership = membership_for(viewer)
    if membership is None or membership.role != Role.AGENCY_ADMIN:
        return Membership.objects.none()
    return (
        Membership.objects.filter(agency_id=membership.agency_id, user__api_key__isnull=True)
        .select_related("user", "agency", "office")
        .order_by("user__username")
    )
