"""Reads of forwards and consent requests, scoped to the viewer in SQL.

A consent request is seen by its two sides only, the requesting agency (those of it who may read the item, and the
person who asked) and the originating agency; anyone else gets the answer an id that does not exist gets."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.db.models import Exists, OuterRef, Q, QuerySet

from isn.errors import NotFound, Probed
from messaging.core.people import (
    content_membership,
    reader_of,
)
from messaging.models import (
    ConsentRequest,
    Forward,
    Item,
)
from messaging.selectors.items import is_originator, items_visible_to

if TYPE_CHECKING:
    from typing import TypeAlias

    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    Actor: TypeAlias = AbstractBaseUser
    Viewer: TypeAlias = AbstractBaseUser | AnonymousUser


CONSENT_NOT_FOUND = "No such consent request."


def forwards_visible_to(viewer: Viewer, *, item: Item) -> QuerySet[Forward]:
    """The forwards of an item the viewer may list: every one for the originating agency, the viewer's agency's own
    for anyone else (a receiving agency does not see who else got it)."""
    membership = content_membership(viewer)
    if membership is None:
        return Forward.objects.none()
    forwards = Forward.objects.filter(item=item)
    if not is_originator(viewer, item):
        forwards = forwards.filter(from_agency_id=membership.agency_id)
    return forwards.select_related("from_agency", "from_user", "to_agency", "to_office").order_by("created_at", "pk")


def consents_visible_to(viewer: Viewer) -> QuerySet[ConsentRequest]:
    """Consent requests the viewer's agency was asked (as the item's originator), and those it asked that the viewer
    made or may read the item of, newest first; nothing for anyone else, auditors included. A request made by a
    person named on an item is theirs alone: their colleagues, who may not read the item, are not told of it."""
    reader = reader_of(viewer)
    if reader is None:
        return ConsentRequest.objects.none()
    agency = reader.agency_id
    readable = Exists(items_visible_to(reader).filter(pk=OuterRef("item_id")))
    asked = Q(requester_agency_id=agency) & (Q(requester_user_id=reader.pk) | readable)
    return (
        ConsentRequest.objects.filter(asked | Q(item__originator_agency_id=agency))
        .select_related("item", "requester_agency", "requester_user", "target_agency", "decided_by")
        .order_by("-created_at", "-id")
    )


def consent_get(viewer: Viewer, *, consent_id: object, for_update: bool = False) -> ConsentRequest:
    """One consent request of the viewer's side, or NotFound (the same answer whether hidden, absent or malformed)."""
    try:
        pk = consent_id if isinstance(consent_id, uuid.UUID) else uuid.UUID(str(consent_id))
    except (TypeError, ValueError, AttributeError):
        raise NotFound(CONSENT_NOT_FOUND) from None
    consents = consents_visible_to(viewer)
    if for_update:
        consents = consents.select_for_update(of=("self",))
    consent = consents.filter(pk=pk).first()
    if consent is None:
        # For the record of the refusal only: filed under the country of the item the request is about, like a
        # refused look at the item itself (one lookup by primary key, for a hidden and an absent request alike).
        country = ConsentRequest.objects.filter(pk=pk).values_list("item__originator_country", flat=True).first() or ""
        raise NotFound(
            CONSENT_NOT_FOUND, probed=Probed(type=ConsentRequest._meta.label_lower, id=str(pk), country=country)
        )
    return consent
