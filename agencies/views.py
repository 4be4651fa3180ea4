from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from agencies.selectors import is_network_member, offices_visible_to


@require_safe
@login_required
def directory(request: HttpRequest) -> HttpResponse:
    """Every office of the network with its counterparts and contacts."""
    if not is_network_member(request.user):
        raise PermissionDenied
    return render(request, "agencies/directory.html", {"offices": offices_visible_to(request.user)})
