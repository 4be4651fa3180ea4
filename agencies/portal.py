"""The one gate every portal page goes through (``portal_view``): it knows who is a member of the network."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods

from agencies.selectors import is_network_member
from isn.errors import ApplicationError
from isn.views import domain_error_response

View = Callable[..., HttpResponse]


def portal_view(methods: Sequence[str] = ("GET",), *, members_only: bool = True) -> Callable[[View], View]:
    """Every portal page: only these methods (HEAD with GET), signed in with both factors (the two-factor middleware
    sees to the second), a member of the network unless ``members_only`` is False, and domain errors as pages."""
    allowed = [*methods, "HEAD"] if "GET" in methods else list(methods)

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if members_only and not is_network_member(request.user):
                raise PermissionDenied
            try:
                return view(request, *args, **kwargs)
            except ApplicationError as error:
                return domain_error_response(request, error, **kwargs)

        return require_http_methods(allowed)(login_required(wrapped))

    return decorate
