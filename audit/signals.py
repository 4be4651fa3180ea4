"""Sign-ins, sign-outs and failed sign-ins, recorded from Django's own auth signals.

Receivers only record; they hold no other logic. A receiver that fails makes the sign-in fail with it (fail closed).
The password tried at a failed sign-in is never read: Django hands over cleansed credentials, and only the username
is kept, neutralised, as the actor's label.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from agencies.models import Membership
from audit.models import Outcome
from audit.services import neutralise, record


def _country_of(user: Any) -> str:
    return Membership.objects.filter(user_id=user.pk).values_list("agency__country_id", flat=True).first() or ""


@receiver(user_logged_in, dispatch_uid="audit.auth.login")
def record_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    record(action="auth.login", actor=user, target=user, target_country=_country_of(user))


@receiver(user_logged_out, dispatch_uid="audit.auth.logout")
def record_logout(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if user is None:  # signing out without a session: nobody to name
        return
    record(action="auth.logout", actor=user, target=user, target_country=_country_of(user))


@receiver(user_login_failed, dispatch_uid="audit.auth.login_failed")
def record_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    User = get_user_model()
    username = neutralise(str(credentials.get(User.USERNAME_FIELD, "")), limit=150)
    # Naming the account that was tried lets its country's auditor see attacks on their people.
    account = User.objects.filter(**{User.USERNAME_FIELD: username}).only("pk").first() if username else None
    record(
        action="auth.login_failed",
        actor=AnonymousUser(),
        actor_label=username or "anonymous",
        target=account,
        target_country=_country_of(account) if account is not None else "",
        outcome=Outcome.DENIED,
    )
