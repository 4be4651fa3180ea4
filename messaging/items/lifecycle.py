"""Writes to items: post, read, change, withdraw, expire, attach, and re-wrap keys after a rotation.

Each service takes keyword arguments and an ``actor``, runs in one transaction, and records its audit event in that
transaction (if the event cannot be written, the act does not happen). Audit details hold ids and codes only.

Decryption fails closed: when a viewer's country has no wrapped key, or a key or ciphertext does not open, the
service's transaction is rolled back, an ``error`` event ``messaging.item.decrypt_failed`` is written in a
transaction of its own (so it survives), and the caller gets ``ContentUnavailable``; no stored bytes are returned.
"""

from __future__ import annotations

import uuid
from collections.abc import (
    Iterable,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import Permission
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from agencies.models import Agency, Membership
from audit.services import record
from isn.errors import Conflict, PermissionDenied
from messaging.core.idempotency import IdempotencyKeyHeld, idempotency_pending
from messaging.core.outbox import outbox_add
from messaging.core.people import (
    content_membership,
    reader_of,
)
from messaging.core.sealing import (
    ITEM,
    Unreadable,
    data_key_new,
    decrypt_failure_record,
    fails_closed,
    item_field_aad,
    item_field_open,
    item_key_unwrap,
    item_keys_wrapped,
    primary_keks,
    sealed,
)
from messaging.core.sql import fetch_all as fetch_hot
from messaging.core.validation import (
    Problems,
    check_agencies,
    check_choice,
    check_countries,
    check_discoverable,
    check_named_users,
    check_review_date,
    check_text,
)
from messaging.delivery.deliveries import deliveries_mark_read
from messaging.delivery.feed import FEED_LOCK_KEY, NOBODY, feed_follow
from messaging.items.attachments import AttachmentSummary, attachment_summaries
from messaging.matching.discovery import NOT_DISCOVERABLE, PostCheck, item_entities_check
from messaging.matching.entities import entities_check, entities_open, entities_store
from messaging.models import (
    BODY_MAX_LENGTH,
    BORDER_CROSSING_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    Category,
    HandlingCode,
    InfoCredibility,
    Item,
    ItemAgencyGrant,
    ItemCountryGrant,
    ItemKey,
    ItemRead,
    ItemUserObjectPermission,
    OutboxKind,
    Priority,
    SourceReliability,
)
from messaging.selectors.items import (
    item_access_events,
    item_get_as_originator,
    item_get_for_reading,
    item_release,
    reader_required,
)

if TYPE_CHECKING:
    from typing import TypeAlias

    from django.contrib.auth.models import AbstractBaseUser
    from django.db.models import QuerySet

    from audit.models import AuditEvent

    Actor: TypeAlias = AbstractBaseUser


def _view_item_permission() -> Permission:
    return Permission.objects.get(content_type__app_label="messaging", codename="view_item")


# --- results ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemContent:
    """An item opened for one viewer. ``release`` is None unless the viewer's agency originated it."""

    item: Item
    title: str
    body: str
    attachments: list[AttachmentSummary] = field(default_factory=list)
    release: dict[str, list[Any]] | None = None
    is_read: bool = True
    entities: list[dict[str, Any]] = field(default_factory=list)
    # Only when just posted: the post's own check of its entities (``matching.discovery.item_entities_check``).
    post_check: PostCheck | None = None


@dataclass(frozen=True)
class ItemSummary:
    """A line of the inbox. ``title`` is None when it did not open (that failure is recorded)."""

    item: Item
    title: str | None
    is_read: bool


# --- items ---------------------------------------------------------------------------------------------------------


# The rows every post writes besides the item, in one statement on PostgreSQL (posting is the hot path of ingest):
# its data key wrapped for each released country, the country grants, and the poster's read mark.
_POST_ROWS_SQL = """
    WITH keys AS (
        INSERT INTO messaging_itemkey (item_id, country_id, kek_version, wrapped_key)
        SELECT %(item)s, country, version, wrapped
        FROM unnest(%(key_countries)s::text[], %(versions)s::integer[], %(wrapped)s::bytea[])
            AS wrap (country, version, wrapped)
    ), grants AS (
        INSERT INTO messaging_itemcountrygrant (item_id, country_id, created_at)
        SELECT %(item)s, country, %(now)s FROM unnest(%(countries)s::text[]) AS country
    ), feed_lock AS (
        -- The change feed's writers' lock, taken before the changes' ids are (messaging.delivery.feed.feed_lock).
        SELECT pg_advisory_xact_lock(%(feed_lock)s)
    ), told_agencies AS (
        INSERT INTO messaging_change (at, kind, agency_id, item_id)
        SELECT %(now)s, 'item.visible', agency.id, %(item)s FROM feed_lock, agencies_agency agency
        WHERE agency.id = %(originator)s OR agency.country_id = ANY(%(open_countries)s::text[])
            OR agency.id = ANY(%(restricted)s::integer[])
    ), told_people AS (
        INSERT INTO messaging_change (at, kind, user_id, item_id)
        SELECT %(now)s, 'item.visible', person, %(item)s FROM feed_lock, unnest(%(named)s::integer[]) AS person
    ), claimed AS (
        -- The API's Idempotency-Key with this post's outcome, when one was handed down (messaging.core.idempotency);
        -- nothing when the key is held already: the caller then rolls the whole post back.
        INSERT INTO messaging_idempotencykey
            (key, user_id, api_key_id, request_hash, response_status, resource_type, resource_id, created_at)
        SELECT CAST(%(claim_key)s AS text), CAST(%(claim_user)s AS bigint), CAST(%(claim_api_key)s AS bigint),
            CAST(%(claim_hash)s AS text), 201, 'messaging.item', CAST(%(item)s AS text), %(now)s
        WHERE CAST(%(claim_key)s AS text) IS NOT NULL
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    INSERT INTO messaging_itemread (item_id, user_id, first_read_at) VALUES (%(item)s, %(reader)s, %(now)s)
    RETURNING (SELECT count(*) FROM claimed)
"""


@transaction.atomic
def item_create(
    *,
    actor: Actor,
    title: str,
    body: str,
    language: str,
    category: str,
    source_reliability: str,
    info_credibility: int,
    handling_code: str,
    review_date: date,
    countries: Sequence[str],
    priority: str = Priority.ROUTINE,
    border_crossing: str = "",
    agencies: Sequence[int] = (),
    named_users: Sequence[str] = (),
    item_id: uuid.UUID | None = None,
    entities: Sequence[dict[str, Any]] = (),
    discoverable: bool = False,
) -> ItemContent:
    """Post an item released to ``countries`` (which must include the poster's own), optionally narrowed to
    ``agencies`` within a country, and to ``named_users`` (usernames) on a need-to-know basis.

    ``entities`` (each ``{"type": ..., its fields}``, see ``messaging.matching.entities``) are sealed with the item
    and their matchable values stored as blind match tokens only.

    ``discoverable``: whether officers who may not read the item may learn that it holds an identifier they check
    (never for TLP:RED). The API and the portal pass the originator's explicit choice; the default here is only for
    callers that post nothing discoverable. A discoverable item's entities are checked as it is posted, counted
    against the poster's quota, and its hits returned (``post_check``); over the quota it is posted unchecked.

    ``item_id`` is an id the poster's system chose; one already taken is a Conflict that says nothing about the item
    holding it. Long for the fields an item has; each check and write is one line or one helper.
    """
    membership = content_membership(actor)
    if membership is None:
        raise PermissionDenied("Only officers of a member agency may post items.")
    originator_country = membership.agency.country_id
    problems = Problems()
    title = check_text(problems, "title", title, limit=TITLE_MAX_LENGTH, multiline=False)
    body = check_text(problems, "body", body, limit=BODY_MAX_LENGTH, multiline=True)
    border_crossing = (border_crossing or "").strip()
    if len(border_crossing) > BORDER_CROSSING_MAX_LENGTH:
        problems.add("border_crossing", f"At most {BORDER_CROSSING_MAX_LENGTH} characters.")
    metadata = {
        "language": language,
        "category": category,
        "priority": priority,
        "source_reliability": source_reliability,
        "info_credibility": info_credibility,
        "handling_code": handling_code,
    }
    _check_metadata(problems, metadata)
    check_review_date(problems, review_date)
    released = check_countries(problems, countries, originator_country)
    restricted_to = check_agencies(problems, agencies, released)
    named = check_named_users(problems, named_users, released)
    checked_entities = entities_check(problems, entities) if entities else []
    check_discoverable(problems, discoverable, handling_code)
    problems.raise_if_any("The item was not stored.")

    chosen = item_id is not None
    item_id = item_id or uuid.uuid4()
    data_key = data_key_new()
    try:
        # A chosen id gets a savepoint: a concurrent post of the same id waits for the first, then is refused.
        with transaction.atomic(savepoint=chosen):
            item = Item.objects.create(
                id=item_id,
                originator_agency=membership.agency,
                originator_office=membership.office,
                originator_user=actor,
                originator_country=originator_country,
                title_sealed=sealed(data_key, title, aad=item_field_aad(item_id, "title", 1)),
                body_sealed=sealed(data_key, body, aad=item_field_aad(item_id, "body", 1)),
                content_version=1,
                border_crossing=border_crossing,
                review_date=review_date,
                discoverable=discoverable,
                **metadata,
            )
    except IntegrityError:
        raise Conflict("This id is taken.") from None
    _grants_write(item, data_key, actor=actor, countries=released, agencies=restricted_to, named=named)
    entities_store(item, data_key, checked_entities, version=1)
    details: dict[str, Any] = {
        "countries": released,
        "agencies": sorted(agency.pk for agency in restricted_to),
        "named_users": sorted(m.user_id for m in named),
        "category": category,
        "priority": priority,
        "handling_code": handling_code,
        "discoverable": discoverable,
    }
    if checked_entities:
        details["entity_types"] = [entity.entity_type for entity in checked_entities]
    record(
        action="messaging.item.create",
        actor=actor,
        target=item,
        target_country=originator_country,
        details=details,
    )
    # Routing happens after commit, from the outbox: the post never waits for it, and a broker outage loses none.
    outbox_add(kind=OutboxKind.ITEM_ROUTE, item=item, payload={"item_id": str(item_id), "priority": priority})
    post_check = (
        item_entities_check(actor=actor, item=item, entities=checked_entities)
        if discoverable
        else PostCheck(checked=False, reason=NOT_DISCOVERABLE)
    )
    return ItemContent(
        item=item,
        title=title,
        body=body,
        release=_release_as_posted(released, restricted_to, named),
        entities=[{"type": entity.entity_type, **entity.fields} for entity in checked_entities],
        post_check=post_check,
    )


def _check_metadata(problems: Problems, metadata: dict[str, Any]) -> None:
    """Language, category, priority and grading, each one of its choices."""
    choices: dict[str, Iterable[Any]] = {
        "language": [code for code, _name in settings.LANGUAGES],
        "category": Category.values,
        "priority": Priority.values,
        "source_reliability": SourceReliability.values,
        "info_credibility": InfoCredibility.values,
        "handling_code": HandlingCode.values,
    }
    for name, allowed in choices.items():
        check_choice(problems, name, metadata[name], allowed)


def _grants_write(
    item: Item,
    data_key: bytes,
    *,
    actor: Actor,
    countries: list[str],
    agencies: list[Agency],
    named: list[Membership],
) -> None:
    """A new item's data key wrapped for each released country, its grants, the poster's read mark (the poster has
    read what they wrote: their own posts never count as unread), and the change feed's ``item.visible`` for each
    agency and named person who may read it (on PostgreSQL in the same statement: ``feed_follow``'s rule, for an
    item that had no audience before), and on PostgreSQL the API's Idempotency-Key claimed with the post's outcome
    when one was handed down (``messaging.core.idempotency``)."""
    keys = item_keys_wrapped(item.pk, data_key, primary_keks(countries))
    restricted = {agency.country_id for agency in agencies}
    if connection.vendor == "postgresql":
        claim = idempotency_pending(Item._meta.label_lower)
        [(claimed,)] = fetch_hot(
            _POST_ROWS_SQL,
            {
                "item": item.pk,
                "key_countries": [key.country_id for key in keys],
                "versions": [key.kek_version for key in keys],
                "wrapped": [key.wrapped_key for key in keys],
                "countries": countries,
                "reader": actor.pk,
                "now": item.created_at,
                "originator": item.originator_agency_id,
                "open_countries": [code for code in countries if code not in restricted],
                "restricted": [agency.pk for agency in agencies],
                "named": [membership.user_id for membership in named],
                "feed_lock": FEED_LOCK_KEY,
                "claim_key": claim.key if claim else None,
                "claim_user": claim.caller.user_id if claim else None,
                "claim_api_key": claim.caller.api_key_id if claim else None,
                "claim_hash": claim.request_hash if claim else None,
            },
        )
        if claim is not None:
            if not claimed:
                raise IdempotencyKeyHeld
            claim.claimed = True
    else:
        ItemKey.objects.bulk_create(keys)
        ItemCountryGrant.objects.bulk_create([ItemCountryGrant(item=item, country_id=code) for code in countries])
        ItemRead.objects.create(item=item, user=actor, first_read_at=item.created_at)
    ItemAgencyGrant.objects.bulk_create(
        [ItemAgencyGrant(item=item, agency=agency, country_id=agency.country_id) for agency in agencies]
    )
    if named:
        permission = _view_item_permission()
        ItemUserObjectPermission.objects.bulk_create(
            [ItemUserObjectPermission(content_object=item, user=m.user, permission=permission) for m in named]
        )
    if connection.vendor != "postgresql":
        feed_follow(item, NOBODY)


def _release_as_posted(countries: list[str], agencies: list[Agency], named: list[Membership]) -> dict[str, list[Any]]:
    """What ``item_release`` reads back for an item just posted with these grants, without reading back the grants
    (the agencies keep the database's order, so they are read when there are any)."""
    return {
        "countries": countries,
        "agencies": list(
            Agency.objects.filter(pk__in=[agency.pk for agency in agencies])
            .order_by("country_id", "short_name")
            .values("id", "short_name", "country_id")
        )
        if agencies
        else [],
        "named_users": sorted(membership.user.get_username() for membership in named),
    }


@fails_closed
@transaction.atomic
def item_read(*, actor: Actor, item_id: object) -> ItemContent:
    """Open one item for the viewer with their own country's key; recorded as ``messaging.item.read``."""
    reader = reader_required(actor)  # who is asking, resolved once for everything below
    item = item_get_for_reading(reader, item_id=item_id)
    country_code = reader.country
    if item.viewer_wrapped_key is None:  # type: ignore[attr-defined]
        raise Unreadable.of_item(item, country_code, "no_key")
    own_key = ItemKey(
        item=item,
        country_id=country_code,
        kek_version=item.viewer_kek_version,  # type: ignore[attr-defined]
        wrapped_key=item.viewer_wrapped_key,  # type: ignore[attr-defined]
    )
    data_key = item_key_unwrap(item, own_key)
    title = item_field_open(data_key, item, "title", country_code)
    body = item_field_open(data_key, item, "body", country_code)
    attachments = attachment_summaries(item, data_key, country_code) if item.has_attachments else []  # type: ignore[attr-defined]
    entities = entities_open(data_key, item, country_code) if item.has_entities else []  # type: ignore[attr-defined]
    if not item.viewer_has_read:  # type: ignore[attr-defined]
        ItemRead.objects.bulk_create(
            [ItemRead(item=item, user_id=actor.pk, first_read_at=timezone.now())], ignore_conflicts=True
        )
    originator = reader.originates(item)
    if not originator:
        deliveries_mark_read(reader, item)
    record(
        action="messaging.item.read",
        actor=actor,
        target=item,
        target_country=item.originator_country,
        details={"content_version": item.content_version},
    )
    return ItemContent(
        item=item,
        title=title,
        body=body,
        attachments=attachments,
        release=item_release(item) if originator else None,
        entities=entities,
    )


@transaction.atomic
def item_list(*, actor: Actor, items: Sequence[Item]) -> list[ItemSummary]:
    """One page of the inbox with titles opened; one ``messaging.item.list`` event names every item returned.

    ``items`` come from ``selectors.items_for_listing(actor)``, which prefetches the viewer's own wrapped keys.
    A title that does not open is returned as None and its failure recorded; the rest of the page is still served.
    """
    reader = reader_of(actor)
    if reader is None:
        raise PermissionDenied("Only officers of a member agency may list items.")
    country_code = reader.country
    summaries = []
    for item in items:
        title: str | None
        try:
            wrapped = next(iter(item.viewer_keys), None)  # type: ignore[attr-defined]
            if wrapped is None:
                raise Unreadable.of_item(item, country_code, "no_key")
            title = item_field_open(item_key_unwrap(item, wrapped), item, "title", country_code)
        except Unreadable as failure:
            decrypt_failure_record(actor, failure, during="item_list")
            title = None
        summaries.append(ItemSummary(item=item, title=title, is_read=bool(item.is_read)))  # type: ignore[attr-defined]
    record(
        action="messaging.item.list",
        actor=actor,
        target_type=ITEM,
        details={"item_ids": [str(item.pk) for item in items], "count": len(items)},
    )
    return summaries


@transaction.atomic
def item_count(*, actor: Actor, items: QuerySet[Item], filters: dict[str, str]) -> int:
    """How many items match: a search like a list, so recorded with the filters used (names and values)."""
    count = items.count()
    record(action="messaging.item.count", actor=actor, target_type=ITEM, details={"filters": filters, "count": count})
    return count


@transaction.atomic
def item_access_view(*, actor: Actor, item_id: object) -> QuerySet[AuditEvent]:
    """The originator's view of who opened the item: seeing who read is itself a read, and recorded."""
    item = item_get_as_originator(actor, item_id=item_id)
    record(action="messaging.item.access_view", actor=actor, target=item, target_country=item.originator_country)
    return item_access_events(actor, item_id=item.pk)


# --- the originator's changes: narrowing, correction, withdrawal, expiry ---------------------------------------------
