"""Agency API keys: issue (shown once), authenticate, revoke. Every issue, revocation and refused use is recorded.

A key reads ``isn_<prefix>_<secret>``. The prefix finds the row; the secret is compared by its SHA-256 hash in
constant time. The secret has 256 bits of entropy, so a fast hash is enough: nobody can guess it from the hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from agencies.models import Agency, ApiKey, ApiKeyScope, Membership, Role
from agencies.selectors import api_keys_visible_to, country_scope, membership_for
from agencies.services import require_admin_of, require_agency_admin
from isn import audit
from isn.errors import Conflict, InvalidInput, PermissionDenied

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

MAX_LIFETIME = timedelta(days=397)
_LAST_USED_GRANULARITY = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    plaintext: str  # shown to the agency admin once, never stored


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _parse(presented: str) -> tuple[str, str] | None:
    parts = presented.strip().split("_", 2)  # the secret itself may hold underscores
    if len(parts) != 3 or parts[0] != "isn" or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


@transaction.atomic
def api_key_issue(
    *,
    actor: AbstractBaseUser | None,
    agency: Agency,
    name: str,
    scopes: list[str],
    expires_at: datetime,
    demo_prefix: str | None = None,
    demo_secret: str | None = None,
) -> IssuedKey:
    """Issue a key for an agency's own system. The demo arguments give seed_demo's published keys; never else.

    A key never reaches further than the person who issues it: content and admin keys come from the agency's admin,
    audit keys from an auditor of the agency, whose reach (their country, or the network) the key's account takes."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("Give the key a name of 1 to 100 characters, e.g. the system that will use it.")
    scopes = sorted(set(scopes))
    if not scopes or any(scope not in ApiKeyScope.values for scope in scopes):
        raise InvalidInput(f"Scopes must be a non-empty list of {', '.join(ApiKeyScope.values)}.")
    if ApiKeyScope.AUDIT in scopes:
        if len(scopes) > 1:
            # An auditor never sees content, and an agency system that reads content is no auditor: keep them apart.
            raise InvalidInput("An audit key cannot also read, write or administer; issue two keys.")
        role = _audit_key_role(actor, agency)
    else:
        # Not the platform's staff: a key that reads is access to a country's items, which only its agency grants.
        require_agency_admin(actor, agency, "Only an agency admin of this agency may issue its keys.")
        role = Role.OFFICER
    if ApiKeyScope.ADMIN in scopes:
        # The agency's own admin, in person: not the platform's staff, not the system itself.
        issuer = membership_for(actor) if actor is not None else None
        if issuer is None or issuer.role != Role.AGENCY_ADMIN or issuer.agency_id != agency.pk:
            raise PermissionDenied("Only an agency admin of this agency may issue a key with the admin scope.")
        if set(scopes) - {ApiKeyScope.ADMIN, ApiKeyScope.READ}:
            # A system that steers where the agency's items go does not post them too: one stolen key, not both.
            raise InvalidInput("An admin key may also read items, but not write them or audit; issue two keys.")
    now = timezone.now()
    if not now < expires_at <= now + MAX_LIFETIME:
        raise InvalidInput("The expiry must be in the future and at most 397 days away.")
    if ApiKey.objects.filter(agency=agency, name=name).exists():
        raise Conflict(f"{agency.short_name} already has a key named {name!r}.")

    prefix = demo_prefix or secrets.token_hex(6)
    secret = demo_secret or secrets.token_urlsafe(32)
    service_user = get_user_model().objects.create(username=f"api-key.{prefix}", first_name=name[:150], is_active=True)
    service_user.set_unusable_password()
    service_user.save(update_fields=["password"])
    Membership.objects.create(user=service_user, agency=agency, role=role)
    key = ApiKey.objects.create(
        agency=agency,
        user=service_user,
        name=name,
        prefix=prefix,
        key_hash=_hash(secret),
        scopes=scopes,
        created_by=actor,
        expires_at=expires_at,
    )
    audit.record(
        action="agencies.api_key.issue",
        actor=actor,
        target=key,
        target_country=agency.country_id,
        details={"prefix": prefix, "scopes": scopes, "expires_at": expires_at.isoformat()},
    )
    return IssuedKey(key=key, plaintext=f"isn_{prefix}_{secret}")


def _audit_key_role(actor: AbstractBaseUser | None, agency: Agency) -> str:
    """The role an audit key's account gets: its issuer's, who must be an auditor of ``agency`` with a reach."""
    if actor is None:
        return Role.NATIONAL_AUDITOR  # ISN itself (the host's own tools): a national auditor of the agency's country
    issuer = membership_for(actor)
    reach = country_scope(actor, roles=(Role.NATIONAL_AUDITOR,))
    if issuer is None or reach is None or issuer.agency_id != agency.pk:
        raise PermissionDenied("Only an auditor may issue an audit key, for their own agency and reach.")
    return issuer.role


def _may_revoke_audit_key(actor: AbstractBaseUser | None, key: ApiKey) -> bool:
    # Revoking only narrows reach, so ISN itself and the platform's staff may too (a leaked key cannot wait).
    if actor is None or getattr(actor, "is_superuser", False):
        return True
    return api_keys_visible_to(actor).filter(pk=key.pk).exists()


@transaction.atomic
def api_key_revoke(*, actor: AbstractBaseUser | None, key: ApiKey) -> ApiKey:
    """Revoke a key at once: its next request gets 401. An audit key by the auditors of its reach (or the platform's
    staff); any other key by its agency's admin."""
    if ApiKeyScope.AUDIT not in key.scopes:
        require_admin_of(actor, key.agency)
    elif not _may_revoke_audit_key(actor, key):
        raise PermissionDenied("Only an auditor of the key's reach may revoke an audit key.")
    if key.revoked_at is not None:
        return key
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at"])
    key.user.is_active = False
    key.user.save(update_fields=["is_active"])
    audit.record(
        action="agencies.api_key.revoke",
        actor=actor,
        target=key,
        target_country=key.agency.country_id,
        details={"prefix": key.prefix},
    )
    return key


class KeyRefused(Exception):
    def __init__(self, reason: str, key: ApiKey | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.key = key


def api_key_authenticate(presented: str) -> ApiKey:
    """The live key presented, or KeyRefused (recorded by the caller, which knows the request)."""
    parsed = _parse(presented)
    if parsed is None:
        raise KeyRefused("malformed", None)
    prefix, secret = parsed
    key = ApiKey.objects.select_related("agency", "user").filter(prefix=prefix).first()
    if key is None:
        _hash(secret)  # same work as a known prefix, so timing does not tell which prefixes exist
        raise KeyRefused("unknown", None)
    if not hmac.compare_digest(key.key_hash, _hash(secret)):
        raise KeyRefused("wrong_secret", key)
    now = timezone.now()
    if key.revoked_at is not None:
        raise KeyRefused("revoked", key)
    if key.expires_at <= now:
        raise KeyRefused("expired", key)
    if not key.agency.is_active or not key.user.is_active:
        raise KeyRefused("agency_suspended", key)
    if ApiKeyScope.AUDIT in key.scopes and not _issuer_still_audits(key):
        raise KeyRefused("issuer_not_auditor", key)
    if key.last_used_at is None or now - key.last_used_at > _LAST_USED_GRANULARITY:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)  # at most once a minute: no write per request
    return key


def _issuer_still_audits(key: ApiKey) -> bool:
    """An audit key reaches as far as its issuer, and no longer than they are an auditor of the key's agency."""
    if key.created_by_id is None:
        return True  # issued by ISN itself
    return Membership.objects.filter(
        user_id=key.created_by_id,
        user__is_active=True,
        is_active=True,
        agency_id=key.agency_id,
        role__in=(Role.NATIONAL_AUDITOR, Role.REGIONAL_AUDITOR),
    ).exists()


def api_key_record_refusal(refusal: KeyRefused) -> None:
    """A refused key is an attempt on a protected surface: recorded in its own transaction."""
    key = refusal.key
    with transaction.atomic():
        audit.record(
            action="agencies.api_key.denied",
            actor=None,
            actor_label=f"api-key:{key.prefix}" if key else "api-key:unknown",
            target=key,
            target_type="agencies.apikey",
            target_country=key.agency.country_id if key else "",
            outcome="denied",
            details={"reason": refusal.reason},
        )
