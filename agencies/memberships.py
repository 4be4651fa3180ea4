"""Two-person rules: the steps that give someone power over a country's items are proposed by one person and applied
only when a second person of that country approves.

- **A new agency admin** (``agency_admin``): proposed by an admin of the agency; approved by another admin of that
  agency or a national focal point of its country.
- **An agency's first admin** (``first_admin``, the agency has no active admin): proposed by the platform's operator
  (a superuser: the only step of the platform's staff here); approved by a national focal point of the agency's
  country. The operator proposes; they can neither approve nor be the subject (staff hold no content role).
- **A lost second factor** (``second_factor_reset``): proposed by an admin of the member's agency; confirmed by
  another admin of that agency or a national focal point of its country. Applying it deletes the person's
  authenticators and recovery codes, which ends their verified sessions (django-otp finds no device for them), so they
  enrol again, with an enrolment code from their agency admin where ``ISN_ENROLMENT_CODE_REQUIRED`` holds.

The approver is never the proposer and never the subject; an API key decides nothing. A proposal waits at most
``PROPOSAL_LIFETIME`` and one subject has at most one pending proposal of a kind. Every step (propose, approve,
decline, cancel, and the change applied) is an audit event filed under the agency's country, in the step's own
transaction; the membership written is also recorded as ``agencies.membership.create`` or ``.change``, by ISN itself
on the approval named in ``agencies.membership_proposal.apply``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from agencies.models import (
    Agency,
    ApiKey,
    Membership,
    MembershipProposal,
    Office,
    ProposalKind,
    ProposalStatus,
    Role,
)
from agencies.selectors import is_platform_staff, membership_for
from agencies.services import membership_change, membership_create, membership_set_active, require_agency_admin
from isn import audit
from isn.errors import Conflict, InvalidInput, NotFound, PermissionDenied

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    Actor = AbstractBaseUser | AnonymousUser

# Long enough for a second person to be reached across a week's travel; short enough that nobody approves, months
# later, what the proposer has forgotten.
PROPOSAL_LIFETIME = timedelta(days=7)


def _record_step(action: str, actor: Actor | None, proposal: MembershipProposal, **details: Any) -> None:
    audit.record(
        action=action,
        actor=actor,
        target=proposal,
        target_country=proposal.agency.country_id,
        details={
            "kind": proposal.kind,
            "subject_id": proposal.subject_id,
            "agency_id": proposal.agency_id,
            "role": proposal.role,
            "proposed_by": proposal.proposed_by_id,
            **details,
        },
    )


def _has_active_admin(agency: Agency) -> bool:
    return Membership.objects.filter(
        agency=agency, role=Role.AGENCY_ADMIN, is_active=True, user__is_active=True
    ).exists()


def _member_of(agency: Agency, username: str) -> Membership:
    membership = (
        Membership.objects.select_related("user", "agency")
        .filter(agency=agency, user__username=username, user__api_key__isnull=True)
        .first()
    )
    if membership is None:
        raise NotFound("Your agency has no member with that username.")
    return membership


def _subject_for_admin(agency: Agency, username: str, office: Office | None) -> AbstractBaseUser:
    """The person to make an admin of ``agency``: a member of it, or an account with no membership yet."""
    user = get_user_model().objects.filter(username=username, is_active=True, api_key__isnull=True).first()
    if user is None:
        raise NotFound("There is no active account with that username.")
    existing = Membership.objects.filter(user=user).first()
    if existing is not None and existing.agency_id != agency.pk:
        # A person of another agency (another country, perhaps) is not hidden by this: the proposer names them.
        raise Conflict("This person belongs to another agency.")
    if existing is not None and existing.role == Role.AGENCY_ADMIN and existing.is_active:
        raise Conflict("This person is already an admin of the agency.")
    if is_platform_staff(user):
        raise PermissionDenied("Platform staff hold no content role; give the person an account of their own.")
    if office is not None and office.agency_id != agency.pk:
        raise InvalidInput("The office must belong to the agency.")
    return user


def _create(
    *, actor: Actor, kind: str, subject: AbstractBaseUser, agency: Agency, role: str = "", office: Office | None = None
) -> MembershipProposal:
    now = timezone.now()
    stale = MembershipProposal.objects.filter(
        subject=subject, kind=kind, status=ProposalStatus.PENDING, expires_at__lte=now
    )
    expired = list(stale.values_list("pk", flat=True))
    stale.update(status=ProposalStatus.EXPIRED)
    if MembershipProposal.objects.filter(subject=subject, kind=kind, status=ProposalStatus.PENDING).exists():
        raise Conflict("A proposal of this kind for this person is already waiting for a second person.")
    proposal = MembershipProposal.objects.create(
        kind=kind,
        subject=subject,
        agency=agency,
        role=role,
        office=office,
        proposed_by=actor,
        created_at=now,
        expires_at=now + PROPOSAL_LIFETIME,
    )
    _record_step(
        "agencies.membership_proposal.propose",
        actor,
        proposal,
        expires_at=proposal.expires_at.isoformat(),
        expired_ids=expired,
    )
    return proposal


@transaction.atomic
def agency_admin_propose(
    *, actor: Actor, agency: Agency, username: str, office: Office | None = None
) -> MembershipProposal:
    """An admin of ``agency`` proposes ``username`` as another admin of it; a second person approves."""
    require_agency_admin(actor, agency, "Only an agency admin of this agency may propose a new admin of it.")
    if username == actor.get_username():
        raise PermissionDenied("Nobody proposes themselves.")
    subject = _subject_for_admin(agency, username, office)
    return _create(
        actor=actor,
        kind=ProposalKind.AGENCY_ADMIN,
        subject=subject,
        agency=agency,
        role=Role.AGENCY_ADMIN,
        office=office,
    )


@transaction.atomic
def first_admin_propose(
    *, actor: Actor, agency: Agency, username: str, office: Office | None = None
) -> MembershipProposal:
    """The platform's operator proposes the first admin of an agency that has no active admin; a national focal point
    of its country approves."""
    if not getattr(actor, "is_superuser", False):
        raise PermissionDenied("Only the platform's operator proposes an agency's first admin.")
    if _has_active_admin(agency):
        raise Conflict("This agency has an admin: its admins propose new ones.")
    subject = _subject_for_admin(agency, username, office)
    return _create(
        actor=actor,
        kind=ProposalKind.FIRST_ADMIN,
        subject=subject,
        agency=agency,
        role=Role.AGENCY_ADMIN,
        office=office,
    )


@transaction.atomic
def second_factor_reset_propose(*, actor: Actor, agency: Agency, username: str) -> MembershipProposal:
    """An admin of ``agency`` proposes to reset the lost second factor of a member of it (not their own)."""
    require_agency_admin(actor, agency, "Only an agency admin of the member's agency may propose a reset.")
    subject = _member_of(agency, username).user
    if subject.pk == actor.pk:
        raise PermissionDenied("Another admin of your agency proposes the reset of your own second factor.")
    return _create(actor=actor, kind=ProposalKind.SECOND_FACTOR_RESET, subject=subject, agency=agency)


def _may_decide(actor: Actor, proposal: MembershipProposal) -> bool:
    """A second person of the agency's country: a national focal point of the country, or (except for a first admin)
    another admin of the agency; never the proposer or the subject, never an API key's account."""
    membership = membership_for(actor) if actor is not None else None
    if membership is None or ApiKey.objects.filter(user_id=actor.pk).exists():
        return False
    if actor.pk in (proposal.proposed_by_id, proposal.subject_id):
        return False
    if membership.role == Role.NATIONAL_FOCAL_POINT:
        return membership.agency.country_id == proposal.agency.country_id
    if membership.role == Role.AGENCY_ADMIN and proposal.kind != ProposalKind.FIRST_ADMIN:
        return membership.agency_id == proposal.agency_id
    return False


def _pending(actor: Actor, proposal: MembershipProposal, *, deciding: bool) -> MembershipProposal:
    """The proposal, locked and read afresh, if the actor may decide it (or, not ``deciding``, cancel it) and it
    still waits."""
    proposal = MembershipProposal.objects.select_for_update().select_related("agency", "subject").get(pk=proposal.pk)
    if deciding and not _may_decide(actor, proposal):
        raise PermissionDenied(
            "A second person of the agency's country decides: a national focal point, or another admin of the agency "
            "(for a first admin, a national focal point); never the proposer or the person concerned."
        )
    if not deciding and proposal.proposed_by_id != actor.pk:
        raise PermissionDenied("Only the person who made a proposal cancels it.")
    if proposal.status != ProposalStatus.PENDING:
        raise Conflict(f"This proposal is {proposal.status}, no longer waiting.")
    if proposal.expires_at <= timezone.now():
        raise Conflict("This proposal has expired; propose it again.")
    return proposal


def _decide(proposal: MembershipProposal, actor: Actor, status: str) -> None:
    proposal.status, proposal.decided_by, proposal.decided_at = status, actor, timezone.now()
    proposal.save(update_fields=["status", "decided_by", "decided_at"])


def _apply_admin(proposal: MembershipProposal) -> Membership:
    if proposal.kind == ProposalKind.FIRST_ADMIN and _has_active_admin(proposal.agency):
        raise Conflict("This agency has an admin since: its admins propose new ones.")
    existing = Membership.objects.filter(user=proposal.subject).first()
    if existing is None:
        return membership_create(
            actor=None, user=proposal.subject, agency=proposal.agency, role=Role.AGENCY_ADMIN, office=proposal.office
        )
    if existing.agency_id != proposal.agency_id:
        raise Conflict("This person has since joined another agency.")
    if not existing.is_active:  # a suspended member made admin again is restored by the same approval
        existing = membership_set_active(actor=None, membership=existing, is_active=True)
    return membership_change(actor=None, membership=existing, role=Role.AGENCY_ADMIN, office=proposal.office)


def _apply_reset(proposal: MembershipProposal) -> dict[str, int]:
    subject = proposal.subject
    totp = TOTPDevice.objects.filter(user=subject).delete()[0]
    static = StaticDevice.objects.filter(user=subject).delete()[0]  # their tokens go with them (cascade)
    return {"totp_devices": totp, "recovery_devices": static}


@transaction.atomic
def membership_proposal_approve(*, actor: Actor, proposal: MembershipProposal) -> MembershipProposal:
    """A second person approves: the proposal is applied at once, in the same transaction."""
    proposal = _pending(actor, proposal, deciding=True)
    _decide(proposal, actor, ProposalStatus.APPROVED)
    _record_step("agencies.membership_proposal.approve", actor, proposal)
    if proposal.kind == ProposalKind.SECOND_FACTOR_RESET:
        applied: dict[str, Any] = _apply_reset(proposal)
    else:
        membership = _apply_admin(proposal)
        applied = {"membership_id": membership.pk, "office_id": membership.office_id}
    _record_step("agencies.membership_proposal.apply", None, proposal, approved_by=actor.pk, **applied)
    return proposal


@transaction.atomic
def membership_proposal_decline(*, actor: Actor, proposal: MembershipProposal) -> MembershipProposal:
    """A second person declines: nothing changes."""
    proposal = _pending(actor, proposal, deciding=True)
    _decide(proposal, actor, ProposalStatus.DECLINED)
    _record_step("agencies.membership_proposal.decline", actor, proposal)
    return proposal


@transaction.atomic
def membership_proposal_cancel(*, actor: Actor, proposal: MembershipProposal) -> MembershipProposal:
    """Its proposer withdraws a waiting proposal."""
    proposal = _pending(actor, proposal, deciding=False)
    _decide(proposal, actor, ProposalStatus.CANCELLED)
    _record_step("agencies.membership_proposal.cancel", actor, proposal)
    return proposal
