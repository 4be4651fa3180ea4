"""Access reviews: an agency's admins confirm, at least every ``ISN_ACCESS_REVIEW_DAYS``, that each of their members
still needs their place in the network. A membership left unconfirmed longer is suspended by the daily sweep
(``agencies.tasks.lapse_access_reviews``), recorded under its country, and its person is cut off (``agencies.leavers``).

Who confirms whom:
- a member: an agency admin of the same agency, in person;
- an agency admin: another agency admin of the same agency, or a national focal point of the same country; nobody
  confirms their own membership. An agency with a single admin and no focal point in its country cannot keep that
  admin confirmed: the membership lapses and is suspended (fail closed), and the country's two-person rule for a new
  agency admin decides who restores it;
- never the platform's staff: a confirmation is the agency's own word (a superuser without that role is refused).
- ISN itself (``actor=None``: seed_demo) may confirm; no request reaches that.

Agency systems' service accounts (the members behind API keys) are not reviewed: a key lives at most 397 days,
reaches no further than its issuer, and is revoked with the rest when its issuer's membership lapses or ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from agencies.leavers import cut_off
from agencies.models import Agency, Membership, Role
from agencies.selectors import membership_for
from isn import audit
from isn.errors import InvalidInput, NotFound, PermissionDenied

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

MAX_BATCH = 500


def review_period() -> timedelta:
    return timedelta(days=settings.ISN_ACCESS_REVIEW_DAYS)


def due_at(membership: Membership) -> datetime:
    return membership.confirmed_at + review_period()


def _reviewed() -> QuerySet[Membership]:
    """People's memberships: an API key's service account is no person and is not reviewed."""
    return Membership.objects.filter(user__api_key__isnull=True)


def _may_confirm(reviewer: Membership, membership: Membership) -> bool:
    if membership.user_id == reviewer.user_id:
        return False  # nobody vouches for themselves
    if reviewer.role == Role.AGENCY_ADMIN and reviewer.agency_id == membership.agency_id:
        return True
    return (
        membership.role == Role.AGENCY_ADMIN
        and reviewer.role == Role.NATIONAL_FOCAL_POINT
        and reviewer.agency.country_id == membership.agency.country_id
    )


def _reviewer(actor: AbstractBaseUser | AnonymousUser) -> Membership:
    """The actor's membership when they may confirm anyone at all, in person; else PermissionDenied."""
    reviewer = membership_for(actor)
    if reviewer is None or reviewer.role not in (Role.AGENCY_ADMIN, Role.NATIONAL_FOCAL_POINT):
        raise PermissionDenied("Only an agency admin (or, for agency admins, a national focal point) may do this.")
    if getattr(actor, "api_key", None) is not None:
        raise PermissionDenied("Only a person may confirm members, not an API key.")
    return reviewer


def reviews_visible_to(viewer: AbstractBaseUser | AnonymousUser) -> QuerySet[Membership]:
    """The memberships the viewer reviews, soonest due first: their agency's people (an agency admin) and, for a
    national focal point, the agency admins of their country; never their own. Suspended ones are listed too: they
    are the admin's to restore or let go."""
    reviewer = membership_for(viewer)
    if reviewer is None or getattr(viewer, "api_key", None) is not None:
        return Membership.objects.none()
    people = _reviewed().exclude(user_id=reviewer.user_id).select_related("user", "agency", "office", "confirmed_by")
    if reviewer.role == Role.AGENCY_ADMIN:
        scope = people.filter(agency_id=reviewer.agency_id)
    elif reviewer.role == Role.NATIONAL_FOCAL_POINT:
        scope = people.filter(role=Role.AGENCY_ADMIN, agency__country_id=reviewer.agency.country_id)
    else:
        return Membership.objects.none()
    return scope.order_by("confirmed_at", "pk")


@dataclass(frozen=True)
class Confirmed:
    memberships: list[Membership]
    confirmed_at: datetime


@transaction.atomic
def memberships_confirm(*, actor: AbstractBaseUser | None, agency: Agency, membership_ids: Iterable[int]) -> Confirmed:
    """Confirm these memberships of ``agency`` (each must be one the actor reviews): their review period starts again.

    All or nothing: one id the actor may not confirm refuses the whole batch. One event per membership, under the
    agency's country, so each person's history shows every confirmation and who gave it."""
    ids = sorted({int(pk) for pk in membership_ids})
    if not ids:
        raise InvalidInput("Name at least one membership to confirm.", extra={"fields": {"memberships": ["Empty."]}})
    if len(ids) > MAX_BATCH:
        raise InvalidInput(f"Confirm at most {MAX_BATCH} memberships at once.")
    reviewer = _reviewer(actor) if actor is not None else None
    if reviewer is not None:
        own_agency = reviewer.role == Role.AGENCY_ADMIN and reviewer.agency_id == agency.pk
        own_country = reviewer.role == Role.NATIONAL_FOCAL_POINT and reviewer.agency.country_id == agency.country_id
        if not (own_agency or own_country):
            raise PermissionDenied("Only an agency admin of this agency may do this.")
    memberships = list(
        _reviewed()
        .select_for_update(of=("self",))
        .select_related("agency")
        .filter(pk__in=ids, agency_id=agency.pk)
        .order_by("pk")
    )
    if len(memberships) != len(ids):
        raise NotFound("No such membership in this agency.")
    if reviewer is not None:
        refused = [m.pk for m in memberships if not _may_confirm(reviewer, m)]
        if refused:
            raise PermissionDenied(
                "You may not confirm these memberships (nobody confirms their own; a national focal point confirms "
                "only agency admins).",
                extra={"memberships": refused},
            )
    allowed = memberships
    now = timezone.now()
    for membership in allowed:
        previous = membership.confirmed_at
        membership.confirmed_at = now
        membership.confirmed_by = actor
        membership.save(update_fields=["confirmed_at", "confirmed_by", "updated_at"])
        audit.record(
            action="agencies.membership.confirm",
            actor=actor,
            target=membership,
            target_country=agency.country_id,
            details={
                "user_id": membership.user_id,
                "role": membership.role,
                "previously_confirmed_at": previous.isoformat(),
                "due_at": (now + review_period()).isoformat(),
            },
        )
    return Confirmed(memberships=allowed, confirmed_at=now)


def memberships_lapse(*, now: datetime | None = None, limit: int = MAX_BATCH) -> list[int]:
    """Suspend every active membership of a person not confirmed within the review period, as of ``now``, and cut
    its person off. One transaction per membership, so one failure does not hold back the rest; returns their ids."""
    now = now or timezone.now()
    cutoff = now - review_period()
    lapsed: list[int] = []
    candidates = list(
        _reviewed().filter(is_active=True, confirmed_at__lte=cutoff).order_by("confirmed_at", "pk")[:limit]
    )
    for candidate in candidates:
        with transaction.atomic():
            membership = (
                _reviewed()
                .select_for_update(of=("self",))
                .select_related("agency")
                .filter(pk=candidate.pk, is_active=True, confirmed_at__lte=cutoff)
                .first()
            )
            if membership is None:
                continue  # confirmed or suspended meanwhile
            membership.is_active = False
            membership.save(update_fields=["is_active", "updated_at"])
            cut = cut_off(actor=None, user_id=membership.user_id)
            audit.record(
                action="agencies.membership.review_lapsed",
                actor=None,
                target=membership,
                target_country=membership.agency.country_id,
                details={
                    "user_id": membership.user_id,
                    "role": membership.role,
                    "confirmed_at": membership.confirmed_at.isoformat(),
                    "due_at": due_at(membership).isoformat(),
                    "cut": cut,
                },
            )
            lapsed.append(membership.pk)
    return lapsed
