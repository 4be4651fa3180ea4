"""Agency admins issue the one-time codes with which their people enrol a first second factor (``isn.enrolment``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import transaction

from agencies.models import Membership, Role
from agencies.selectors import membership_for
from isn import audit
from isn.enrolment import enrolment_code_create
from isn.errors import NotFound, PermissionDenied

if TYPE_CHECKING:
    from datetime import datetime

    from django.contrib.auth.models import AbstractBaseUser


@dataclass(frozen=True)
class IssuedEnrolmentCode:
    username: str
    code: str  # shown to the agency admin once, never stored
    expires_at: datetime


@transaction.atomic
def enrolment_code_issue(*, actor: AbstractBaseUser | None, username: str) -> IssuedEnrolmentCode:
    """A one-time enrolment code for a member of the actor's own agency (not the actor): ``actor`` None is ISN itself,
    for the host's bootstrap of an agency's first admin. A new code replaces any unspent one."""
    members = Membership.objects.select_related("agency", "user").filter(
        user__username=username, user__is_active=True, is_active=True
    )
    if actor is not None:
        issuer = membership_for(actor)
        if issuer is None or issuer.role != Role.AGENCY_ADMIN:
            raise PermissionDenied("Only an agency admin may issue enrolment codes.")
        if username == actor.get_username():
            raise PermissionDenied("Another admin of your agency issues your enrolment code.")
        members = members.filter(agency_id=issuer.agency_id)
    membership = members.first()
    if membership is None:
        raise NotFound("Your agency has no active member with that username.")
    code, plaintext = enrolment_code_create(user=membership.user, issued_by=actor)
    audit.record(
        action="agencies.enrolment_code.issue",
        actor=actor,
        target=membership.user,
        target_country=membership.agency.country_id,
        details={"enrolment_code_id": code.pk, "expires_at": code.expires_at.isoformat()},
    )
    return IssuedEnrolmentCode(username=membership.user.get_username(), code=plaintext, expires_at=code.expires_at)
