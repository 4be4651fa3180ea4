"""One-time enrolment codes: with ``ISN_ENROLMENT_CODE_REQUIRED`` (production's default), a person enrols their first
second factor only after entering the code their agency admin gave them, so a stolen password alone enrols nothing.

A code has 60 random bits, is stored only as its SHA-256 hash (like an API key's secret, too random to guess from the
hash), expires after ``ISN_ENROLMENT_CODE_HOURS`` and is spent at its first use. Agencies issue them
(``agencies.enrolment``); the enrolment page redeems them (``isn.twofactor``).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from isn.models import EnrolmentCode

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: read aloud or typed from a note


def enrolment_code_hash(code: str) -> str:
    """The stored form of a code, as typed in any case, with or without its dashes and spaces."""
    normalised = "".join(code.split()).replace("-", "").upper()
    grouped = "-".join(normalised[i : i + 4] for i in range(0, len(normalised), 4))
    return hashlib.sha256(grouped.encode()).hexdigest()


def enrolment_code_create(*, user: AbstractBaseUser, issued_by: AbstractBaseUser | None) -> tuple[EnrolmentCode, str]:
    """A new code for ``user`` (replacing any unspent one) and its plaintext, to be shown once. The caller audits."""
    now = timezone.now()
    EnrolmentCode.objects.filter(user=user, used_at__isnull=True, expires_at__gt=now).update(expires_at=now)
    plaintext = "-".join("".join(secrets.choice(_ALPHABET) for _ in range(4)) for _ in range(3))
    code = EnrolmentCode.objects.create(
        user=user,
        issued_by=issued_by,
        code_hash=enrolment_code_hash(plaintext),
        expires_at=now + timedelta(hours=settings.ISN_ENROLMENT_CODE_HOURS),
    )
    return code, plaintext


@transaction.atomic
def enrolment_code_redeem(*, user: AbstractBaseUser, presented: str) -> EnrolmentCode | None:
    """Spend ``user``'s live code matching ``presented``; None when there is none (unknown, spent or expired)."""
    code = (
        EnrolmentCode.objects.select_for_update()
        .filter(user=user, code_hash=enrolment_code_hash(presented), used_at__isnull=True)
        .first()
    )
    now = timezone.now()
    if code is None or code.expires_at <= now:
        return None
    code.used_at = now
    code.save(update_fields=["used_at"])
    return code
