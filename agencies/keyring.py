"""The keyring: one key-encryption key (KEK) per country, versioned, stored wrapped by the master key.

Items' data keys are wrapped with the KEK of each country an item is released to (messaging does that), so only
those countries' keys can open them. Unwrapped KEKs are cached briefly in the process: a read should not cost a
query and an unwrap for a key that changes once a year.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from agencies.models import CountryKey, CountryKeyStatus
from isn import audit
from isn.crypto import DecryptionError, associated_data, new_key, unwrap_key, wrap_key
from isn.errors import Conflict

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

_CACHE_SECONDS = 60.0
_cache: dict[tuple[str, int], tuple[float, bytes]] = {}
_cache_lock = threading.Lock()


def _kek_aad(country_code: str, version: int) -> bytes:
    return associated_data("country-key", country_code, version)


def _unwrap(key: CountryKey) -> bytes:
    if key.status == CountryKeyStatus.RETIRED or not key.wrapped_key:
        raise DecryptionError(f"{key.country_id} key v{key.version} is retired")
    return unwrap_key(settings.ISN_MASTER_KEY, bytes(key.wrapped_key), aad=_kek_aad(key.country_id, key.version))


def _remember(country_code: str, version: int, kek: bytes) -> bytes:
    with _cache_lock:
        _cache[(country_code, version)] = (time.monotonic() + _CACHE_SECONDS, kek)
    return kek


def forget_cached_keys() -> None:
    """Drop every cached KEK of this process (after rotation here, and in tests)."""
    with _cache_lock:
        _cache.clear()


def _create_version(country_code: str, version: int) -> CountryKey:
    kek = new_key()
    wrapped = wrap_key(settings.ISN_MASTER_KEY, kek, aad=_kek_aad(country_code, version))
    return CountryKey.objects.create(
        country_id=country_code, version=version, status=CountryKeyStatus.PRIMARY, wrapped_key=wrapped
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
