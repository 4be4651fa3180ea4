"""The keyring: one key-encryption key (KEK) per country and the network's match key, versioned, stored wrapped by
the master key.

Items' data keys are wrapped with the KEK of each country an item is released to (messaging does that), so only
those countries' keys can open them. The match key turns matchable entity values into blind tokens (HMAC-SHA256), so
the database can say two items share a phone number without holding the number. Unwrapped keys are cached briefly
in the process: a read should not cost a query and an unwrap for a key that changes once a year.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from agencies.masterkeys import (
    forget_master_keys,
    master_key_cache_hook_register,
    master_sealed_table_register,
    master_unwrap,
    master_wrap,
)
from agencies.models import CountryKey, CountryKeyStatus, MatchKey, MatchKeyStatus
from isn import audit
from isn.crypto import KEY_BYTES, DecryptionError, associated_data, new_key
from isn.errors import Conflict

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

_CACHE_SECONDS = 60.0
_cache: dict[tuple[str, int], tuple[float, bytes]] = {}
_cache_lock = threading.Lock()


def _kek_aad(country_code: str, version: int) -> bytes:
    return associated_data("country-key", country_code, version)


def _key_checked(key: bytes) -> bytes:
    if len(key) != KEY_BYTES:
        raise DecryptionError("unwrapped key has the wrong length")
    return key


def _unwrap(key: CountryKey) -> bytes:
    if key.status == CountryKeyStatus.RETIRED or not key.wrapped_key:
        raise DecryptionError(f"{key.country_id} key v{key.version} is retired")
    return _key_checked(
        master_unwrap(key.master_version, bytes(key.wrapped_key), aad=_kek_aad(key.country_id, key.version))
    )


def _remember(country_code: str, version: int, kek: bytes) -> bytes:
    with _cache_lock:
        _cache[(country_code, version)] = (time.monotonic() + _CACHE_SECONDS, kek)
    return kek


def forget_cached_keys() -> None:
    """Drop every cached key of this process, country KEKs and match keys, and the register of master key versions
    (after a rotation here, and in tests)."""
    with _cache_lock:
        _cache.clear()
        _match_cache.clear()
    forget_master_keys()


def _create_version(country_code: str, version: int) -> CountryKey:
    master_version, wrapped = master_wrap(new_key(), aad=_kek_aad(country_code, version))
    return CountryKey.objects.create(
        country_id=country_code,
        version=version,
        status=CountryKeyStatus.PRIMARY,
        wrapped_key=wrapped,
        master_version=master_version,
    )


def primary_key(country_code: str) -> tuple[int, bytes]:
    """The country's primary KEK as (version, key), made on first use."""
    key = CountryKey.objects.filter(country_id=country_code, status=CountryKeyStatus.PRIMARY).first()
    if key is None:
        try:
            with transaction.atomic():
                key = _create_version(country_code, 1)
        except IntegrityError:  # another process made it at the same moment
            key = CountryKey.objects.get(country_id=country_code, status=CountryKeyStatus.PRIMARY)
    return key.version, _remember(country_code, key.version, _unwrap(key))


def key_version(country_code: str, version: int) -> bytes:
    """A KEK version for unwrapping; DecryptionError when it does not exist or is retired."""
    with _cache_lock:
        cached = _cache.get((country_code, version))
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    key = CountryKey.objects.filter(country_id=country_code, version=version).first()
    if key is None:
        raise DecryptionError(f"{country_code} has no key v{version}")
    return _remember(country_code, version, _unwrap(key))


@transaction.atomic
def country_key_rotate(*, actor: AbstractBaseUser | None, country_code: str) -> CountryKey:
    """Make a new primary KEK version; the old one only unwraps until the data keys are re-wrapped."""
    current = (
        CountryKey.objects.select_for_update().filter(country_id=country_code, status=CountryKeyStatus.PRIMARY).first()
    )
    if CountryKey.objects.filter(country_id=country_code, status=CountryKeyStatus.DECRYPT_ONLY).exists():
        raise Conflict(f"A rotation of {country_code}'s key is still under way; let it finish first.")
    if current is None:
        primary_key(country_code)
        current = CountryKey.objects.select_for_update().get(country_id=country_code, status=CountryKeyStatus.PRIMARY)
    current.status = CountryKeyStatus.DECRYPT_ONLY
    current.save(update_fields=["status"])
    new = _create_version(country_code, current.version + 1)
    audit.record(
        action="agencies.country_key.rotate",
        actor=actor,
        target=new,
        target_country=country_code,
        details={"old_version": current.version, "new_version": new.version},
    )
    return new


@transaction.atomic
def country_key_retire(*, actor: AbstractBaseUser | None, country_code: str, version: int) -> CountryKey:
    """Destroy a rotated-out KEK version. Call only once nothing is wrapped with it any more."""
    key = CountryKey.objects.select_for_update().get(country_id=country_code, version=version)
    if key.status == CountryKeyStatus.PRIMARY:
        raise Conflict("The primary key cannot be retired; rotate first.")
    key.status = CountryKeyStatus.RETIRED
    key.wrapped_key = b""
    key.retired_at = timezone.now()
    key.save(update_fields=["status", "wrapped_key", "retired_at"])
    with _cache_lock:
        _cache.pop((country_code, version), None)
    audit.record(
        action="agencies.country_key.retire",
        actor=actor,
        target=key,
        target_country=country_code,
        details={"version": version},
    )
    return key


# --- the match key ----------------------------------------------------------------------------------------------
# One key for the whole network (a token must be the same whoever computes it, or nothing would ever match), held
# like the country keys: versioned, wrapped by the master key under associated data naming it and its version, so
# neither a country's wrapped KEK nor another version's can be put in its place.

_match_cache: dict[int, tuple[float, bytes]] = {}
# A kind is a short name from a fixed vocabulary (phone, email, identity_document...), never containing "|": the
# first "|" of the HMAC input then always ends the kind, so ("a|b", "c") and ("a", "b|c") cannot collide.
_KIND = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


def _match_aad(version: int) -> bytes:
    return associated_data("match-key", version)


def _match_unwrap(key: MatchKey) -> bytes:
    if key.status == MatchKeyStatus.RETIRED or not key.wrapped_key:
        raise DecryptionError(f"match key v{key.version} is retired")
    return _key_checked(master_unwrap(key.master_version, bytes(key.wrapped_key), aad=_match_aad(key.version)))


def _match_cached(version: int) -> bytes | None:
    with _cache_lock:
        cached = _match_cache.get(version)
    return cached[1] if cached is not None and cached[0] > time.monotonic() else None


def _match_remember(version: int, key: bytes) -> bytes:
    with _cache_lock:
        _match_cache[version] = (time.monotonic() + _CACHE_SECONDS, key)
    return key


def _match_create_version(version: int) -> MatchKey:
    master_version, wrapped = master_wrap(new_key(), aad=_match_aad(version))
    return MatchKey.objects.create(
        version=version, status=MatchKeyStatus.PRIMARY, wrapped_key=wrapped, master_version=master_version
    )


def _match_primary_row() -> MatchKey:
    key = MatchKey.objects.filter(status=MatchKeyStatus.PRIMARY).first()
    if key is None:
        try:
            with transaction.atomic():
                key = _match_create_version(1)
        except IntegrityError:  # another process made it at the same moment
            key = MatchKey.objects.get(status=MatchKeyStatus.PRIMARY)
    return key


def _match_primary_held() -> int:
    """The primary version, read ``FOR KEY SHARE`` so that a rotation waits for this transaction to commit."""
    if connection.vendor != "postgresql":  # SQLite (development) serialises writers anyway
        return _match_primary_row().version
    for _attempt in range(3):
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT version FROM {MatchKey._meta.db_table} WHERE status = %s FOR KEY SHARE",  # noqa: S608 - ours
                [MatchKeyStatus.PRIMARY],
            )
            row = cursor.fetchone()
        if row is not None:
            return int(row[0])
        # No first key yet (made here), or a rotation replaced it while this statement waited for the lock.
        _match_primary_row()
    raise Conflict("The match key is being rotated right now; please try again.")


def match_key(*, hold: bool = False) -> tuple[int, bytes]:
    """The primary match key as (version, key), made on first use.

    A writer of tokens passes ``hold=True`` inside its transaction: the primary row is then locked ``FOR KEY SHARE``
    until it commits, so a rotation waits for it and the recompute after the rotation sees every token it wrote.
    """
    if hold:
        if not connection.in_atomic_block:
            raise RuntimeError("match_key(hold=True) holds the key only inside a transaction")
        version = _match_primary_held()
        return version, match_key_version(version)
    key = _match_primary_row()
    cached = _match_cached(key.version)
    return key.version, cached if cached is not None else _match_remember(key.version, _match_unwrap(key))


def match_key_version(version: int) -> bytes:
    """A match key version, primary or previous; DecryptionError when it does not exist or is retired."""
    cached = _match_cached(version)
    if cached is not None:
        return cached
    key = MatchKey.objects.filter(version=version).first()
    if key is None:
        raise DecryptionError(f"there is no match key v{version}")
    return _match_remember(version, _match_unwrap(key))


def match_key_versions() -> list[int]:
    """The versions whose tokens may be in the database, primary first: a check computes its tokens under each."""
    live = list(MatchKey.objects.exclude(status=MatchKeyStatus.RETIRED).values_list("version", "status"))
    if not live:  # the first key is made on first use
        live = [(match_key()[0], MatchKeyStatus.PRIMARY)]
    return [version for version, status in sorted(live, key=lambda row: (row[1] != MatchKeyStatus.PRIMARY, -row[0]))]


def blind_token(key: bytes, kind: str, value: str) -> bytes:
    """``HMAC-SHA256(key, "kind|value")``: a token under a key already in hand (the scale-data generator seals
    outside the database)."""
    if not _KIND.match(kind):
        raise ValueError(f"{kind!r} is not a kind of matchable value")
    if not value:
        raise ValueError("an empty value is not matchable")
    return hmac.new(key, f"{kind}|{value}".encode(), hashlib.sha256).digest()


def match_token(kind: str, value: str, *, version: int | None = None) -> bytes:
    """The blind token of one normalised value: the 32 bytes of ``HMAC-SHA256(match key, "kind|value")`` (UTF-8).

    Binary rather than hex: half the size in the tokens' index, and compared as bytes. ``version`` is the primary
    key's when not given; the value must already be normalised (messaging.matching), this only blinds it.
    """
    key = match_key()[1] if version is None else match_key_version(version)
    return blind_token(key, kind, value)


def match_tokens(
    pairs: Iterable[tuple[str, str]], *, version: int | None = None, hold: bool = False
) -> tuple[int, list[bytes]]:
    """The tokens of many (kind, value) pairs under one key version, and that version (store it with them)."""
    if version is None:
        version, key = match_key(hold=hold)
    else:
        key = match_key_version(version)
    return version, [blind_token(key, kind, value) for kind, value in pairs]


@transaction.atomic
def match_key_rotate(*, actor: AbstractBaseUser | None) -> MatchKey:
    """Make a new primary match key version; the old one still computes tokens until they are all recomputed."""
    current = MatchKey.objects.select_for_update().filter(status=MatchKeyStatus.PRIMARY).first()
    if MatchKey.objects.filter(status=MatchKeyStatus.PREVIOUS).exists():
        raise Conflict("A rotation of the match key is still under way; let it finish first.")
    if current is None:
        match_key()
        current = MatchKey.objects.select_for_update().get(status=MatchKeyStatus.PRIMARY)
    current.status = MatchKeyStatus.PREVIOUS
    current.save(update_fields=["status"])
    new = _match_create_version(current.version + 1)
    audit.record(
        action="agencies.match_key.rotate",
        actor=actor,
        target=new,
        details={"old_version": current.version, "new_version": new.version},
    )
    return new


@transaction.atomic
def match_key_retire(*, actor: AbstractBaseUser | None, version: int) -> MatchKey:
    """Destroy a rotated-out match key version. Call only once no token of it is left."""
    key = MatchKey.objects.select_for_update().get(version=version)
    if key.status == MatchKeyStatus.PRIMARY:
        raise Conflict("The primary match key cannot be retired; rotate first.")
    key.status = MatchKeyStatus.RETIRED
    key.wrapped_key = b""
    key.retired_at = timezone.now()
    key.save(update_fields=["status", "wrapped_key", "retired_at"])
    with _cache_lock:
        _match_cache.pop(version, None)
    audit.record(action="agencies.match_key.retire", actor=actor, target=key, details={"version": version})
    return key


# --- recomputing tokens after a rotation ---------------------------------------------------------------------------
# The tables that hold tokens belong to messaging, which agencies never imports: each registers here (from its app's
# ready()) a step that recomputes a batch of its tokens of the old version with the primary key, returning
# (recomputed, remaining). A table holding tokens MUST register one: once every step reports nothing remaining, the
# old version is retired, and a token of it left anywhere would never match again.

RecomputeStep = Callable[..., tuple[int, int]]
_recompute_steps: dict[str, RecomputeStep] = {}


def match_token_table_register(name: str, step: RecomputeStep) -> None:
    """Register the recompute step of a table of tokens: ``step(old_version=, new_version=, deadline=)``, with
    ``deadline`` a ``time.monotonic()`` value or None, returns (tokens recomputed, tokens of old_version left)."""
    _recompute_steps[name] = step


def match_token_tables() -> tuple[str, ...]:
    return tuple(sorted(_recompute_steps))


@dataclass(frozen=True)
class RecomputeResult:
    recomputed: int
    remaining: int
    retired: bool


def match_tokens_recompute(
    *, actor: AbstractBaseUser | None, old_version: int, time_budget: float | None = None
) -> RecomputeResult:
    """Recompute every token of ``old_version`` with the primary key, table by table; when none is left, retire the
    old version. Recorded. Idempotent: run it again to continue where it stopped."""
    old = MatchKey.objects.filter(version=old_version).first()
    if old is None or old.status == MatchKeyStatus.PRIMARY:
        raise Conflict(f"Match key v{old_version} is not being rotated out.")
    if old.status == MatchKeyStatus.RETIRED:
        return RecomputeResult(recomputed=0, remaining=0, retired=True)
    new_version = MatchKey.objects.get(status=MatchKeyStatus.PRIMARY).version
    deadline = None if time_budget is None else time.monotonic() + time_budget
    recomputed = remaining = 0
    tables: dict[str, dict[str, int]] = {}
    for name in match_token_tables():
        done, left = _recompute_steps[name](old_version=old_version, new_version=new_version, deadline=deadline)
        recomputed, remaining = recomputed + done, remaining + left
        tables[name] = {"recomputed": done, "remaining": left}
    with transaction.atomic():
        retired = remaining == 0
        if retired:
            match_key_retire(actor=actor, version=old_version)
        details: dict[str, Any] = {
            "old_version": old_version,
            "new_version": new_version,
            "count": recomputed,
            "remaining": remaining,
            "retired": retired,
            "tables": tables,
        }
        audit.record(action="agencies.match_key.recompute", actor=actor, target=old, details=details)
    return RecomputeResult(recomputed=recomputed, remaining=remaining, retired=retired)


# --- under the master key --------------------------------------------------------------------------------------
# A master key rotation (agencies.masterkeys) re-wraps both tables; it never changes a country key or match key itself,
# yet this process's caches are dropped with each change of master key version, so that nothing here outlives the
# version that opened it.
master_sealed_table_register(
    "agencies.countrykey",
    CountryKey,
    value_field="wrapped_key",
    version_field="master_version",
    aad_of=lambda key: _kek_aad(key.country_id, key.version),
)
master_sealed_table_register(
    "agencies.matchkey",
    MatchKey,
    value_field="wrapped_key",
    version_field="master_version",
    aad_of=lambda key: _match_aad(key.version),
)
master_key_cache_hook_register(forget_cached_keys)
