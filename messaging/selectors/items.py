"""Reads of items, always scoped to a viewer in the SQL itself (never filtered afterwards in Python)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from django.db.models import (
    Case,
    Exists,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from agencies.models import Agency
from audit.models import AuditEvent
from isn.errors import NotFound, PermissionDenied, Probed
from messaging.core.people import (
    Reader,
    content_membership,
    reader_of,
)
from messaging.models import (
    Acknowledgement,
    Attachment,
    Forward,
    Item,
    ItemAgencyGrant,
    ItemCountryGrant,
    ItemEntity,
    ItemKey,
    ItemRead,
    ItemStatus,
    ItemUserObjectPermission,
    Priority,
)
from messaging.models.delivery import Delivery

if TYPE_CHECKING:
    from typing import TypeAlias

    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    Viewer: TypeAlias = AbstractBaseUser | AnonymousUser

# One message for "does not exist", "not yours to see" and "not an item id": a caller must not tell them apart.
NOT_FOUND_MESSAGE = "No such item."

ACCESS_ACTIONS = ("messaging.item.read", "messaging.attachment.download")


def reader_required(viewer: Viewer | Reader | Reader) -> Reader:
    """The viewer as a ``Reader``; anyone who may not read content gets the answer a missing item gets."""
    reader = reader_of(viewer)
    if reader is None:
        raise NotFound(NOT_FOUND_MESSAGE)
    return reader


def items_visible_to(viewer: Viewer | Reader) -> QuerySet[Item]:
    """Every item the viewer may read, newest first, as one query.

    Visible when the viewer's agency originated it (whatever its status), or, for active items only, when the
    viewer's country has a grant and either that country has no agency restriction, the viewer's agency is one of
    the restricted agencies, an active forward reached the viewer's agency as a whole or the viewer's own office, or
    the viewer is named on the item: ``messaging.core.release.Release.member_may_read``, in SQL.
    """
    reader = reader_of(viewer)
    if reader is None:
        return Item.objects.none()
    country = reader.country
    item = OuterRef("pk")
    # Scalar subqueries rather than EXISTS: inside this OR PostgreSQL would hash an EXISTS over every grant of the
    # country before the first row, so an inbox page would cost the size of the table; a scalar subquery is one
    # index probe per row scanned (measured in bench/items_bench.py at one million items).
    country_grant = Subquery(ItemCountryGrant.objects.filter(item=item, country_id=country).values("pk")[:1])
    # NULL: the country has no agency restriction; 1: the viewer's agency is among the restricted; 0: it is not.
    agency_allowed = Coalesce(
        Subquery(
            ItemAgencyGrant.objects.filter(item=item, country_id=country)
            .values("item")
            .annotate(mine=Max(Case(When(agency_id=reader.agency_id, then=Value(1)), default=Value(0))))
            .values("mine"),
            output_field=IntegerField(),
        ),
        Value(1),
    )
    # A named person still needs their country's grant: that is where their key comes from, and narrowing the
    # release away from a country must cut off everyone in it.
    named = Exists(
        ItemUserObjectPermission.objects.filter(
            content_object=item,
            user_id=reader.pk,
            permission__codename="view_item",
            permission__content_type__app_label="messaging",
        )
    )
    # Forwarded inside the country: a scalar subquery too, one probe of the partial index of active forwards. The
    # country grant above still applies: a forward never outlives its country's release.
    # A forward to an office opens the item to that office's people only.
    forwarded = Subquery(
        Forward.objects.filter(item=item, to_agency_id=reader.agency_id, revoked_at__isnull=True)
        .filter(Q(to_office__isnull=True) | Q(to_office_id=reader.office_id))
        .values("pk")[:1]
    )
    recipient = Q(status=ItemStatus.ACTIVE, _grant__isnull=False) & (
        Q(_allowed=1) | Q(_forwarded__isnull=False) | named
    )
    return (
        Item.objects.alias(_grant=country_grant, _allowed=agency_allowed, _forwarded=forwarded)
        .filter(Q(originator_agency_id=reader.agency_id) | recipient)
        .order_by("-created_at", "-id")
    )


def items_for_listing(viewer: Viewer | Reader) -> QuerySet[Item]:
    """``items_visible_to`` shaped for the inbox: read flag, originator agency, and only the viewer's own country's
    wrapped key prefetched (one more query per page, whatever its size); bodies are not loaded."""
    reader = reader_of(viewer)
    if reader is None:
        return Item.objects.none()
    own_keys = ItemKey.objects.filter(country_id=reader.country)
    return (
        items_visible_to(reader)
        .select_related("originator_agency")
        .defer("body_sealed")
        .annotate(is_read=Exists(ItemRead.objects.filter(item=OuterRef("pk"), user_id=reader.pk)))
        .prefetch_related(Prefetch("keys", queryset=own_keys, to_attr="viewer_keys"))
    )


def parse_item_id(value: object) -> uuid.UUID:
    """A UUID from a URL or request; anything else is NotFound, exactly like an unknown id."""
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        raise NotFound(NOT_FOUND_MESSAGE) from None


def item_not_found(item_id: object) -> NotFound:
    """The answer for an item the caller may not see: the very answer an id that names nothing gets. Only for the
    record of the refusal, it names the item and, when it exists, its originating country (one lookup by primary key,
    made for a hidden and an absent item alike), so that country's national auditors see who probed it."""
    pk = parse_item_id(item_id)
    country = Item.objects.filter(pk=pk).values_list("originator_country", flat=True).first()
    return NotFound(NOT_FOUND_MESSAGE, probed=Probed(type=Item._meta.label_lower, id=str(pk), country=country or ""))


def item_get_for_reading(viewer: Viewer | Reader, *, item_id: object) -> Item:
    """``item_get`` plus, in the same query, the viewer's own country's wrapped key (``viewer_wrapped_key``,
    ``viewer_kek_version``, None when shredded), whether the viewer has opened it before (``viewer_has_read``) and
    whether it has attachments or entities at all (``has_attachments``, ``has_entities``):
    a detail read is the hottest path, and each round trip saved is one a reader does not wait for."""
    reader = reader_of(viewer)
    if reader is None:
        raise item_not_found(item_id)
    own_key = ItemKey.objects.filter(item=OuterRef("pk"), country_id=reader.country)
    items = (
        items_visible_to(reader)
        .select_related("originator_agency", "originator_office", "originator_user")
        .annotate(
            viewer_wrapped_key=Subquery(own_key.values("wrapped_key")[:1]),
            viewer_kek_version=Subquery(own_key.values("kek_version")[:1]),
            viewer_has_read=Exists(ItemRead.objects.filter(item=OuterRef("pk"), user_id=reader.pk)),
            has_attachments=Exists(Attachment.objects.filter(item=OuterRef("pk"))),
            has_entities=Exists(ItemEntity.objects.filter(item=OuterRef("pk"))),
        )
    )
    item = items.filter(pk=parse_item_id(item_id)).first()
    if item is None:
        raise item_not_found(item_id)
    return item


def item_get(viewer: Viewer | Reader, *, item_id: object, for_update: bool = False) -> Item:
    """One visible item, or NotFound (the same answer whether it is hidden, absent or malformed)."""
    items = items_visible_to(viewer).select_related("originator_agency", "originator_office", "originator_user")
    if for_update:
        items = items.select_for_update(of=("self",))
    item = items.filter(pk=parse_item_id(item_id)).first()
    if item is None:
        raise item_not_found(item_id)
    return item


def is_originator(viewer: Viewer | Reader | Reader, item: Item) -> bool:
    reader = reader_of(viewer)
    return reader is not None and reader.originates(item)


def item_get_as_originator(viewer: Viewer | Reader, *, item_id: object, for_update: bool = False) -> Item:
    """A visible item the viewer's agency originated: NotFound when not visible, PermissionDenied when not theirs."""
    item = item_get(viewer, item_id=item_id, for_update=for_update)
    if not is_originator(viewer, item):
        raise PermissionDenied("Only the originating agency may do this to an item.")
    return item


def unread_by(viewer: Viewer | Reader) -> Exists:
    """An expression, for ``items_visible_to(viewer)``, true where the viewer has never opened the item."""
    return ~Exists(ItemRead.objects.filter(item=OuterRef("pk"), user_id=viewer.pk))


def item_release(item: Item) -> dict[str, list]:
    """The release list: for the originator's eyes only (callers check that)."""
    return {
        "countries": sorted(item.country_grants.values_list("country_id", flat=True)),
        "agencies": list(
            Agency.objects.filter(pk__in=item.agency_grants.values("agency_id"))
            .order_by("country_id", "short_name")
            .values("id", "short_name", "country_id")
        ),
        "named_users": sorted(item.named_grants.values_list("user__username", flat=True)),
    }


def item_access_events(viewer: Viewer | Reader, *, item_id: object) -> QuerySet[AuditEvent]:
    """Who read or downloaded the item and when, newest first: for the originating agency only."""
    item = item_get_as_originator(viewer, item_id=item_id)
    return AuditEvent.objects.filter(
        target_type=Item._meta.label_lower, target_id=str(item.pk), action__in=ACCESS_ACTIONS
    ).order_by("-id")


def item_delivery_states(viewer: Viewer | Reader, *, item: Item) -> QuerySet[Any]:
    """Routing state per recipient agency of an item the viewer's agency originated (rows of plain values).

    Recipient lists are confidential: only the originating agency sees them, and only per agency; a recipient never
    sees who else received the item.
    """
    if not is_originator(viewer, item):
        raise PermissionDenied("Only the originating agency may see where an item was routed.")
    return (
        Delivery.objects.filter(item=item)
        .values("agency_id")
        .annotate(
            routed_at=Min("routed_at"),
            notified_at=Min("notified_at"),
            read_at=Min("read_at"),
            acknowledged_at=Min("acknowledged_at"),
            escalation_level=Max("escalation_level"),
            # 1 when every one of the agency's deliveries was revoked: the agency is cut off.
            revoked=Min(Case(When(revoked_at__isnull=True, then=Value(0)), default=Value(1))),
        )
        .order_by("agency_id")
    )


def flash_awaiting_acknowledgement(viewer: Viewer | Reader) -> QuerySet[Any]:
    """Ids of FLASH items routed to the viewer's agency that it has not acknowledged (nor lost) yet: the inbox pins
    them whatever its filters. Driven by the deliveries' partial index, not by items; narrow with the visibility
    selector, as the inbox does."""
    membership = content_membership(viewer)
    if membership is None:
        return Delivery.objects.none().values("item_id")
    return Delivery.objects.filter(
        agency_id=membership.agency_id,
        priority=Priority.FLASH,
        acknowledged_at__isnull=True,
        revoked_at__isnull=True,
    ).values("item_id")


def agency_acknowledgement(item: Item, *, agency_id: int) -> Acknowledgement | None:
    """The agency's acknowledgement of an item it has just read, or None."""
    return Acknowledgement.objects.filter(item=item, agency_id=agency_id).select_related("user").first()


def released_countries(item: Item) -> set[str]:
    """The countries an item is released to now (its country grants)."""
    return set(ItemCountryGrant.objects.filter(item=item).values_list("country_id", flat=True))


def own_items_released_to(viewer: Viewer | Reader, agency: Agency) -> QuerySet[Item]:
    """Active items of the viewer's agency that ``agency`` may read: its country is released and, where that country
    is restricted to some agencies, ``agency`` is one of them. Shaped for listing, newest first."""
    reader = reader_of(viewer)
    if reader is None:
        return Item.objects.none()
    restricted = ItemAgencyGrant.objects.filter(item=OuterRef("pk"), country_id=agency.country_id)
    return (
        items_for_listing(reader)
        .filter(originator_agency_id=reader.agency_id, status=ItemStatus.ACTIVE)
        .filter(Exists(ItemCountryGrant.objects.filter(item=OuterRef("pk"), country_id=agency.country_id)))
        .filter(~Exists(restricted) | Exists(restricted.filter(agency_id=agency.pk)))
        .order_by("-created_at", "-pk")
    )
