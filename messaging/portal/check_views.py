"""The portal's "Check identifiers" page: a thin view over ``messaging.matching.discovery.identifiers_check``.

Officers in person type up to 50 identifiers; each answer says in how many items they can read it also appears (with
links), and which agencies of other countries hold something on it (hit/no-hit: the agency, its country and a
reference, with a link to ask them). Over a daily quota, the page says so and when it resets; a bad value is named on
its own row and input, and nothing is checked. Works without JavaScript: more rows are one more submit button.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from agencies.portal import portal_view
from isn.errors import InvalidInput
from messaging.matching.discovery import QuotaExceeded, identifiers_check
from messaging.models import IDENTIFIERS_PER_CHECK_MAX
from messaging.portal.check_forms import ROWS_FIRST, ROWS_MORE, CheckFormSet, row_errors
from messaging.portal.sharing_views import content_member

PREFIX = "row"


def quota_message(quota: dict[str, Any]) -> str:
    """Why a check was refused over a quota, and when it resets, in the viewer's language."""
    resets = datetime.fromisoformat(str(quota["resets_at"]))
    values = {"limit": quota["limit"], "used": quota["used"], "resets": f"{resets:%Y-%m-%d %H:%M}"}
    if quota["scope"] == "agency":
        text = _(
            "Not checked: this would go over your agency's daily quota of %(limit)s identifiers (%(used)s checked "
            "today). The quota resets at %(resets)s UTC."
        )
    elif quota["scope"] == "key":
        text = _(
            "Not checked: this would go over this API key's daily quota of %(limit)s identifiers (%(used)s checked "
            "today). The quota resets at %(resets)s UTC."
        )
    else:
        text = _(
            "Not checked: this would go over your daily quota of %(limit)s identifiers (%(used)s checked today). "
            "The quota resets at %(resets)s UTC."
        )
    return text % values


def _more_rows(request: HttpRequest) -> Any:
    """The same rows as posted, and some empty ones more (never above the most one check takes)."""
    data = request.POST.copy()
    try:
        total = int(data.get(f"{PREFIX}-TOTAL_FORMS") or 0)
    except ValueError:
        total = 0
    data[f"{PREFIX}-TOTAL_FORMS"] = str(max(1, min(total + ROWS_MORE, IDENTIFIERS_PER_CHECK_MAX)))
    return CheckFormSet(data, prefix=PREFIX)


@portal_view(("GET", "POST"))
def check_identifiers(request: HttpRequest) -> HttpResponse:
    """Check identifiers against what the network holds: related items the viewer can read, and hits (recorded by
    the service, and counted against the daily quotas)."""
    membership = content_member(request, "Only officers of a member agency check identifiers.")
    context: dict[str, Any] = {"most": IDENTIFIERS_PER_CHECK_MAX, "problems": [], "answers": None}
    status = 200
    if request.method != "POST":
        initial = [{"country": membership.agency.country_id} for _row in range(ROWS_FIRST)]
        formset = CheckFormSet(initial=initial, prefix=PREFIX)
    elif "more" in request.POST:
        formset = _more_rows(request)
        context["adding"] = True
    else:
        formset = CheckFormSet(request.POST, prefix=PREFIX)
        status = 400
        if formset.is_valid():
            filled = formset.filled()
            try:
                result = identifiers_check(actor=request.user, identifiers=[form.identifier() for _i, form in filled])
            except QuotaExceeded as refused:
                context["problems"] = [quota_message(refused.extra["quota"])]  # type: ignore[arg-type]
                status = 429
            except InvalidInput as error:
                positions = [index for index, _form in filled]
                context["problems"] = row_errors(formset, positions, error.extra.get("fields") or {})  # type: ignore[arg-type]
                if not context["problems"] and not any(formset.errors):
                    context["problems"] = [error.message]
            else:
                answers = {answer.position: answer for answer in result.results}
                context["answers"] = [(form, answers.get(position)) for position, (_i, form) in enumerate(filled)]
                status = 200
    context["formset"] = formset
    return render(request, "messaging/check.html", context, status=status)
