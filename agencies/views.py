"""The portal's pages of a member's place in the network: home, directory and account, and the language picker."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render, resolve_url
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST, require_safe

from agencies.portal import portal_view
from agencies.preferences import membership_preferences_update
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
