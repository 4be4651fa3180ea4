"""Template helpers about the members of the network: the viewer's time zone and country names in the chosen
language."""

from __future__ import annotations

from django import template
from django.http import HttpRequest

from agencies.models import CountryCode
from agencies.selectors import membership_for

register = template.Library()


@register.simple_tag(takes_context=True)
def member_timezone(context: template.Context) -> str | None:
    """The time zone of the signed-in member's country (times are shown there); None (UTC) for anyone else."""
    request: HttpRequest | None = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    membership = membership_for(user)
    return membership.agency.country.timezone if membership is not None else None


@register.filter
def country_name(code: str) -> str:
    """A member's name in the chosen language, from its code (KH -> Cambodia); an unknown code as it is."""
    try:
        return str(CountryCode(code).label)
    except ValueError:
        return code
