"""The portal's directory and account pages."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from agencies.preferences import membership_preferences_update
from agencies.selectors import membership_for, offices_visible_to
from isn.views import portal_view, remember_language


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
