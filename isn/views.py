"""The portal's shared pieces: the home page, the language picker, the one gate every portal page goes through
(``portal_view``), and the one place that turns domain errors into pages (``domain_error_response``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import transaction
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.urls import NoReverseMatch, reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views import defaults
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from agencies.preferences import membership_preferences_update
from agencies.selectors import is_network_member, membership_for, offices_visible_to
from isn import audit
from isn.errors import ApplicationError, NotFound
from isn.errors import PermissionDenied as DomainPermissionDenied

View = Callable[..., HttpResponse]

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
        if view_kwargs:  # a refused look at one object, like the API's: the repeated-denials flag counts these
            _record_denial(request, "not_found")
        raise Http404(error.message)
    if isinstance(error, DomainPermissionDenied):
        raise DjangoPermissionDenied(error.message)
    friendly = _FRIENDLY.get(error.code) or _FRIENDLY["conflict" if error.status == 409 else "invalid"]
    context = {"friendly": friendly, "detail": error.message, "back": _safe_next(request, "")}
    return render(request, "portal/problem.html", context, status=error.status)


def portal_view(methods: Sequence[str] = ("GET",), *, members_only: bool = True) -> Callable[[View], View]:
    """Every portal page: only these methods (HEAD with GET), signed in with both factors (the two-factor middleware
    sees to the second), a member of the network unless ``members_only`` is False, and domain errors as pages."""
    allowed = [*methods, "HEAD"] if "GET" in methods else list(methods)

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if members_only and not is_network_member(request.user):
                raise DjangoPermissionDenied
            try:
                return view(request, *args, **kwargs)
            except ApplicationError as error:
                return domain_error_response(request, error, **kwargs)

        return require_http_methods(allowed)(login_required(wrapped))

    return decorate


def _safe_next(request: HttpRequest, default: str) -> str:
    """The ``next`` this request names (POST, then GET, then the Referer), when it is a page of ours."""
    for candidate in (request.POST.get("next"), request.GET.get("next"), request.headers.get("Referer")):
        if candidate and url_has_allowed_host_and_scheme(
            candidate, {request.get_host()}, require_https=request.is_secure()
        ):
            return candidate
    return default


@require_safe  # a page, not a form: anything but GET or HEAD is 405
@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The signed-in member's place in the network: agency, office and counterpart offices."""
    membership = membership_for(request.user)
    counterparts = []
    if membership is not None and membership.office_id is not None:
        office = offices_visible_to(request.user).filter(pk=membership.office_id).first()
        counterparts = list(office.counterparts.all()) if office else []
    return render(request, "portal/home.html", {"membership": membership, "counterparts": counterparts})


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """The language picker: kept on the member (every device follows) and in a cookie (the sign-in page follows)."""
    response = HttpResponseRedirect(_safe_next(request, resolve_url("portal:home")))
    language = request.POST.get("language", "")
    if language not in dict(settings.LANGUAGES):
        return response
    user = request.user
    if user.is_authenticated and getattr(user, "is_verified", lambda: False)() and is_network_member(user):
        try:
            membership_preferences_update(actor=user, language=language)
        except ApplicationError as error:
            messages.error(request, error.message)
    remember_language(response, language)
    return response


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
            audit.record(action="auth.password_change", actor=self.request.user, target=self.request.user)
        return response


def _record_denial(request: HttpRequest, reason: str) -> None:
    match = request.resolver_match
    # A denial has no act to roll back: its own transaction. Refused before authentication ran: anonymous.
    with transaction.atomic():
        audit.record(
            action="access.denied",
            actor=getattr(request, "user", None) or AnonymousUser(),
            outcome="denied",
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


def portal_url(name: str, *args: Any) -> str | None:
    """A portal page's address, or None while no such page exists (pages added later light up links by themselves)."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None
