"""Writes to the directory. Each service takes ``actor``: a user, or None for ISN itself (migrations, seed_demo).

Memberships are access to a country's items, so no single person grants them alone (``require_grant``): a
content-bearing membership is granted or changed by an admin of that agency only, never by the platform's staff, and
never to them; a new agency admin takes a second person of the country (``agencies.memberships``, which applies an
approved proposal as ISN itself).
"""

from __future__ import annotations

from datetime import time
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from agencies.leavers import cut_off
from agencies.models import (
    NO_CONTENT_ROLES,
    Agency,
    AgencyKind,
    ApiKey,
    Country,
    CountryCode,
    Membership,
    Office,
    OfficeKind,
    Role,
)
from agencies.selectors import is_platform_staff, membership_for
from isn import audit
from isn.errors import Conflict, InvalidInput, PermissionDenied

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    Actor = AbstractBaseUser | None


def _require_platform_admin(actor: Actor) -> None:
    if actor is not None and not getattr(actor, "is_superuser", False):
        raise PermissionDenied("Only an ISN platform administrator may do this.")


def require_admin_of(actor: Actor, agency: Agency) -> None:
    """The system, a platform administrator, or an agency admin of ``agency`` itself."""
    if actor is None or getattr(actor, "is_superuser", False):
        return
    membership = membership_for(actor)
    if membership is None or membership.role != Role.AGENCY_ADMIN or membership.agency_id != agency.pk:
        raise PermissionDenied("Only an agency admin of this agency may do this.")


def require_agency_admin(actor: Actor, agency: Agency, message: str) -> Membership | None:
    """ISN itself (None), or an admin of ``agency`` in person (not an API key's account, not the platform's staff,
    whom ``membership_for`` gives no admin membership); the actor's membership, None for ISN."""
    if actor is None:
        return None
    membership = membership_for(actor)
    is_key = ApiKey.objects.filter(user_id=actor.pk).exists()
    if membership is None or membership.role != Role.AGENCY_ADMIN or membership.agency_id != agency.pk or is_key:
        raise PermissionDenied(message)
    return membership


def require_grant(actor: Actor, *, agency: Agency, user: AbstractBaseUser, role: str, new_role: bool = True) -> None:
    """Who may give ``user`` the ``role`` in ``agency``: platform staff hold no content role, whoever grants it; an
    admin of the agency itself grants any role but agency admin, which takes a second person (a proposal); ISN itself
    (None: seed_demo, an approved proposal) grants what it is told. ``new_role`` False: the member keeps the role
    they hold (an admin's office changes), so no second person is needed."""
    if role not in NO_CONTENT_ROLES and is_platform_staff(user):
        raise PermissionDenied("Platform staff hold no content role; give the person an account of their own.")
    require_agency_admin(actor, agency, "Only an agency admin of this agency may grant or change its memberships.")
    if actor is not None and role == Role.AGENCY_ADMIN and new_role:
        raise PermissionDenied(
            "A new agency admin needs a second person of the country: propose them at /api/v1/membership-proposals/."
        )


@transaction.atomic
def agency_create(*, actor: Actor, country: Country, name: str, short_name: str, kind: str) -> Agency:
    """Add an agency to a member country."""
    _require_platform_admin(actor)
    if kind not in AgencyKind.values:
        raise InvalidInput(f"Unknown agency kind {kind!r}.")
    if (kind == AgencyKind.UNODC) != (country.code == CountryCode.UNODC):
        raise InvalidInput("UNODC agencies belong to the UN member, and only they do.")
    name, short_name = name.strip(), short_name.strip()
    if not name or not short_name:
        raise InvalidInput("An agency needs a name and a short name.")
    if Agency.objects.filter(country=country, name=name).exists():
        raise Conflict(f"{country.code} already has an agency named {name!r}.")
    agency = Agency.objects.create(country=country, name=name, short_name=short_name, kind=kind)
    audit.record(
        action="agencies.agency.create",
        actor=actor,
        target=agency,
        target_country=country.code,
        details={"kind": kind, "short_name": short_name},
    )
    return agency


@transaction.atomic
def agency_set_active(*, actor: Actor, agency: Agency, is_active: bool) -> Agency:
    """Suspend or restore an agency; a suspended agency's members lose access at their next request."""
    _require_platform_admin(actor)
    agency.is_active = is_active
    agency.save(update_fields=["is_active"])
    audit.record(
        action="agencies.agency.restore" if is_active else "agencies.agency.suspend",
        actor=actor,
        target=agency,
        target_country=agency.country_id,
    )
    return agency


@transaction.atomic
def office_create(
    *,
    actor: Actor,
    agency: Agency,
    name: str,
    kind: str,
    province: str,
    opens_at: time,
    closes_at: time,
    border_crossing: str = "",
    contact_phone: str = "",
    contact_email: str = "",
) -> Office:
    """Open a Border Liaison Office or the agency's duty desk."""
    require_admin_of(actor, agency)
    if kind not in OfficeKind.values:
        raise InvalidInput(f"Unknown office kind {kind!r}.")
    if kind == OfficeKind.BLO and not border_crossing.strip():
        raise InvalidInput("A Border Liaison Office needs its border crossing.")
    if kind == OfficeKind.DUTY_DESK and Office.objects.filter(agency=agency, kind=OfficeKind.DUTY_DESK).exists():
        raise Conflict(f"{agency.short_name} already has a duty desk.")
    if Office.objects.filter(agency=agency, name=name.strip()).exists():
        raise Conflict(f"{agency.short_name} already has an office named {name.strip()!r}.")
    office = Office.objects.create(
        agency=agency,
        name=name.strip(),
        kind=kind,
        province=province.strip(),
        opens_at=opens_at,
        closes_at=closes_at,
        border_crossing=border_crossing.strip(),
        contact_phone=contact_phone.strip(),
        contact_email=contact_email.strip(),
    )
    audit.record(
        action="agencies.office.create",
        actor=actor,
        target=office,
        target_country=agency.country_id,
        details={"agency_id": agency.pk, "kind": kind},
    )
    return office


def _record_counterpart_change(action: str, actor: Actor, office: Office, counterpart: Office) -> None:
    # One event per side: the link changes both offices, and each country's auditor must see it.
    for this, other in ((office, counterpart), (counterpart, office)):
        audit.record(
            action=action,
            actor=actor,
            target=this,
            target_country=this.agency.country_id,
            details={"counterpart_id": other.pk, "counterpart_country": other.agency.country_id},
        )


def _check_counterpart_pair(office: Office, counterpart: Office) -> None:
    if office.pk == counterpart.pk:
        raise InvalidInput("An office cannot be its own counterpart.")
    if office.kind != OfficeKind.BLO or counterpart.kind != OfficeKind.BLO:
        raise InvalidInput("Only Border Liaison Offices have counterparts.")
    if office.agency.country_id == counterpart.agency.country_id:
        raise InvalidInput("Counterpart offices are across the border, in another country.")


@transaction.atomic
def office_link_counterpart(*, actor: Actor, office: Office, counterpart: Office) -> None:
    """Pair two BLOs across a border (the link is symmetric; linking twice changes nothing)."""
    require_admin_of(actor, office.agency)
    _check_counterpart_pair(office, counterpart)
    if office.counterparts.filter(pk=counterpart.pk).exists():
        return  # nothing changes, so there is nothing to record (seed_demo re-links on every run)
    office.counterparts.add(counterpart)
    _record_counterpart_change("agencies.office.counterpart_link", actor, office, counterpart)


@transaction.atomic
def office_unlink_counterpart(*, actor: Actor, office: Office, counterpart: Office) -> None:
    require_admin_of(actor, office.agency)
    if not office.counterparts.filter(pk=counterpart.pk).exists():
        return
    office.counterparts.remove(counterpart)
    _record_counterpart_change("agencies.office.counterpart_unlink", actor, office, counterpart)


def _check_membership(agency: Agency, office: Office | None, role: str) -> None:
    if role not in Role.values:
        raise InvalidInput(f"Unknown role {role!r}.")
    if office is not None and office.agency_id != agency.pk:
        raise InvalidInput("The office must belong to the member's agency.")
    if role == Role.REGIONAL_AUDITOR and agency.country_id != CountryCode.UNODC:
        raise InvalidInput("Regional auditors belong to UNODC.")
    if role == Role.NATIONAL_AUDITOR and agency.country_id == CountryCode.UNODC:
        raise InvalidInput("National auditors belong to a member state's agency.")


@transaction.atomic
def membership_create(
    *, actor: Actor, user: AbstractBaseUser, agency: Agency, role: str, office: Office | None = None
) -> Membership:
    """Give a user their place in the network: one agency, optionally an office, and a role."""
    require_grant(actor, agency=agency, user=user, role=role)
    _check_membership(agency, office, role)
    if Membership.objects.filter(user_id=user.pk).exists():
        raise Conflict("This user already has a membership; change it instead.")
    membership = Membership.objects.create(user=user, agency=agency, office=office, role=role)
    audit.record(
        action="agencies.membership.create",
        actor=actor,
        target=membership,
        target_country=agency.country_id,
        details={"user_id": user.pk, "agency_id": agency.pk, "role": role, "office_id": office.pk if office else None},
    )
    return membership


@transaction.atomic
def membership_change(*, actor: Actor, membership: Membership, role: str, office: Office | None) -> Membership:
    """Change a member's role or office within their agency."""
    same_role = role == membership.role and membership.is_active
    require_grant(actor, agency=membership.agency, user=membership.user, role=role, new_role=not same_role)
    _check_membership(membership.agency, office, role)
    before = {"role": membership.role, "office_id": membership.office_id}
    membership.role = role
    membership.office = office
    membership.save(update_fields=["role", "office", "updated_at"])
    audit.record(
        action="agencies.membership.change",
        actor=actor,
        target=membership,
        target_country=membership.agency.country_id,
        details={
            "user_id": membership.user_id,
            "old_role": before["role"],
            "new_role": role,
            "old_office_id": before["office_id"],
            "new_office_id": office.pk if office else None,
        },
    )
    return membership


@transaction.atomic
def membership_set_active(*, actor: Actor, membership: Membership, is_active: bool) -> Membership:
    """Suspend or restore a membership; a suspended member loses sessions, keys and subscriptions at once. Suspending
    only narrows access, so the platform's staff may too; restoring is a grant."""
    if is_active:
        require_grant(actor, agency=membership.agency, user=membership.user, role=membership.role)
    else:
        require_admin_of(actor, membership.agency)
    was_active = membership.is_active
    membership.is_active = is_active
    membership.save(update_fields=["is_active", "updated_at"])
    details: dict[str, object] = {"user_id": membership.user_id}
    if not is_active:
        # The leaver rule (agencies.leavers): sessions, keys and subscriptions go now, not at the next request.
        details["cut"] = cut_off(actor=actor, user_id=membership.user_id)
    elif not was_active:
        # A restoration by the agency's admin is their confirmation too: else the next review sweep suspends it again.
        membership.confirmed_at = timezone.now()
        membership.confirmed_by = actor
        membership.save(update_fields=["confirmed_at", "confirmed_by"])
    audit.record(
        action="agencies.membership.restore" if is_active else "agencies.membership.suspend",
        actor=actor,
        target=membership,
        target_country=membership.agency.country_id,
        details=details,
    )
    return membership
