"""Master key versions: which one wraps, which one opens a stored value, and rotation from one to the next.

isn.masterkey does the cryptography of one version (an environment key or a key inside a PKCS#11 token); this
module keeps the register of versions (``MasterKeyVersion``) and the tables whose values are sealed under a version
(country keys and the match key here, webhook secrets registered by messaging). A rotation:

1. ``master_key_rotate`` makes a new primary version (a new key generated in the token, or the environment's
   ``ISN_MASTER_KEY_NEXT``) and marks the old one retiring. It locks the primary row, so it waits until every
   transaction that wrapped under the old version has committed; from then on nothing new is wrapped under it.
2. ``master_key_rewrap_batch`` moves one batch of one table to the new version, in its own transaction. Re-running
   picks up the rows still naming the old version, so an interrupted rotation continues where it stopped.
3. ``master_key_destroy`` destroys the old version (deletes the token object; for an environment key the operator
   removes it) only when no row of any table names it any more.

Each step is recorded in the audit trail.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from agencies.models import MasterKeyBackend, MasterKeyStatus, MasterKeyVersion
from isn import audit, masterkey
from isn.crypto import DecryptionError
from isn.errors import Conflict, InvalidInput

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

_refs: dict[int, masterkey.MasterKeyRef] = {}
_refs_lock = threading.Lock()
_forget_hooks: list[Callable[[], None]] = []


def _ref(row: MasterKeyVersion) -> masterkey.MasterKeyRef:
    return masterkey.MasterKeyRef(version=row.version, backend=row.backend, reference=row.reference)


def forget_master_keys() -> None:
    """Drop this process's cached register of versions (their backend and reference, never key material)."""
    with _refs_lock:
        _refs.clear()


def master_key_cache_hook_register(hook: Callable[[], None]) -> None:
    """Run ``hook`` (the keyring's cache clearing) whenever this process changes or destroys a master key version."""
    if hook not in _forget_hooks:
        _forget_hooks.append(hook)


def _forget_everything() -> None:
    forget_master_keys()
    for hook in _forget_hooks:
        hook()


def _first_version() -> MasterKeyVersion:
    """Version 1, registered on first use: the environment key when one is given (what every deployment used before
    versions were recorded, so every existing wrapped value names v1), else a new key in the PKCS#11 token."""
    if settings.ISN_MASTER_KEY:
        backend, reference = MasterKeyBackend.ENVIRONMENT, masterkey.fingerprint(settings.ISN_MASTER_KEY)
    elif masterkey.pkcs11_configured():
        if any(master_version_references(1).values()):
            # Those values were wrapped by the environment key before versions were recorded: a new key in the
            # module would never open them. Move them into the module with rotate_master_key instead.
            raise DecryptionError(
                "keys are wrapped under the environment master key: give ISN_MASTER_KEY until rotate_master_key "
                "has moved them into the PKCS#11 module"
            )
        backend, reference = MasterKeyBackend.PKCS11, masterkey.pkcs11_generate(1)
    else:
        raise DecryptionError("no master key is configured (ISN_MASTER_KEY or ISN_PKCS11_MODULE)")
    try:
        with transaction.atomic():
            return MasterKeyVersion.objects.create(version=1, backend=backend, reference=reference)
    except IntegrityError:  # another process registered it at the same moment
        return MasterKeyVersion.objects.get(version=1)


def master_key_ref(version: int) -> masterkey.MasterKeyRef:
    """Where master key ``version`` is; DecryptionError when there is no such version or it was destroyed."""
    with _refs_lock:
        cached = _refs.get(version)
    if cached is not None:
        return cached
    row = MasterKeyVersion.objects.filter(version=version).first()
    if row is None and version == 1 and not MasterKeyVersion.objects.exists():
        row = _first_version()
    if row is None:
        raise DecryptionError(f"there is no master key v{version}")
    if row.status == MasterKeyStatus.DESTROYED:
        raise DecryptionError(f"master key v{version} was destroyed")
    ref = _ref(row)
    with _refs_lock:
        _refs[version] = ref
    return ref


def _primary_held() -> masterkey.MasterKeyRef:
    """The primary version, read ``FOR SHARE`` so that a rotation (``FOR UPDATE``) waits until this transaction
    commits: a value wrapped here is then either seen by the rotation's re-wrap or wrapped under the new version."""
    if connection.vendor != "postgresql":  # SQLite (development) serialises writers anyway
        row = MasterKeyVersion.objects.filter(status=MasterKeyStatus.PRIMARY).first()
        return _ref(row if row is not None else _first_version())
    if not connection.in_atomic_block:
        raise RuntimeError("wrapping under the master key holds its version only inside a transaction")
    for _attempt in range(3):
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT version, backend, reference FROM {MasterKeyVersion._meta.db_table} "  # noqa: S608 - ours
                "WHERE status = %s FOR SHARE",
                [MasterKeyStatus.PRIMARY],
            )
            found = cursor.fetchone()
        if found is not None:
            return masterkey.MasterKeyRef(version=int(found[0]), backend=found[1], reference=found[2])
        if not MasterKeyVersion.objects.exists():
            _first_version()
        # else a rotation replaced the primary while this statement waited for its lock: read again
    raise Conflict("The master key is being rotated right now; please try again.")


def master_wrap(plaintext: bytes, *, aad: bytes) -> tuple[int, bytes]:
    """Seal a key or secret under the primary master key version: (that version, the sealed value). Call inside the
    transaction that stores both."""
    ref = _primary_held()
    return ref.version, masterkey.wrap(ref, plaintext, aad=aad)


def master_unwrap(version: int, sealed: bytes, *, aad: bytes) -> bytes:
    """Open a value sealed under master key ``version``; DecryptionError on any failure."""
    return masterkey.unwrap(master_key_ref(version), sealed, aad=aad)


# --- the tables sealed under the master key ---------------------------------------------------------------------
# agencies registers its country keys and match keys; messaging its webhook secrets (agencies never imports it).
# A table holding values sealed under the master key MUST register: once no registered row names a version, it is
# destroyed, and a value of that version left anywhere else could never be opened again.


@dataclass(frozen=True)
class SealedTable:
    model: type[models.Model]
    value_field: str
    version_field: str
    aad_of: Callable[[Any], bytes]


_tables: dict[str, SealedTable] = {}


def master_sealed_table_register(
    name: str, model: type[models.Model], *, value_field: str, version_field: str, aad_of: Callable[[Any], bytes]
) -> None:
    """Register a table whose ``value_field`` is sealed under the master key version in ``version_field``, with
    ``aad_of(row)`` its associated data. An empty value (destroyed key material) names no version in effect."""
    _tables[name] = SealedTable(model, value_field, version_field, aad_of)


def master_sealed_tables() -> tuple[str, ...]:
    return tuple(sorted(_tables))


def master_version_references(version: int) -> dict[str, int]:
    """How many rows of each registered table still name master key ``version``."""
    return {
        name: _tables[name].model.objects.filter(**{_tables[name].version_field: version}).count()
        for name in master_sealed_tables()
    }


# --- rotation ---------------------------------------------------------------------------------------------------


def master_key_rotating() -> MasterKeyVersion | None:
    """The version being rotated out, if a rotation is under way."""
    return MasterKeyVersion.objects.filter(status=MasterKeyStatus.RETIRING).first()


def _new_reference(backend: str, version: int, live: list[MasterKeyVersion]) -> str:
    if backend == MasterKeyBackend.PKCS11:
        if not masterkey.pkcs11_configured():
            raise InvalidInput("No PKCS#11 module is configured (ISN_PKCS11_MODULE, ISN_PKCS11_TOKEN_LABEL, PIN).")
        return masterkey.pkcs11_generate(version)
    if not settings.ISN_MASTER_KEY_NEXT:
        raise InvalidInput("Rotating to a new environment key needs it in ISN_MASTER_KEY_NEXT (or _FILE).")
    reference = masterkey.fingerprint(settings.ISN_MASTER_KEY_NEXT)
    if any(row.backend == MasterKeyBackend.ENVIRONMENT and row.reference == reference for row in live):
        raise InvalidInput("ISN_MASTER_KEY_NEXT is a master key version already in use; give a new random key.")
    return reference


@transaction.atomic
def master_key_rotate(*, actor: AbstractBaseUser | None, backend: str) -> MasterKeyVersion:
    """Make a new primary master key version in ``backend``; the old primary only opens until re-wrapped."""
    if backend not in MasterKeyBackend.values:
        raise InvalidInput(f"{backend!r} is not a master key backend ({', '.join(MasterKeyBackend.values)}).")
    if MasterKeyVersion.objects.filter(status=MasterKeyStatus.RETIRING).exists():
        raise Conflict("A rotation of the master key is still under way; let it finish first.")
    current = MasterKeyVersion.objects.select_for_update().filter(status=MasterKeyStatus.PRIMARY).first()
    if current is None:
        if MasterKeyVersion.objects.exists():
            raise Conflict("The master key register has no primary version.")
        _first_version()
        current = MasterKeyVersion.objects.select_for_update().get(status=MasterKeyStatus.PRIMARY)
    live = list(MasterKeyVersion.objects.exclude(status=MasterKeyStatus.DESTROYED))
    version = MasterKeyVersion.objects.aggregate(top=models.Max("version"))["top"] + 1
    reference = _new_reference(backend, version, live)
    current.status = MasterKeyStatus.RETIRING
    current.save(update_fields=["status"])
    new = MasterKeyVersion.objects.create(version=version, backend=backend, reference=reference)
    audit.record(
        action="agencies.master_key.rotate",
        actor=actor,
        target=new,
        details={
            "old_version": current.version,
            "old_backend": current.backend,
            "new_version": new.version,
            "new_backend": new.backend,
        },
    )
    transaction.on_commit(_forget_everything)
    return new


def master_key_rewrap_batch(*, actor: AbstractBaseUser | None, table: str, batch_size: int = 100) -> int:
    """Move up to ``batch_size`` rows of ``table`` from the retiring version to the primary one, in one transaction
    of their own, recorded; how many were moved (0: the table is done)."""
    spec = _tables[table]
    with transaction.atomic():
        old = MasterKeyVersion.objects.filter(status=MasterKeyStatus.RETIRING).first()
        if old is None:
            return 0
        new = MasterKeyVersion.objects.get(status=MasterKeyStatus.PRIMARY)
        old_ref, new_ref = _ref(old), _ref(new)
        rows = list(
            spec.model.objects.select_for_update()
            .filter(**{spec.version_field: old.version})
            .order_by("pk")[:batch_size]
        )
        for row in rows:
            sealed = bytes(getattr(row, spec.value_field))
            if sealed:
                aad = spec.aad_of(row)
                setattr(
                    row, spec.value_field, masterkey.wrap(new_ref, masterkey.unwrap(old_ref, sealed, aad=aad), aad=aad)
                )
            setattr(row, spec.version_field, new.version)
            row.save(update_fields=[spec.value_field, spec.version_field])
        if rows:
            audit.record(
                action="agencies.master_key.rewrap",
                actor=actor,
                target=old,
                details={"table": table, "count": len(rows), "old_version": old.version, "new_version": new.version},
            )
    return len(rows)


@transaction.atomic
def master_key_destroy(*, actor: AbstractBaseUser | None, version: int) -> MasterKeyVersion:
    """Destroy a rotated-out master key version: delete its key from the token (an environment key is the operator's
    to remove). Conflict while any row still names it."""
    row = MasterKeyVersion.objects.select_for_update().get(version=version)
    if row.status == MasterKeyStatus.PRIMARY:
        raise Conflict("The primary master key cannot be destroyed; rotate first.")
    if row.status == MasterKeyStatus.DESTROYED:
        return row
    left = {name: count for name, count in master_version_references(version).items() if count}
    if left:
        raise Conflict(f"Master key v{version} still wraps {sum(left.values())} values; finish the re-wrap first.")
    if row.backend == MasterKeyBackend.PKCS11:
        masterkey.pkcs11_destroy(row.reference)
    row.status = MasterKeyStatus.DESTROYED
    row.destroyed_at = timezone.now()
    row.save(update_fields=["status", "destroyed_at"])
    audit.record(
        action="agencies.master_key.destroy",
        actor=actor,
        target=row,
        details={"version": version, "backend": row.backend},
    )
    transaction.on_commit(_forget_everything)
    return row


@dataclass(frozen=True)
class RotationProgress:
    old_version: int
    new_version: int
    rewrapped: int
    remaining: int
    destroyed: MasterKeyVersion | None


def master_key_rotation_continue(
    *, actor: AbstractBaseUser | None, batch_size: int = 100, max_batches: int | None = None
) -> RotationProgress:
    """Re-wrap the rotation under way batch by batch (at most ``max_batches``), then destroy the old version once
    nothing names it. Idempotent: run it again to continue where it stopped."""
    old = master_key_rotating()
    if old is None:
        raise Conflict("No rotation of the master key is under way.")
    new = MasterKeyVersion.objects.get(status=MasterKeyStatus.PRIMARY)
    rewrapped = batches = 0
    for table in master_sealed_tables():
        while max_batches is None or batches < max_batches:
            moved = master_key_rewrap_batch(actor=actor, table=table, batch_size=batch_size)
            if not moved:
                break
            rewrapped += moved
            batches += 1
    _forget_everything()
    remaining = sum(master_version_references(old.version).values())
    destroyed = master_key_destroy(actor=actor, version=old.version) if remaining == 0 else None
    return RotationProgress(old.version, new.version, rewrapped, remaining, destroyed)
