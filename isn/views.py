from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from agencies.selectors import membership_for, offices_visible_to


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The signed-in member's place in the network: agency, office and counterpart offices."""
    membership = membership_for(request.user)
    counterparts = []
    if membership is not None and membership.office_id is not None:
        office = offices_visible_to(request.user).filter(pk=membership.office_id).first()
        counterparts = list(office.counterparts.all()) if office else []
    return render(request, "portal/home.html", {"membership": membership, "counterparts": counterparts})
