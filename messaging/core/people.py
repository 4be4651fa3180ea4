"""Who may hold content: the roles that never do, the members who may be told about an item, and the membership a
viewer reads content through."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import F, QuerySet
from django.utils import timezone

from agencies.models import NO_CONTENT_ROLES as NO_CONTENT_ROLES  # defined with the roles; re-exported here
from agencies.models import ApiKey, ApiKeyScope, Membership, Role
from agencies.selectors import membership_for
from messaging.core.release import Release

if TYPE_CHECKING:
    from typing import TypeAlias

    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    Viewer: TypeAlias = AbstractBaseUser | AnonymousUser

# Who stands for an agency when an item reaches it as a whole (no duty desk office, no office, no person).
AGENCY_LEVEL_ROLES = (Role.SUPERVISOR, Role.NATIONAL_FOCAL_POINT)
# An agency system (an API key's service account) is told, in the portal's notifications only, about what reaches its
# agency when its key may read: it can then read what it is told of. Audit keys are auditors; others cannot read.
SYSTEM_NOTIFIED_SCOPE = ApiKeyScope.READ


@dataclass(frozen=True)
class Reader:
    """Who is asking, resolved once: a member of an active agency who may read content (never an auditor).

    A service resolves its actor into a ``Reader`` (``reader_of``) and hands that down to the selectors, the sealing
    and the deliveries it calls, so one request asks "who is this?" once, whatever it goes on to do.
    """

    user: Any
    membership: Membership

    @property
    def pk(self) -> int:
        return self.user.pk

    @property
    def agency_id(self) -> int:
        return self.membership.agency_id

    @property
    def country(self) -> str:
        return self.membership.agency.country_id

    @property
    def role(self) -> str:
        return self.membership.role

    @property
    def office_id(self) -> int | None:
        return self.membership.office_id

    def originates(self, item: Any) -> bool:
        """Whether the reader's agency is the item's originating agency."""
        return self.agency_id == item.originator_agency_id


def reader_of(viewer: Viewer | Reader) -> Reader | None:
    """The viewer as a ``Reader``, or None when they may not read content at all. A ``Reader`` is returned as is."""
    if isinstance(viewer, Reader):
        return viewer
    membership = content_membership(viewer)
    return None if membership is None else Reader(user=viewer, membership=membership)


def content_membership(viewer: Viewer | Reader) -> Membership | None:
    """The viewer's membership when it may read content at all (an active member who is not an auditor), else None.

    Never for the platform's staff, whatever membership the database holds for them (``membership_for``)."""
    if isinstance(viewer, Reader):
        return viewer.membership
    membership = membership_for(viewer)
    if membership is None or membership.role in NO_CONTENT_ROLES:
        return None
    return membership


def content_people() -> QuerySet[Membership]:
    """Members who may be told about content: active, of an active agency, not auditors, not the platform's staff."""
    return Membership.objects.filter(
        is_active=True, user__is_active=True, agency__is_active=True, user__is_staff=False, user__is_superuser=False
    ).exclude(role__in=NO_CONTENT_ROLES)


def agency_systems(agency_ids: Collection[int]) -> list[tuple[int, int]]:
    """(agency id, service account id) of the agencies' systems that are told what reaches their agency: live keys
    with the read scope whose service account is an active member; see ``SYSTEM_NOTIFIED_SCOPE``."""
    keys = (
        ApiKey.objects.filter(
            agency_id__in=agency_ids,
            agency__is_active=True,
            revoked_at__isnull=True,
            expires_at__gt=timezone.now(),
            user__is_active=True,
            user__membership__is_active=True,
            user__membership__agency_id=F("agency_id"),
        )
        .exclude(user__membership__role__in=NO_CONTENT_ROLES)
        .values_list("agency_id", "user_id", "scopes")
    )
    # Scopes are a JSON list: filtered here, since not every database can look inside one (SQLite for make run).
    return [(agency_id, user_id) for agency_id, user_id, scopes in keys if SYSTEM_NOTIFIED_SCOPE in scopes]


def readers_among(release: Release, user_ids: Iterable[int]) -> set[int]:
    """Those of ``user_ids`` who may read the item whose release this is, now: members who may read content at all,
    by ``Release.member_may_read``. Every channel that tells people of an item asks this first (notifications, FLASH
    escalation), so a person outside an office-only forward or beside a named person is never told of it."""
    wanted = set(user_ids)
    if not wanted:
        return set()
    members = content_people().filter(user_id__in=wanted)
    return {
        user_id
        for user_id, agency_id, office_id, country in members.values_list(
            "user_id", "agency_id", "office_id", "agency__country_id"
        )
        if release.member_may_read(user_id=user_id, agency_id=agency_id, office_id=office_id, country=country)
    }
