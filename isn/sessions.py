"""Session limits: a signed-in session ends after ISN_SESSION_IDLE_SECONDS without a request and ISN_SESSION_MAX_AGE_
SECONDS after sign-in whatever happens (and, by ``agencies.middleware``, once its person's membership is disabled).
Each end is recorded as ``auth.session_expired`` with the reason.

A disabled user (``is_active`` false) needs nothing here: Django's ModelBackend no longer returns them for the
session, so their next request is anonymous.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib import import_module

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

import isn.audit

STARTED_KEY = "isn.session_started"
SEEN_KEY = "isn.session_seen"
# The last-seen time is written at most this often: a session write on every request would cost more than the
# minute of idle time it could add.
_SEEN_GRANULARITY_SECONDS = 60


def session_start(request: HttpRequest) -> None:
    """Start both clocks now: called at sign-in, so a session cycled at sign-in does not inherit an older start."""
    now = int(time.time())
    request.session[STARTED_KEY] = now
    request.session[SEEN_KEY] = now


def session_end(request: HttpRequest, reason: str) -> None:
    """End the signed-in session now, recording why; the rest of the request is served as anonymous."""
    user = request.user
    with transaction.atomic():
        isn.audit.record(action="auth.session_expired", actor=user, target=user, details={"reason": reason})
    # Not logout(): that would record a sign-out the person never asked for.
    request.session.flush()
    request.user = AnonymousUser()


def sessions_delete_for(user_id: int) -> int:
    """End every live session of a person now (the leaver rule, ``agencies.leavers``); returns how many ended.

    Sessions are kept in the database (Django's ``db`` or ``cached_db`` engine) and name their user only inside the
    encoded data, so each live one is decoded: there are about as many as people signed in. Nothing is recorded
    here; the caller's event says how many sessions its act ended.
    """
    from django.contrib.sessions.models import Session

    if settings.SESSION_ENGINE not in (
        "django.contrib.sessions.backends.db",
        "django.contrib.sessions.backends.cached_db",
    ):
        raise NotImplementedError(
            f"Ending a person's sessions needs a database session engine, not {settings.SESSION_ENGINE}"
        )
    store = import_module(settings.SESSION_ENGINE).SessionStore
    wanted = str(user_id)
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if str(session.get_decoded().get(SESSION_KEY, "")) == wanted:
            store(session_key=session.session_key).delete()
            ended += 1
    return ended


class SessionLimitsMiddleware:
    """The idle and absolute limits of every signed-in session."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            reason = self._reason_to_end(request)
            if reason is not None:
                session_end(request, reason)
        return self.get_response(request)

    def _reason_to_end(self, request: HttpRequest) -> str | None:
        now = int(time.time())
        session = request.session
        started = session.get(STARTED_KEY)
        seen = session.get(SEEN_KEY)
        if not isinstance(started, int) or not isinstance(seen, int):
            session_start(request)
            started = seen = now
        if now - started >= settings.ISN_SESSION_ABSOLUTE_SECONDS:
            return "absolute_timeout"
        if now - seen >= settings.ISN_SESSION_IDLE_SECONDS:
            return "idle_timeout"
        if now - seen >= _SEEN_GRANULARITY_SECONDS:
            session[SEEN_KEY] = now
        return None
