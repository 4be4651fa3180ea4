"""Signed checkpoints: Ed25519 statements that the chain up to an event id hashes to a given value.

A member that keeps an exported checkpoint can later run ``audit_verify --checkpoint FILE`` and prove that the log
still extends it unchanged: rewriting any earlier event changes every later hash, and the host cannot forge the
old signature over a new hash without the key the member saw it sign with.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db import transaction
from django.utils import timezone

from audit.chain import chain_head, iso_utc, seal_pending, wait_for_sealer_lock
from audit.keys import KEY_VARIABLE as KEY_VARIABLE  # re-exported: callers and tests import these from here
from audit.keys import parse_private_key as parse_private_key
from audit.keys import public_key_hex, signing_key
from audit.models import AuditCheckpoint
from audit.services import record

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

_MESSAGE_PREFIX = b"isn-audit-checkpoint-v1\n"
EXPORT_FIELDS = ("last_event_id", "chain_hash", "created_at", "public_key", "signature")


@dataclass(frozen=True)
class CheckpointClaim:
    """A signed checkpoint, from the database or from a file a member kept."""

    last_event_id: int
    chain_hash: str
    created_at: str
    public_key: str
    signature: str
    source: str = "database"

    @classmethod
    def from_row(cls, row: AuditCheckpoint) -> CheckpointClaim:
        return cls(row.last_event_id, row.chain_hash, iso_utc(row.created_at), row.public_key, row.signature)


def checkpoint_message(*, last_event_id: int, chain_hash: str, created_at: str) -> bytes:
    """The exact bytes signed: a fixed prefix, then compact key-sorted JSON of the three claims."""
    body = json.dumps(
        {"chain_hash": chain_hash, "created_at": created_at, "last_event_id": last_event_id},
        sort_keys=True,
        separators=(",", ":"),
    )
    return _MESSAGE_PREFIX + body.encode("ascii")


def checkpoint_signature_valid(claim: CheckpointClaim) -> bool:
    try:
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(claim.public_key))
        public.verify(
            bytes.fromhex(claim.signature),
            checkpoint_message(
                last_event_id=claim.last_event_id, chain_hash=claim.chain_hash, created_at=claim.created_at
            ),
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def checkpoint_create(*, actor: AbstractBaseUser | AnonymousUser | None = None) -> AuditCheckpoint | None:
    """Seal what is pending, then sign the chain head; None while nothing is sealed. Recorded as an event."""
    seal_pending()
    with transaction.atomic():
        wait_for_sealer_lock()  # the head cannot move while we sign it, and two creators cannot collide
        head_id, head_hash = chain_head()
        if head_id is None:
            return None
        existing = AuditCheckpoint.objects.filter(last_event_id=head_id).first()
        if existing is not None:
            return existing
        key = signing_key()
        created_at = timezone.now()
        message = checkpoint_message(last_event_id=head_id, chain_hash=head_hash, created_at=iso_utc(created_at))
        checkpoint = AuditCheckpoint.objects.create(
            last_event_id=head_id,
            chain_hash=head_hash,
            created_at=created_at,
            public_key=public_key_hex(key),
            signature=key.sign(message).hex(),
        )
        record(
            action="audit.checkpoint.create",
            actor=actor,
            target=checkpoint,
            details={"last_event_id": head_id, "chain_hash": head_hash},
        )
    return checkpoint


def checkpoint_export(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    """The JSON a member keeps: enough to check the signature and, later, that the log still extends it."""
    claim = CheckpointClaim.from_row(checkpoint)
    return {name: getattr(claim, name) for name in EXPORT_FIELDS}


@transaction.atomic
def checkpoint_file_write(
    *, actor: AbstractBaseUser | AnonymousUser | None, checkpoint: AuditCheckpoint, path: str
) -> None:
    """Write a checkpoint to ``path`` as JSON for a member to keep, recorded as an export; OSError if it cannot."""
    data = json.dumps(checkpoint_export(checkpoint), indent=2, sort_keys=True) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(data)
    record(
        action="audit.checkpoint.export",
        actor=actor,
        target=checkpoint,
        details={"last_event_id": checkpoint.last_event_id},
    )


def checkpoint_from_json(data: Any) -> CheckpointClaim:
    """A kept checkpoint read back; ValueError saying what is wrong with it."""
    if not isinstance(data, dict) or set(EXPORT_FIELDS) - set(data):
        raise ValueError(f"a checkpoint file holds a JSON object with {', '.join(EXPORT_FIELDS)}")
    last_event_id = data["last_event_id"]
    if not isinstance(last_event_id, int) or isinstance(last_event_id, bool) or last_event_id < 1:
        raise ValueError("last_event_id must be a positive whole number")
    texts = [data[name] for name in EXPORT_FIELDS[1:]]
    if not all(isinstance(text, str) for text in texts):
        raise ValueError("chain_hash, created_at, public_key and signature must be strings")
    return CheckpointClaim(last_event_id, *texts, source="file")
