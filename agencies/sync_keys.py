"""Sync keys: an agency admin declares that an API key is their system's sync and how many reads a day it makes;
a national auditor of the key's country approves or refuses. Only an approved volume changes how the auditors' flags
judge the key (``audit.flags``), so no agency can quieten the flags on its own systems by itself.

Four eyes: the declaring admin is never the approver, and neither an API key nor ISN itself may approve.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from agencies.models import ApiKey, Membership, Role, SyncDeclaration, SyncDeclarationStatus
from agencies.selectors import membership_for
from isn import audit
from isn.errors import Conflict, InvalidInput, PermissionDenied

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    Actor = AbstractBaseUser | AnonymousUser | None

# More than ten reads a second all day long: beyond what any member's system needs (the whole network exchanges a few
# thousand items a day), so a larger figure is a typing error, not a plan.
MAX_DAILY_READS = 1_000_000
_MAX_REASON = 500


def _is_api_key(actor: Actor) -> bool:
    return actor is not None and ApiKey.objects.filter(user_id=actor.pk).exists()


def _person_in_role(actor: Actor, role: str, message: str) -> Membership:
    """The actor's membership if they are a person (not ISN, not an API key's account) in ``role``."""
    membership = membership_for(actor) if actor is not None else None
    if membership is None or membership.role != role or _is_api_key(actor):
        raise PermissionDenied(message)
    return membership


def _check_daily_reads(daily_reads: object) -> int:
    # bool is an int in Python; True reads a day is no answer.
    if isinstance(daily_reads, bool) or not isinstance(daily_reads, int):
        raise InvalidInput("The expected daily volume must be a whole number of reads a day.")
    if not 1 <= daily_reads <= MAX_DAILY_READS:
        raise InvalidInput(f"The expected daily volume must be between 1 and {MAX_DAILY_READS:,} reads a day.")
    return daily_reads


def _in_force(key: ApiKey) -> SyncDeclaration | None:
    return key.sync_declarations.filter(status=SyncDeclarationStatus.APPROVED).first()


@transaction.atomic
def sync_key_declare(*, actor: Actor, key: ApiKey, daily_reads: int) -> SyncDeclaration:
    """Declare a live key of the actor's own agency a sync key reading about ``daily_reads`` a day (pending approval).

    A pending declaration of the same key is replaced at once; an approved one stays in force until this one is
    approved, so what the flags apply is always something an auditor approved."""
    refusal = "Only an agency admin of the key's agency may declare it a sync key."
    if _person_in_role(actor, Role.AGENCY_ADMIN, refusal).agency_id != key.agency_id:
        raise PermissionDenied(refusal)
    daily_reads = _check_daily_reads(daily_reads)
    key = ApiKey.objects.select_for_update().get(pk=key.pk)  # one declaration at a time per key
    now = timezone.now()
    if key.revoked_at is not None or key.expires_at <= now:
        raise Conflict("This key is revoked or expired; declare a live key.")
    replaced = list(key.sync_declarations.filter(status=SyncDeclarationStatus.PENDING).values_list("pk", flat=True))
    key.sync_declarations.filter(pk__in=replaced).update(status=SyncDeclarationStatus.REPLACED, replaced_at=now)
    declaration = SyncDeclaration.objects.create(key=key, daily_reads=daily_reads, declared_by=actor, declared_at=now)
    in_force = _in_force(key)
    audit.record(
        action="agencies.sync_key.declare",
        actor=actor,
        target=declaration,
        target_country=key.agency.country_id,
        details={
            "api_key_id": key.pk,
            "prefix": key.prefix,
            "daily_reads": daily_reads,
            "in_force_daily_reads": in_force.daily_reads if in_force else None,
            "replaced_pending_ids": replaced,
        },
    )
    return declaration


def _decidable(actor: Actor, declaration: SyncDeclaration) -> SyncDeclaration:
    """The declaration, read afresh under its key's lock, if the actor is a national auditor of its key's country and
    not its declarant."""
    refusal = "Only a national auditor of the key's country may decide on a sync key."
    membership = _person_in_role(actor, Role.NATIONAL_AUDITOR, refusal)
    # The key's row locked first, as declaring does: one declaration or decision at a time per key.
    key = ApiKey.objects.select_for_update().select_related("agency").get(pk=declaration.key_id)
    declaration = SyncDeclaration.objects.get(pk=declaration.pk)
    declaration.key = key
    if membership.agency.country_id != declaration.key.agency.country_id:
        raise PermissionDenied(refusal)
    if declaration.declared_by_id == membership.user_id:
        raise PermissionDenied("The person who declared a sync key cannot decide on it.")
    if declaration.status != SyncDeclarationStatus.PENDING:
        raise Conflict(
            f"This declaration is {declaration.get_status_display().lower()}, no longer awaiting a decision."
        )
    return declaration


@transaction.atomic
def sync_declaration_approve(*, actor: Actor, declaration: SyncDeclaration) -> SyncDeclaration:
    """Approve a pending declaration: from now on it replaces the key's previously approved volume, if any."""
    declaration = _decidable(actor, declaration)
    key = declaration.key
    if key.revoked_at is not None or key.expires_at <= timezone.now():
        raise Conflict("This key is revoked or expired; there is nothing to approve.")
    now = timezone.now()
    previous = _in_force(key)
    if previous is not None:
        previous.status, previous.replaced_at = SyncDeclarationStatus.REPLACED, now
        previous.save(update_fields=["status", "replaced_at"])
    declaration.status, declaration.decided_by, declaration.decided_at = SyncDeclarationStatus.APPROVED, actor, now
    declaration.save(update_fields=["status", "decided_by", "decided_at"])
    audit.record(
        action="agencies.sync_key.approve",
        actor=actor,
        target=declaration,
        target_country=key.agency.country_id,
        details={
            "api_key_id": key.pk,
            "prefix": key.prefix,
            "daily_reads": declaration.daily_reads,
            "declared_by": declaration.declared_by_id,
            "replaced_id": previous.pk if previous else None,
            "replaced_daily_reads": previous.daily_reads if previous else None,
        },
    )
    return declaration


@transaction.atomic
def sync_declaration_refuse(*, actor: Actor, declaration: SyncDeclaration, reason: str) -> SyncDeclaration:
    """Refuse a pending declaration, saying why; whatever volume was approved before stays in force."""
    declaration = _decidable(actor, declaration)
    reason = reason.strip()
    if not reason or len(reason) > _MAX_REASON:
        raise InvalidInput(f"Say why the declaration is refused, in 1 to {_MAX_REASON} characters.")
    declaration.status, declaration.decided_by, declaration.decided_at = (
        SyncDeclarationStatus.REFUSED,
        actor,
        timezone.now(),
    )
    declaration.refusal_reason = reason
    declaration.save(update_fields=["status", "decided_by", "decided_at", "refusal_reason"])
    audit.record(
        action="agencies.sync_key.refuse",
        actor=actor,
        target=declaration,
        target_country=declaration.key.agency.country_id,
        details={
            "api_key_id": declaration.key_id,
            "prefix": declaration.key.prefix,
            "daily_reads": declaration.daily_reads,
            "declared_by": declaration.declared_by_id,
        },
    )
    return declaration
