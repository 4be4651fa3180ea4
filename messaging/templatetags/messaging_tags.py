"""Template helpers for the portal's navigation and item pages."""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings
from django.http import HttpRequest

from agencies.models import Role
from agencies.selectors import membership_for
from audit.selectors import is_auditor
from messaging.core.labels import entity_type_label
from messaging.core.people import content_membership
from messaging.delivery.notifications import notifications_unread_count
from messaging.models import AcknowledgementNote, ConsentStatus, NotificationKind
from messaging.selectors.statistics import statistics_scope

register = template.Library()


@register.simple_tag(takes_context=True)
def portal_nav(context: template.Context) -> dict[str, Any]:
    """What the navigation bar offers this viewer (each page checks again for itself)."""
    request: HttpRequest | None = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_verified() or membership_for(user) is None:
        return {"member": False}
    return {
        "member": True,
        "content": content_membership(user) is not None,
        "statistics": statistics_scope(user) is not None,
        "auditor": is_auditor(user),
        "unread": notifications_unread_count(user),
        "reviewer": membership_for(user).role in (Role.AGENCY_ADMIN, Role.NATIONAL_FOCAL_POINT),  # type: ignore[union-attr]
    }


@register.filter
def language_name(code: str) -> str:
    """A language's own name (Tiếng Việt) from its code."""
    return dict(settings.LANGUAGES).get(code, code)


@register.filter
def acknowledgement_note(code: str) -> str:
    """An acknowledgement's note in the chosen language (Actioned, No trace...)."""
    try:
        return str(AcknowledgementNote(code).label)
    except ValueError:
        return code


@register.filter
def notification_kind(code: str) -> str:
    """What a notification says happened, in the chosen language."""
    try:
        return str(NotificationKind(code).label)
    except ValueError:
        return code


@register.filter
def consent_status(code: str) -> str:
    """A consent request's status in the chosen language."""
    try:
        return str(ConsentStatus(code).label)
    except ValueError:
        return code


@register.filter
def entity_type(code: str) -> str:
    """A kind of entity (phone number, vehicle...) in the chosen language."""
    return entity_type_label(code)
