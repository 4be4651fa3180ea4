"""Re-wrapping data keys after a country key rotation, for items and requests for information alike."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction

from agencies.keyring import country_key_retire, country_key_rotate, key_version, primary_key
from agencies.models import CountryKey, CountryKeyStatus
from audit.models import Outcome
from audit.services import record
from isn.errors import Conflict
from messaging.core.sealing import (
    wrapped_key_rewrapped,
)
from messaging.models import (
    ItemKey,
    RfiKey,
)

if TYPE_CHECKING:
    from typing import TypeAlias

    from django.contrib.auth.models import AbstractBaseUser

    Actor: TypeAlias = AbstractBaseUser

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import TypeAlias

    from django.contrib.auth.models import AbstractBaseUser

    Actor: TypeAlias = AbstractBaseUser


@dataclass(frozen=True)
class RewrapResult:
    rewrapped: int
    failed: int
    remaining: int
    retired: bool


def country_keys_rewrap(
    *,
    actor: Actor | None,
    country_code: str,
    old_version: int,
    batch_size: int | None = None,
    time_budget: float | None = None,
) -> RewrapResult:
    """Re-wrap every data key of ``country_code`` held under ``old_version`` with the primary key, never opening
    content; when none is left, retire the old version. Idempotent: run it again to continue where it stopped.

    Long because it reports (and records) what every batch did in one place, so a resumed run reads the same.
    """
    old = CountryKey.objects.filter(country_id=country_code, version=old_version).first()
    if old is None or old.status == CountryKeyStatus.PRIMARY:
        raise Conflict(f"{country_code} key v{old_version} is not being rotated out.")
    if old.status == CountryKeyStatus.RETIRED:
        return RewrapResult(rewrapped=0, failed=0, remaining=0, retired=True)
    batch_size = batch_size or settings.ISN_KEY_REWRAP_BATCH
    deadline = None if time_budget is None else time.monotonic() + time_budget
    new_version = CountryKey.objects.get(country_id=country_code, status=CountryKeyStatus.PRIMARY).version
    rewrapped = 0
    # Items' data keys, then requests for information's: both are wrapped with the country's key.
    failed: dict[type[ItemKey | RfiKey], set[int]] = {ItemKey: set(), RfiKey: set()}
    for model in (ItemKey, RfiKey):
        while deadline is None or time.monotonic() < deadline:
            done, broken, seen = _rewrap_batch(
                country_code, old_version, batch_size, exclude=failed[model], model=model
            )
            rewrapped += done
            failed[model] |= broken
            if not seen:
                break
    remaining = sum(
        model.objects.filter(country_id=country_code, kek_version=old_version).exclude(pk__in=pks).count()
        for model, pks in failed.items()
    )
    with transaction.atomic():
        retired = False
        if remaining == 0:
            # Keys that did not unwrap with the old version were already unreadable; retiring loses nothing.
            country_key_retire(actor=actor, country_code=country_code, version=old_version)
            retired = True
        details: dict[str, Any] = {
            "old_version": old_version,
            "new_version": new_version,
            "count": rewrapped,
            "failed_item_ids": sorted(
                str(pk) for pk in ItemKey.objects.filter(pk__in=failed[ItemKey]).values_list("item_id", flat=True)
            ),
            "remaining": remaining,
            "retired": retired,
        }
        if failed[RfiKey]:
            details["failed_rfi_ids"] = sorted(
                str(pk) for pk in RfiKey.objects.filter(pk__in=failed[RfiKey]).values_list("rfi_id", flat=True)
            )
        record(
            action="messaging.country_key.rewrap",
            actor=actor,
            target=old,
            target_country=country_code,
            outcome=Outcome.ERROR if any(failed.values()) else Outcome.OK,
            details=details,
        )
    failures = sum(len(pks) for pks in failed.values())
    return RewrapResult(rewrapped=rewrapped, failed=failures, remaining=remaining, retired=retired)


@transaction.atomic
def _rewrap_batch(
    country_code: str,
    old_version: int,
    batch_size: int,
    *,
    exclude: set[int],
    model: type[ItemKey | RfiKey] = ItemKey,
) -> tuple[int, set[int], int]:
    # skip_locked: a key being shredded by a narrowing right now is not worth waiting for.
    batch = list(
        model.objects.select_for_update(skip_locked=True)
        .filter(country_id=country_code, kek_version=old_version)
        .exclude(pk__in=exclude)
        .order_by("pk")[:batch_size]
    )
    if not batch:
        return 0, set(), 0
    old_kek = key_version(country_code, old_version)
    new_version, new_kek = primary_key(country_code)
    done: list[ItemKey | RfiKey] = []
    broken: set[int] = set()
    for key in batch:
        if wrapped_key_rewrapped(key, old_kek, new_version, new_kek):
            done.append(key)
        else:
            broken.add(key.pk)
    model.objects.bulk_update(done, ["kek_version", "wrapped_key"])
    return len(done), broken, len(batch)


def country_key_retire_again(*, country_code: str, version: int) -> bool:
    """A restore retires again a country key version the revocation ledger says was retired after the backup:
    rotated out first if the backup still has it primary, every data key re-wrapped under the primary one (nothing
    becomes unreadable), then destroyed. False when it is already retired, or unknown to the backup."""
    key = CountryKey.objects.filter(country_id=country_code, version=version).first()
    if key is None or key.status == CountryKeyStatus.RETIRED:
        return False
    if key.status == CountryKeyStatus.PRIMARY:
        country_key_rotate(actor=None, country_code=country_code)
    result = country_keys_rewrap(actor=None, country_code=country_code, old_version=version)
    if not result.retired:
        raise Conflict(f"{country_code} key v{version}: {result.remaining} data keys could not be re-wrapped yet.")
    return True
