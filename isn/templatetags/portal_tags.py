"""Template helpers shared by every portal page: numbers in the chosen language, and links that keep a page's query
while changing one parameter (the viewer's time zone and country names: ``agencies``' member_tags)."""

from __future__ import annotations

from typing import Any

from django import template
from django.http import HttpRequest
from django.utils import formats, numberformat

register = template.Library()


@register.filter
def grouped(value: Any) -> str:
    """A number with the chosen language's digit grouping (1,234 or 1.234), whatever USE_THOUSAND_SEPARATOR says."""
    if value is None or value == "":
        return ""
    # Many of Django's locales name a separator but no grouping (0): group by thousands there.
    return numberformat.format(
        value,
        formats.get_format("DECIMAL_SEPARATOR"),
        grouping=formats.get_format("NUMBER_GROUPING") or 3,
        thousand_sep=formats.get_format("THOUSAND_SEPARATOR"),
        force_grouping=True,
    )


@register.simple_tag(takes_context=True)
def query_with(context: template.Context, **changes: Any) -> str:
    """The current page's query string with these parameters set (or removed when None or ""), escaped by the caller's
    autoescaping like any other value."""
    request: HttpRequest = context["request"]
    query = request.GET.copy()
    for name, value in changes.items():
        query.pop(name, None)
        if value not in (None, ""):
            query[name] = str(value)
    encoded = query.urlencode()
    return f"?{encoded}" if encoded else "?"
