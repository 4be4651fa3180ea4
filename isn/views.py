"""The portal's shared pieces that know no app: the one place that turns domain errors into pages
(``domain_error_response``), the audited 403, the password change and the language cookie. The gate every portal page
goes through, and the pages of a member's place in the network, are in ``agencies``."""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError, transaction
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template import loader
from django.urls import NoReverseMatch, reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views import defaults

import isn.audit
from isn.errors import ApplicationError, NotFound, Probed
from isn.errors import PermissionDenied as DomainPermissionDenied
from isn.problems import is_api_request, problem_response

logger = logging.getLogger(__name__)

# How long a client is asked to wait before trying again while the database is out of reach (a restart, a failover).
DATABASE_RETRY_AFTER_SECONDS = 5

# What a person is told when a service refuses, by the error's code; the service's own (English) message follows as
# the detail. Codes not listed get the generic text of their class.
_FRIENDLY: dict[str, Any] = {
    "content_unavailable": _(
        "This item's content cannot be opened for your country. The failure has been recorded; ask the originating "
        "agency to check the release."
    ),
    "already_acknowledged": _("Your agency has already acknowledged this item."),
    "conflict": _("This cannot be done now: it changed in the meantime (for example, it was withdrawn)."),
    "invalid": _("Some of what was sent is not valid."),
}


def domain_error_response(request: HttpRequest, error: ApplicationError, **view_kwargs: Any) -> HttpResponse:
    """A domain error as a page: not found and refused as Django's 404 and 403 (both audited), anything else as a
    friendly message with the error's status."""
    if isinstance(error, NotFound):
        # A refused look at one object, like the API's: the repeated-denials flag counts these.
        if view_kwargs or error.probed is not None:
            _record_denial(request, "not_found", error.probed)
        raise Http404(error.message)
    if isinstance(error, DomainPermissionDenied):
        raise DjangoPermissionDenied(error.message)
    friendly = _FRIENDLY.get(error.code) or _FRIENDLY["conflict" if error.status == 409 else "invalid"]
    context = {"friendly": friendly, "detail": error.message, "back": safe_next(request, "")}
    return render(request, "portal/problem.html", context, status=error.status)


def safe_next(request: HttpRequest, default: str) -> str:
    """The ``next`` this request names (POST, then GET, then the Referer), when it is a page of ours."""
    for candidate in (request.POST.get("next"), request.GET.get("next"), request.headers.get("Referer")):
        if candidate and url_has_allowed_host_and_scheme(
            candidate, {request.get_host()}, require_https=request.is_secure()
        ):
            return candidate
    return default


def remember_language(response: HttpResponse, language: str) -> None:
    """Keep the chosen language in the language cookie (the sign-in page follows it); "" forgets it."""
    if not language:
        response.delete_cookie(settings.LANGUAGE_COOKIE_NAME, path=settings.LANGUAGE_COOKIE_PATH)
        return
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change, with the audit event in the same transaction as the new password."""

    template_name = "portal/password_change.html"
    success_url = reverse_lazy("password_change_done")

    def form_valid(self, form: Form) -> HttpResponse:
        with transaction.atomic():
            response = super().form_valid(form)
            isn.audit.record(action="auth.password_change", actor=self.request.user, target=self.request.user)
        return response


def _record_denial(request: HttpRequest, reason: str, probed: Probed | None = None) -> None:
    match = request.resolver_match
    # A denial has no act to roll back: its own transaction. Refused before authentication ran: anonymous.
    with transaction.atomic():
        isn.audit.record(
            action="access.denied",
            actor=getattr(request, "user", None) or AnonymousUser(),
            outcome="denied",
            # What was looked for, filed under the country whose it is, so that its national auditors see the probe.
            target_type=probed.type if probed is not None else "",
            target_id=probed.id if probed is not None else "",
            target_country=probed.country if probed is not None else "",
            details={
                "reason": reason,
                "method": request.method,
                "path": request.path,
                "view": match.view_name if match is not None else "",
            },
        )


def permission_denied(request: HttpRequest, exception: Exception | None = None, **kwargs: Any) -> HttpResponse:
    """handler403: every refused portal request is an audit event, then the 403 page."""
    _record_denial(request, "permission_denied")
    return defaults.permission_denied(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500. A database out of reach (restarting, failing over, a connection it dropped) is no error of ours and
    passes: 503 with Retry-After, as problem details under /api/ and a plain page in the portal, neither touching the
    database. A write cut off before its commit was rolled back whole. Anything else is Django's 500."""
    error = sys.exc_info()[1]
    if not isinstance(error, OperationalError | InterfaceError):
        return defaults.server_error(request)
    logger.warning("database unavailable (%s): answered 503", type(error).__name__)
    if is_api_request(request):
        response = problem_response(
            503,
            code="database_unavailable",
            detail="ISN cannot reach its database just now. Try again shortly (a write sent with an "
            "Idempotency-Key can be sent again safely).",
        )
    else:
        # No request context: the context processors would ask the database about the user.
        response = HttpResponse(loader.get_template("503.html").render(), status=503)
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


def portal_url(name: str, *args: Any) -> str | None:
    """A portal page's address, or None while no such page exists (pages added later light up links by themselves)."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None
