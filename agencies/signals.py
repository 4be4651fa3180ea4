"""A disabled account is a leaver too: when a person's ``is_active`` (or their membership's, saved whole) is saved false
(the Django admin, a script), they lose sessions, keys and subscriptions at once (``agencies.leavers``), recorded as
``agencies.user.cut_off``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from agencies.leavers import anything_cut, cut_off
from agencies.models import Membership
from isn import audit


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="agencies.user_disabled_cut_off")
def _user_disabled(sender: Any, instance: Any, created: bool, update_fields: Any = None, **kwargs: Any) -> None:
    if created or instance.is_active:
        return
    if update_fields is not None and "is_active" not in update_fields:
        return
    cut = cut_off(actor=None, user_id=instance.pk)
    if not anything_cut(cut):
        return  # already cut off (saved again while disabled, or an API key's own account being retired)
    country = Membership.objects.filter(user_id=instance.pk).values_list("agency__country_id", flat=True).first()
    audit.record(
        action="agencies.user.cut_off",
        actor=None,
        target=instance,
        target_country=country or "",
        details={"user_id": instance.pk, "cut": cut},
    )


@receiver(post_save, sender=Membership, dispatch_uid="agencies.membership_disabled_cut_off")
def _membership_disabled(
    sender: Any, instance: Membership, created: bool, update_fields: Any = None, **kwargs: Any
) -> None:
    """A membership saved whole as suspended (the Django admin, a script) cuts its person off too. The services save
    named fields and cut off themselves, recording it in their own event (agencies.services, agencies.reviews)."""
    if created or instance.is_active or update_fields is not None:
        return
    cut = cut_off(actor=None, user_id=instance.user_id)
    if not anything_cut(cut):
        return
    audit.record(
        action="agencies.user.cut_off",
        actor=None,
        target=instance.user,
        target_country=instance.agency.country_id,
        details={"user_id": instance.user_id, "membership_id": instance.pk, "cut": cut},
    )
