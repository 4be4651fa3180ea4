"""Template helpers for the sharing pages: the item page's sharing block and the navigation's waiting counts."""

from __future__ import annotations

from typing import Any

from django import template
from django.http import HttpRequest

from messaging.sharing_views import item_sharing, waiting_counts

register = template.Library()


@register.simple_tag(takes_context=True)
def item_sharing_block(context: template.Context) -> dict[str, Any]:
    """What the item page's sharing block offers: computed once the page's view has opened the item for the viewer."""
    request: HttpRequest | None = context.get("request")
    item = context.get("item")
    if request is None or item is None:
        return {"member": False}
    return item_sharing(request.user, item)


@register.simple_tag(takes_context=True)
def sharing_waiting(context: template.Context) -> dict[str, int] | None:
    """Consent requests and requests for information waiting for the viewer, or None when these pages are not theirs."""
    request: HttpRequest | None = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return waiting_counts(user)
