"""Who may hold content: the roles that never do, the members who may be told about an item, and the membership a
viewer reads content through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet

from agencies.models import Membership, Role
from agencies.selectors import membership_for

if TYPE_CHECKING:
    from typing import TypeAlias

    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    Viewer: TypeAlias = AbstractBaseUser | AnonymousUser

# Roles that never receive content, so are never routed to or notified (DESIGN.md: auditors see no content).
NO_CONTENT_ROLES = (Role.NATIONAL_AUDITOR, Role.REGIONAL_AUDITOR)
# Who stands for an agency when an item reaches it as a whole (no duty desk office, no office, no person).
AGENCY_LEVEL_ROLES = (Role.SUPERVISOR, Role.NATIONAL_FOCAL_POINT)


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
    """The viewer's membership when it may read content at all (an active member who is not an auditor), else None."""
    if isinstance(viewer, Reader):
        return viewer.membership
    membership = membership_for(viewer)
    if membership is None or membership.role in NO_CONTENT_ROLES:
        return None
    return membership


def content_people() -> QuerySet[Membership]:
    """Members who may be told about content: active, of an active agency, and not auditors."""
    return Membership.objects.filter(is_active=True, user__is_active=True, agency__is_active=True).exclude(
        role__in=NO_CONTENT_ROLES
    )
