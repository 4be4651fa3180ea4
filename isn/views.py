from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse_lazy
from django.views import defaults
from django.views.decorators.http import require_safe

from agencies.selectors import membership_for, offices_visible_to
from isn import audit


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


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change, with the audit event in the same transaction as the new password."""

    template_name = "portal/password_change.html"
    success_url = reverse_lazy("password_change_done")

    def form_valid(self, form: Form) -> HttpResponse:
        with transaction.atomic():
            response = super().form_valid(form)
            audit.record(action="auth.password_change", actor=self.request.user, target=self.request.user)
        return response


def permission_denied(request: HttpRequest, exception: Exception | None = None, **kwargs: Any) -> HttpResponse:
    """handler403: every refused portal request is an audit event, then Django's own 403 page."""
    match = request.resolver_match
    # A denial has no act to roll back: its own transaction. Refused before authentication ran: anonymous.
    with transaction.atomic():
        audit.record(
            action="access.denied",
            actor=getattr(request, "user", None) or AnonymousUser(),
            outcome="denied",
            details={
                "reason": "permission_denied",
                "method": request.method,
                "path": request.path,
                "view": match.view_name if match is not None else "",
            },
        )
    return defaults.permission_denied(request, exception)
