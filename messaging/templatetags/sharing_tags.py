"""The navigation's waiting counts for the sharing pages (consent requests and requests for information)."""

from __future__ import annotations

from typing import Any

from django import template
from django.db.models import Q
from django.http import HttpRequest

from messaging.core.people import content_membership
from messaging.models import ConsentStatus, RfiStatus
from messaging.rfis.services import rfis_visible_to
from messaging.selectors.sharing import consents_visible_to
from messaging.sharing.consents import DECIDING_ROLES

register = template.Library()


def waiting_counts(viewer: Any) -> dict[str, int] | None:
    """What waits for the viewer (two counting queries on indexed columns), or None for those without these pages:
    consent requests about the agency's items waiting for a decision (for those who decide), and requests for
    information received and still open, or sent and answered."""
    membership = content_membership(viewer)
    if membership is None:
        return None
    agency = membership.agency_id
    consents = 0
    if membership.role in DECIDING_ROLES:
        consents = (
            consents_visible_to(viewer)
            .filter(status=ConsentStatus.PENDING, item__originator_agency_id=agency)
            .exclude(requester_user_id=membership.user_id)  # four eyes: what they asked for waits for another
            .order_by()
            .count()
        )
    rfis = (
        rfis_visible_to(viewer)
        .filter(
            Q(target_agency_id=agency, status=RfiStatus.OPEN) | Q(requester_agency_id=agency, status=RfiStatus.ANSWERED)
        )
        .order_by()
        .count()
    )
    return {"consents": consents, "rfis": rfis}


@register.simple_tag(takes_context=True)
def sharing_waiting(context: template.Context) -> dict[str, int] | None:
    """Consent requests and requests for information waiting for the viewer, or None when these pages are not theirs."""
    request: HttpRequest | None = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return waiting_counts(user)
