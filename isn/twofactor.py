"""Two factors for every person: the password, then a TOTP code from an authenticator app (or a one-time recovery
code). The session key is renewed at each step. A password-only session reaches nothing but these pages and sign-out:
``RequireSecondFactorMiddleware`` sends it here, and the API treats it as anonymous (``isn.authentication``).

django-otp checks the codes: a TOTP code at or before the last one accepted is refused (no replay), a recovery code
is deleted when used, and failures slow further tries down (``OTP_TOTP_THROTTLE_FACTOR``).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from urllib.parse import urlencode

import segno
from django import forms
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login
from django_otp import match_token, user_has_device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

import isn.audit
from isn.enrolment import enrolment_code_redeem
from isn.sessions import session_start

TOTP_DEVICE_NAME = "authenticator"
RECOVERY_DEVICE_NAME = "recovery codes"
ENROLMENT_CODE_SESSION_KEY = "isn_enrolment_code"


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code"),
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )

    def clean_code(self) -> str:
        return "".join(self.cleaned_data["code"].split())


def _next_url(request: HttpRequest) -> str:
    """Where to go after the second factor: the ``next`` asked for, when it is one of ours."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(candidate, {request.get_host()}, require_https=request.is_secure()):
        return candidate
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _with_next(url_name: str, next_url: str) -> str:
    return f"{reverse(url_name)}?{urlencode({'next': next_url})}"


def _verified(request: HttpRequest, device: TOTPDevice | StaticDevice, *, action: str) -> None:
    """Mark the session verified by ``device`` and give it a new key: whatever was known of the old one is void."""
    otp_login(request, device)
    request.session.cycle_key()
    isn.audit.record(
        action=action,
        actor=request.user,
        target=request.user,
        details={"method": "recovery_code" if isinstance(device, StaticDevice) else "totp"},
    )


class LoginView(auth_views.LoginView):
    """The password step: Django's sign-in (which renews the session key), then on to the second factor."""

    redirect_authenticated_user = True

    def form_valid(self, form: forms.Form) -> HttpResponse:
        response = super().form_valid(form)
        session_start(self.request)
        return response

    def get_success_url(self) -> str:
        target = "two_factor" if user_has_device(self.request.user) else "two_factor_enrol"
        return _with_next(target, self.get_redirect_url() or resolve_url(settings.LOGIN_REDIRECT_URL))


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def second_factor(request: HttpRequest) -> HttpResponse:
    """Ask for a code from the authenticator app, or a recovery code."""
    if request.user.is_verified():
        return HttpResponseRedirect(_next_url(request))
    if not user_has_device(request.user):
        return HttpResponseRedirect(_with_next("two_factor_enrol", _next_url(request)))
    form = CodeForm(request.POST or None)
    failed = False
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            device = match_token(request.user, form.cleaned_data["code"])
            if device is not None:
                _verified(request, device, action="auth.second_factor")
        if device is not None:
            return HttpResponseRedirect(_next_url(request))
        failed = True
        with transaction.atomic():
            isn.audit.record(
                action="auth.second_factor_failed", actor=request.user, target=request.user, outcome="denied"
            )
    context = {"form": form, "failed": failed, "next": _next_url(request)}
    return render(request, "registration/two_factor.html", context)


def _recovery_codes(user: AbstractBaseUser) -> list[str]:
    """A fresh set of one-time recovery codes, replacing any earlier set."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(settings.ISN_RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


class EnrolmentCodeForm(forms.Form):
    enrolment_code = forms.CharField(
        label=_("Enrolment code from your agency admin"),
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters", "autofocus": True}),
    )


def _enrolment_code_step(request: HttpRequest) -> HttpResponse | None:
    """With ``ISN_ENROLMENT_CODE_REQUIRED``, the page asking for the admin's one-time code until this session has
    spent one; then None. Any authenticator secret made before is void, so none was shown to a password alone."""
    if not settings.ISN_ENROLMENT_CODE_REQUIRED or request.session.get(ENROLMENT_CODE_SESSION_KEY):
        return None
    form = EnrolmentCodeForm(request.POST or None)
    failed = False
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            code = enrolment_code_redeem(user=request.user, presented=form.cleaned_data["enrolment_code"])
            if code is not None:
                TOTPDevice.objects.filter(user=request.user, confirmed=False).delete()
                isn.audit.record(
                    action="auth.enrolment_code_used",
                    actor=request.user,
                    target=request.user,
                    details={"enrolment_code_id": code.pk},
                )
                request.session[ENROLMENT_CODE_SESSION_KEY] = code.pk
                return HttpResponseRedirect(_with_next("two_factor_enrol", _next_url(request)))
        failed = True
        _record_enrol_failure(request, step="enrolment_code")
    context = {"form": form, "failed": failed, "next": _next_url(request)}
    return render(request, "registration/two_factor_enrolment_code.html", context)


def _record_enrol_failure(request: HttpRequest, *, step: str) -> None:
    with transaction.atomic():  # like a failed code at sign-in: the code itself is never recorded
        isn.audit.record(
            action="auth.second_factor_enrol_failed",
            actor=request.user,
            target=request.user,
            outcome="denied",
            details={"step": step},
        )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def enrol(request: HttpRequest) -> HttpResponse:
    """First sign-in: (in production, the admin's enrolment code first) add an authenticator app by its QR code,
    confirm it with a code, and get recovery codes."""
    if user_has_device(request.user):
        return HttpResponseRedirect(_with_next("two_factor", _next_url(request)))
    asking_for_code = _enrolment_code_step(request)
    if asking_for_code is not None:
        return asking_for_code
    device = TOTPDevice.objects.filter(user=request.user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=request.user, name=TOTP_DEVICE_NAME, confirmed=False)
    form = CodeForm(request.POST or None)
    failed = False
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            if device.verify_token(form.cleaned_data["code"]):
                device.confirmed = True
                device.save(update_fields=["confirmed"])
                codes = _recovery_codes(request.user)
                _verified(request, device, action="auth.second_factor_enrol")
                request.session.pop(ENROLMENT_CODE_SESSION_KEY, None)
                return render(request, "registration/recovery_codes.html", {"codes": codes, "next": _next_url(request)})
        failed = True
        _record_enrol_failure(request, step="authenticator")
    # The QR code is an image made here (a data: URI): no third-party service ever sees the secret.
    qr = segno.make(device.config_url, error="m").svg_data_uri(scale=5, border=2)
    secret = _base32(device.bin_key)
    context = {"form": form, "failed": failed, "qr": qr, "secret": secret, "next": _next_url(request)}
    return render(request, "registration/two_factor_enrol.html", context)


def _base32(key: bytes) -> str:
    """The secret as authenticator apps take it when typed in, in groups of four."""
    text = base64.b32encode(key).decode().rstrip("=")
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def _exempt_paths() -> tuple[str, ...]:
    # The API has its own rule (isn.authentication); static files, the health probe and the metrics carry nothing
    # personal.
    return (
        reverse("login"),
        reverse("logout"),
        reverse("two_factor"),
        reverse("two_factor_enrol"),
        settings.STATIC_URL,
        "/api/",
        reverse("healthz"),
        reverse("metrics"),
    )


class RequireSecondFactorMiddleware:
    """A signed-in person whose second factor is not yet verified is sent to verify it (or enrol one) first."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._exempt: tuple[str, ...] | None = None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and not user.is_verified():
            if self._exempt is None:
                self._exempt = _exempt_paths()
            if not request.path_info.startswith(self._exempt):
                target = "two_factor" if user_has_device(user) else "two_factor_enrol"
                return redirect_to_login(request.get_full_path(), reverse(target))
        return self.get_response(request)
