"""The portal's pages of a member's place in the network: home, directory and account, and the language picker."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render, resolve_url
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST, require_safe

from agencies.models import Agency, Role
from agencies.portal import portal_view
from agencies.preferences import membership_preferences_update
from agencies.reviews import due_at, memberships_confirm, reviews_visible_to
from agencies.selectors import is_network_member, membership_for, offices_visible_to
from isn.errors import ApplicationError
from isn.views import remember_language, safe_next


@require_safe  # a page, not a form: anything but GET or HEAD is 405
@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The signed-in member's place in the network: agency, office and counterpart offices."""
    membership = membership_for(request.user)
    counterparts = []
    if membership is not None and membership.office_id is not None:
        office = offices_visible_to(request.user).filter(pk=membership.office_id).first()
        counterparts = list(office.counterparts.all()) if office else []
    return render(request, "agencies/home.html", {"membership": membership, "counterparts": counterparts})


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """The language picker: kept on the member (every device follows) and in a cookie (the sign-in page follows)."""
    response = HttpResponseRedirect(safe_next(request, resolve_url("portal:home")))
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


@portal_view(("GET",))
def directory(request: HttpRequest) -> HttpResponse:
    """Every office of the network with its counterparts and contacts."""
    return render(request, "agencies/directory.html", {"offices": offices_visible_to(request.user)})


class AccountForm(forms.Form):
    language = forms.ChoiceField(label=gettext_lazy("Language of the portal"), required=False)
    email_notifications = forms.BooleanField(
        label=gettext_lazy("Also tell me by e-mail when something is routed to me (never its content)"),
        required=False,
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["language"].choices = [("", gettext_lazy("As my browser asks")), *settings.LANGUAGES]


@portal_view(("GET", "POST"))
def account(request: HttpRequest) -> HttpResponse:
    """The member's own preferences: language and e-mail notifications (changes are recorded)."""
    membership = membership_for(request.user)
    initial = {"language": membership.language, "email_notifications": membership.email_notifications}
    form = AccountForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        membership_preferences_update(
            actor=request.user,
            language=form.cleaned_data["language"],
            email_notifications=form.cleaned_data["email_notifications"],
        )
        response = redirect("portal:account")
        language = form.cleaned_data["language"]
        remember_language(response, language)
        if language:
            translation.activate(language)  # the confirmation below is already in the new language
        messages.success(request, _("Your preferences are saved."))
        return response
    return render(request, "agencies/account.html", {"form": form, "membership": membership})


@portal_view(("GET", "POST"))
def access_review(request: HttpRequest) -> HttpResponse:
    """An agency admin's access review: each member with their last confirmation and when it lapses; confirm those
    who still need their place (a national focal point reviews their country's agency admins here too)."""
    if membership_for(request.user).role not in (Role.AGENCY_ADMIN, Role.NATIONAL_FOCAL_POINT):  # type: ignore[union-attr]
        raise PermissionDenied
    reviews = reviews_visible_to(request.user)
    if request.method == "POST":
        chosen = {value for value in request.POST.getlist("membership") if value.isdigit() and len(value) < 19}
        by_agency: dict[int, list[int]] = {}
        for pk, agency_id in reviews.filter(pk__in=chosen).values_list("pk", "agency_id"):
            by_agency.setdefault(agency_id, []).append(pk)
        if not by_agency:
            messages.error(request, _("Choose at least one member to confirm."))
            return redirect("portal:access_review")
        confirmed = 0
        with transaction.atomic():
            for agency in Agency.objects.filter(pk__in=by_agency).order_by("pk"):
                confirmed += len(
                    memberships_confirm(
                        actor=request.user, agency=agency, membership_ids=by_agency[agency.pk]
                    ).memberships
                )
        messages.success(
            request,
            ngettext("%(count)d member confirmed.", "%(count)d members confirmed.", confirmed) % {"count": confirmed},
        )
        return redirect("portal:access_review")
    now = timezone.now()
    rows = [{"membership": m, "due_at": due_at(m), "overdue": due_at(m) <= now} for m in reviews]
    soon = now + timedelta(days=14)
    return render(
        request,
        "agencies/access_review.html",
        {"rows": rows, "soon": soon, "period_days": settings.ISN_ACCESS_REVIEW_DAYS},
    )
