"""What a person's membership changes about each of their requests: a disabled membership ends the session, and a
saved portal language wins over the browser's."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation

from agencies.models import Membership
from agencies.selectors import membership_for
from isn.sessions import session_end


def _membership_ended(user: object) -> bool:
    """True when the person had a membership and it, or its agency, has been disabled since."""
    row = Membership.objects.filter(user_id=user.pk).values_list("is_active", "agency__is_active").first()  # type: ignore[attr-defined]
    return row is not None and not all(row)


class MembershipSessionMiddleware:
    """A signed-in session ends at the next request once its person's membership or agency is disabled.

    Runs after ``isn.sessions.SessionLimitsMiddleware`` (the idle and absolute limits). Agency API keys are refused by
    ``agencies.api_keys`` in the same cases.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated and _membership_ended(request.user):
            session_end(request, "membership_disabled")
        return self.get_response(request)


class MemberLanguageMiddleware:
    """A member's saved portal language (``Membership.language``) wins over the browser's, once the user is known.

    Runs after ``LocaleMiddleware`` (which picked the cookie's or the browser's language) and authentication.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            membership = membership_for(user)
            language = membership.language if membership is not None else ""
            if language and language in dict(settings.LANGUAGES):
                translation.activate(language)
                request.LANGUAGE_CODE = translation.get_language()  # type: ignore[attr-defined]
        return self.get_response(request)
