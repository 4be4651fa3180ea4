"""The leaver rule: a person whose membership is suspended, or whose account is disabled, loses at once every session,
every API key they issued (a key never reaches further than its issuer) or act through, and every subscription of
theirs. What was cut goes into the caller's audit event, by count and id; never a secret or a session key.

Subscriptions belong to ``messaging``, which ``agencies`` may not import: ``messaging`` answers ``member_cut_off``
(a Django signal sent inside the caller's transaction) and returns what it cut, so a failure there fails the act.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone

from agencies.models import ApiKey
from isn import audit
from isn.sessions import sessions_delete_for

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

# Sent with ``user_id`` and ``actor``; each receiver returns a dict of what it cut (e.g. {"subscription_ids": [...]}).
member_cut_off = Signal()


def cut_off(*, actor: AbstractBaseUser | None, user_id: int) -> dict[str, Any]:
    """Cut the person off everywhere, now, in the caller's transaction; returns what was cut, for its audit event."""
    sessions = sessions_delete_for(user_id)
    now = timezone.now()
    keys = list(
        ApiKey.objects.select_for_update()
        .select_related("agency")
        .filter(Q(created_by_id=user_id) | Q(user_id=user_id), revoked_at__isnull=True)
        .order_by("pk")
    )
    for key in keys:
        key.revoked_at = now
        key.save(update_fields=["revoked_at"])
        # The key's service account goes with it; it has no sessions or subscriptions of its own to cut.
        get_user_model().objects.filter(pk=key.user_id).update(is_active=False)
        audit.record(
            action="agencies.api_key.revoke",
            actor=actor,
            target=key,
            target_country=key.agency.country_id,
            details={"prefix": key.prefix, "reason": "leaver"},
        )
    cut: dict[str, Any] = {"sessions": sessions, "api_key_ids": [key.pk for key in keys]}
    for _receiver, answer in member_cut_off.send(sender=ApiKey, user_id=user_id, actor=actor):
        if isinstance(answer, dict):
            cut.update(answer)
    return cut


def anything_cut(cut: dict[str, Any]) -> bool:
    return any(bool(value) for value in cut.values())
