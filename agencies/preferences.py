"""A member's own portal preferences: the language of the portal and whether ISN also e-mails them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction

from agencies.models import Membership
from agencies.selectors import membership_for
from isn import audit
from isn.errors import InvalidInput, PermissionDenied

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


@transaction.atomic
def membership_preferences_update(
    *, actor: AbstractBaseUser, language: str | None = None, email_notifications: bool | None = None
) -> Membership:
    """Change the actor's own language ("" = the browser's choice) or e-mail choice; recorded when anything changed."""
    membership = membership_for(actor)
    if membership is None:
        raise PermissionDenied("Only members of the network have portal preferences.")
    if language is not None and language != "" and language not in dict(settings.LANGUAGES):
        raise InvalidInput(f"{language!r} is not one of the portal's languages.", extra={"fields": {"language": []}})
    locked = Membership.objects.select_for_update().get(pk=membership.pk)
    changed: dict[str, object] = {}
    if language is not None and language != locked.language:
        locked.language = language
        changed["language"] = language
    if email_notifications is not None and email_notifications != locked.email_notifications:
        locked.email_notifications = email_notifications
        changed["email_notifications"] = email_notifications
    if changed:
        locked.save(update_fields=[*changed, "updated_at"])
        audit.record(
            action="agencies.membership.preferences",
            actor=actor,
            target=locked,
            target_country=membership.agency.country_id,
            details=changed,
        )
        # The membership cached on the user for this request must not keep the old choice.
        membership.language = locked.language
        membership.email_notifications = locked.email_notifications
    return membership
