"""Writes to items: post, read, change, withdraw, expire, attach, and re-wrap keys after a rotation.

Each service takes keyword arguments and an ``actor``, runs in one transaction, and records its audit event in that
transaction (if the event cannot be written, the act does not happen). Audit details hold ids and codes only.

Decryption fails closed: when a viewer's country has no wrapped key, or a key or ciphertext does not open, the
service's transaction is rolled back, an ``error`` event ``messaging.item.decrypt_failed`` is written in a
transaction of its own (so it survives), and the caller gets ``ContentUnavailable``; no stored bytes are returned.
"""

from __future__ import annotations

import functools
import hashlib
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from django.conf import settings
from django.contrib.auth.models import Permission
from django.db import connection, transaction
from django.utils import timezone

from agencies.keyring import country_key_retire, key_version, primary_key
from agencies.models import Agency, Country, CountryKey, CountryKeyStatus, Membership, Role
from audit.models import Outcome
from audit.services import record
from isn.crypto import DecryptionError, associated_data, new_key, open_sealed, seal, unwrap_key, wrap_key
from isn.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from messaging.attachments import safe_filename, sniff
from messaging.models import (
    ACKNOWLEDGEMENT_TEXT_MAX_LENGTH,
    BODY_MAX_LENGTH,
    BORDER_CROSSING_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    Acknowledgement,
    AcknowledgementNote,
    Attachment,
    Category,
    ConsentRequest,
    ConsentStatus,
    Delivery,
    Forward,
    HandlingCode,
    InfoCredibility,
    Item,
    ItemAgencyGrant,
    ItemCountryGrant,
    ItemKey,
    ItemRead,
    ItemStatus,
    ItemUserObjectPermission,
    OutboxKind,
    Priority,
    RfiKey,
    SourceReliability,
)
from messaging.notifications import notifications_mark_read_for_item
from messaging.outbox import outbox_add
from messaging.routing import Release, release_of
from messaging.selectors import (
    NOT_FOUND_MESSAGE,
    content_membership,
    is_originator,
    item_access_events,
    item_delivery_states,
    item_get,
    item_get_as_originator,
    item_get_for_reading,
    item_release,
)
from messaging.sql import execute as execute_hot

if TYPE_CHECKING:
    from typing import TypeAlias

    from django.contrib.auth.models import AbstractBaseUser
    from django.db.models import QuerySet

    from audit.models import AuditEvent

    Actor: TypeAlias = AbstractBaseUser

P = ParamSpec("P")
R = TypeVar("R")

ITEM = "messaging.item"


class ContentUnavailable(Conflict):
    code = "content_unavailable"


# --- sealing ------------------------------------------------------------------------------------------------------


def _field_aad(item_id: uuid.UUID, field_name: str, version: int) -> bytes:
    return associated_data("item", str(item_id), field_name, version)


def _attachment_aad(item_id: uuid.UUID, attachment_id: uuid.UUID, version: int) -> bytes:
    return associated_data("attachment", str(item_id), str(attachment_id), version)


def _attachment_name_aad(item_id: uuid.UUID, attachment_id: uuid.UUID, version: int) -> bytes:
    return associated_data("attachment-name", str(item_id), str(attachment_id), version)


def _data_key_aad(item_id: uuid.UUID, country_code: str, kek_version: int) -> bytes:
    return associated_data("data-key", str(item_id), country_code, kek_version)


class _Unreadable(Exception):
    """Raised inside a service's transaction when content does not open; turned into an error event outside it."""

    def __init__(self, item: Item, country_code: str, reason: str) -> None:
        super().__init__(reason)
        self.item_id = item.pk
        self.originator_country = item.originator_country
        self.country_code = country_code
        self.reason = reason


def _fails_closed(service: Callable[P, R]) -> Callable[P, R]:
    """Record a decryption failure after the service's own transaction has rolled back, then refuse."""

    @functools.wraps(service)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return service(*args, **kwargs)
        except _Unreadable as failure:
            with transaction.atomic():
                _record_decrypt_failure(kwargs.get("actor"), failure, during=service.__name__)
            raise ContentUnavailable(
                "This item's content cannot be opened for your country. The failure has been recorded; "
                "ask the originating agency to check the release."
            ) from None

    return wrapper


def _record_decrypt_failure(actor: Any, failure: _Unreadable, *, during: str) -> None:
    record(
        action="messaging.item.decrypt_failed",
        actor=actor,
        target_type=ITEM,
        target_id=str(failure.item_id),
        target_country=failure.originator_country,
        outcome=Outcome.ERROR,
        details={"country": failure.country_code, "reason": failure.reason, "during": during},
    )


def _viewer_country(actor: Any) -> str:
    membership = content_membership(actor)
    if membership is None:  # item_get has refused such a viewer already; this keeps the type checker honest
        raise NotFound(NOT_FOUND_MESSAGE)
    return membership.agency.country_id


def _data_key(item: Item, country_code: str) -> bytes:
    """The item's data key, unwrapped with ``country_code``'s own key and no other."""
    wrapped = ItemKey.objects.filter(item=item, country_id=country_code).first()
    if wrapped is None:
        raise _Unreadable(item, country_code, "no_key")
    return _unwrap_data_key(item, wrapped)


def _unwrap_data_key(item: Item, wrapped: ItemKey) -> bytes:
    country_code = wrapped.country_id
    try:
        kek = key_version(country_code, wrapped.kek_version)
        return unwrap_key(
            kek, bytes(wrapped.wrapped_key), aad=_data_key_aad(item.pk, country_code, wrapped.kek_version)
        )
    except DecryptionError:
        raise _Unreadable(item, country_code, "key_does_not_open") from None


def _open_text(data_key: bytes, item: Item, field_name: str, country_code: str) -> str:
    sealed = item.title_sealed if field_name == "title" else item.body_sealed
    try:
        return open_sealed(data_key, bytes(sealed), aad=_field_aad(item.pk, field_name, item.content_version)).decode(
            "utf-8"
        )
    except (DecryptionError, UnicodeDecodeError):
        raise _Unreadable(item, country_code, f"{field_name}_does_not_open") from None


def _primary_keks(country_codes: Iterable[str]) -> dict[str, tuple[int, bytes]]:
    """Each country's primary key, held so that a rotation cannot retire it before this transaction commits.

    ``FOR KEY SHARE`` does not block other writers of items, only ``country_key_rotate``'s ``FOR UPDATE``: a rotation
    waits for items being wrapped with the old version, so its re-wrap then sees every one of them.
    """
    codes = sorted(set(country_codes))
    if connection.vendor != "postgresql":  # SQLite (development) serialises writers anyway
        return {code: primary_key(code) for code in codes}
    for _attempt in range(3):
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT country_id, version FROM {CountryKey._meta.db_table} "  # noqa: S608 - table name is ours
                "WHERE country_id = ANY(%s) AND status = %s FOR KEY SHARE",
                [codes, CountryKeyStatus.PRIMARY],
            )
            locked = dict(cursor.fetchall())
        if all(code in locked for code in codes):
            # The versions are held now. A version's key never changes, so the keyring's short cache may serve it:
            # one query for all countries instead of a query and an unwrap for each.
            return {code: (locked[code], key_version(code, locked[code])) for code in codes}
        for code in codes:
            if code not in locked:
                # No first key yet (made here), or a rotation replaced it while this statement waited for the lock.
                primary_key(code)
    raise Conflict("A country key is being rotated right now; please try again.")


def _wrap_for(item_id: uuid.UUID, data_key: bytes, keks: dict[str, tuple[int, bytes]]) -> list[ItemKey]:
    return [
        ItemKey(
            item_id=item_id,
            country_id=code,
            kek_version=version,
            wrapped_key=wrap_key(kek, data_key, aad=_data_key_aad(item_id, code, version)),
        )
        for code, (version, kek) in keks.items()
    ]


# --- validation ---------------------------------------------------------------------------------------------------


class _Problems:
    """Collects every problem with the input, so the caller can fix them all at once; raises before any write."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, field_name: str, message: str) -> None:
        self.errors.setdefault(field_name, []).append(message)

    def raise_if_any(self, summary: str) -> None:
        if self.errors:
            details = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in self.errors.items())
            raise InvalidInput(f"{summary} {details}", extra={"fields": self.errors})


def _check_text(problems: _Problems, field_name: str, value: str, *, limit: int, multiline: bool) -> str:
    value = (value or "").strip()
    allowed = "\n\r\t" if multiline else ""
    if not value:
        problems.add(field_name, "This field may not be blank.")
    elif len(value) > limit:
        problems.add(field_name, f"At most {limit} characters (got {len(value)}).")
    elif any((ord(char) < 32 and char not in allowed) or ord(char) == 127 for char in value):
        problems.add(field_name, "Control characters are not allowed.")
    return value


def _check_choice(problems: _Problems, field_name: str, value: Any, choices: Iterable[Any]) -> None:
    allowed = list(choices)
    if value not in allowed:
        problems.add(field_name, f"{value!r} is not one of {', '.join(str(choice) for choice in allowed)}.")


def _check_review_date(problems: _Problems, value: Any) -> None:
    today = timezone.now().date()
    latest = today + timedelta(days=settings.ISN_ITEM_MAX_REVIEW_DAYS)
    if not isinstance(value, date) or isinstance(value, datetime):
        problems.add("review_date", "A date (YYYY-MM-DD) is required.")
    elif not today < value <= latest:
        problems.add("review_date", f"Must be after today and no later than {latest.isoformat()}.")


def _check_countries(problems: _Problems, codes: Sequence[str], originator_country: str) -> list[str]:
    wanted = sorted({str(code).strip().upper() for code in codes or ()})
    members = set(Country.objects.filter(code__in=wanted).values_list("code", flat=True))
    unknown = [code for code in wanted if code not in members]
    if not wanted:
        problems.add("countries", "Name at least the originating country.")
    if unknown:
        problems.add("countries", f"Not member countries of the network: {', '.join(unknown)}.")
    if wanted and originator_country not in wanted:
        problems.add(
            "countries", f"The release must include the originating country ({originator_country}); it is not implied."
        )
    return wanted


def _check_agencies(problems: _Problems, agency_ids: Sequence[int], countries: Sequence[str]) -> list[Agency]:
    wanted = sorted(set(agency_ids or ()))
    if not wanted:
        return []  # the usual case; not even a query to build
    agencies = list(Agency.objects.filter(pk__in=wanted, is_active=True))
    found = {agency.pk for agency in agencies}
    missing = [str(pk) for pk in wanted if pk not in found]
    if missing:
        problems.add("agencies", f"No active member agencies with ids {', '.join(missing)}.")
    outside = [
        f"{agency.short_name} ({agency.country_id})" for agency in agencies if agency.country_id not in countries
    ]
    if outside:
        problems.add("agencies", f"These agencies' countries are not in the release: {', '.join(outside)}.")
    return agencies


def _check_named_users(problems: _Problems, usernames: Sequence[str], countries: Sequence[str]) -> list[Membership]:
    wanted = sorted({str(name).strip() for name in usernames or ()})
    if not wanted:
        return []
    memberships = list(
        Membership.objects.select_related("user", "agency").filter(
            user__username__in=wanted, user__is_active=True, is_active=True, agency__is_active=True
        )
    )
    found = {membership.user.get_username(): membership for membership in memberships}
    missing = [name for name in wanted if name not in found]
    if missing:
        problems.add("named_users", f"Not active members of the network: {', '.join(missing)}.")
    # A named person reads with their own country's key, so their country must be released; auditors never read.
    outside = [name for name, m in found.items() if m.agency.country_id not in countries]
    if outside:
        problems.add("named_users", f"Their countries are not in the release: {', '.join(sorted(outside))}.")
    auditors = [name for name, m in found.items() if m.role in (Role.NATIONAL_AUDITOR, Role.REGIONAL_AUDITOR)]
    if auditors:
        problems.add("named_users", f"Auditors cannot be named on items: {', '.join(sorted(auditors))}.")
    return memberships


def _view_item_permission() -> Permission:
    return Permission.objects.get(content_type__app_label="messaging", codename="view_item")


# --- results ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttachmentSummary:
    id: uuid.UUID
    filename: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime


@dataclass(frozen=True)
class ItemContent:
    """An item opened for one viewer. ``release`` is None unless the viewer's agency originated it."""

    item: Item
    title: str
    body: str
    attachments: list[AttachmentSummary] = field(default_factory=list)
    release: dict[str, list[Any]] | None = None
    is_read: bool = True


@dataclass(frozen=True)
class ItemSummary:
    """A line of the inbox. ``title`` is None when it did not open (that failure is recorded)."""

    item: Item
    title: str | None
    is_read: bool


@dataclass(frozen=True)
class AttachmentFile:
    attachment_id: uuid.UUID
    filename: str
    content_type: str
    content: bytes
    sha256: str


def _summaries_of_attachments(item: Item, data_key: bytes, country_code: str) -> list[AttachmentSummary]:
    summaries = []
    for attachment in item.attachments.defer("content_sealed"):
        try:
            filename = open_sealed(
                data_key,
                bytes(attachment.filename_sealed),
                aad=_attachment_name_aad(item.pk, attachment.pk, item.content_version),
            ).decode("utf-8")
        except (DecryptionError, UnicodeDecodeError):
            raise _Unreadable(item, country_code, "attachment_name_does_not_open") from None
        summaries.append(
            AttachmentSummary(
                id=attachment.pk,
                filename=filename,
                content_type=attachment.content_type,
                size=attachment.size,
                sha256=attachment.sha256,
                created_at=attachment.created_at,
            )
        )
    return summaries


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
    )
    INSERT INTO messaging_itemread (item_id, user_id, first_read_at) VALUES (%(item)s, %(reader)s, %(now)s)
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
) -> ItemContent:
    """Post an item released to ``countries`` (which must include the poster's own), optionally narrowed to
    ``agencies`` within a country, and to ``named_users`` (usernames) on a need-to-know basis."""
    membership = content_membership(actor)
    if membership is None:
        raise PermissionDenied("Only officers of a member agency may post items.")
    originator_country = membership.agency.country_id
    problems = _Problems()
    title = _check_text(problems, "title", title, limit=TITLE_MAX_LENGTH, multiline=False)
    body = _check_text(problems, "body", body, limit=BODY_MAX_LENGTH, multiline=True)
    border_crossing = (border_crossing or "").strip()
    if len(border_crossing) > BORDER_CROSSING_MAX_LENGTH:
        problems.add("border_crossing", f"At most {BORDER_CROSSING_MAX_LENGTH} characters.")
    _check_choice(problems, "language", language, [code for code, _name in settings.LANGUAGES])
    _check_choice(problems, "category", category, Category.values)
    _check_choice(problems, "priority", priority, Priority.values)
    _check_choice(problems, "source_reliability", source_reliability, SourceReliability.values)
    _check_choice(problems, "info_credibility", info_credibility, InfoCredibility.values)
    _check_choice(problems, "handling_code", handling_code, HandlingCode.values)
    _check_review_date(problems, review_date)
    released = _check_countries(problems, countries, originator_country)
    restricted_to = _check_agencies(problems, agencies, released)
    named = _check_named_users(problems, named_users, released)
    problems.raise_if_any("The item was not stored.")

    item_id = uuid.uuid4()
    data_key = new_key()
    item = Item.objects.create(
        id=item_id,
        originator_agency=membership.agency,
        originator_office=membership.office,
        originator_user=actor,
        originator_country=originator_country,
        title_sealed=seal(data_key, title.encode("utf-8"), aad=_field_aad(item_id, "title", 1)),
        body_sealed=seal(data_key, body.encode("utf-8"), aad=_field_aad(item_id, "body", 1)),
        content_version=1,
        language=language,
        category=category,
        priority=priority,
        source_reliability=source_reliability,
        info_credibility=info_credibility,
        handling_code=handling_code,
        border_crossing=border_crossing,
        review_date=review_date,
    )
    keys = _wrap_for(item_id, data_key, _primary_keks(released))
    # The poster has read what they wrote: their own posts never count as unread.
    if connection.vendor == "postgresql":
        execute_hot(
            _POST_ROWS_SQL,
            {
                "item": item_id,
                "key_countries": [key.country_id for key in keys],
                "versions": [key.kek_version for key in keys],
                "wrapped": [key.wrapped_key for key in keys],
                "countries": released,
                "reader": actor.pk,
                "now": item.created_at,
            },
        )
    else:
        ItemKey.objects.bulk_create(keys)
        ItemCountryGrant.objects.bulk_create([ItemCountryGrant(item=item, country_id=code) for code in released])
        ItemRead.objects.create(item=item, user=actor, first_read_at=item.created_at)
    ItemAgencyGrant.objects.bulk_create(
        [ItemAgencyGrant(item=item, agency=agency, country_id=agency.country_id) for agency in restricted_to]
    )
    if named:
        permission = _view_item_permission()
        ItemUserObjectPermission.objects.bulk_create(
            [ItemUserObjectPermission(content_object=item, user=m.user, permission=permission) for m in named]
        )
    record(
        action="messaging.item.create",
        actor=actor,
        target=item,
        target_country=originator_country,
        details={
            "countries": released,
            "agencies": sorted(agency.pk for agency in restricted_to),
            "named_users": sorted(m.user_id for m in named),
            "category": category,
            "priority": priority,
            "handling_code": handling_code,
        },
    )
    # Routing happens after commit, from the outbox: the post never waits for it, and a broker outage loses none.
    outbox_add(kind=OutboxKind.ITEM_ROUTE, item=item, payload={"item_id": str(item_id), "priority": priority})
    return ItemContent(item=item, title=title, body=body, release=_release_as_posted(released, restricted_to, named))


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


@_fails_closed
@transaction.atomic
def item_read(*, actor: Actor, item_id: object) -> ItemContent:
    """Open one item for the viewer with their own country's key; recorded as ``messaging.item.read``."""
    item = item_get_for_reading(actor, item_id=item_id)
    country_code = _viewer_country(actor)
    if item.viewer_wrapped_key is None:  # type: ignore[attr-defined]
        raise _Unreadable(item, country_code, "no_key")
    own_key = ItemKey(
        item=item,
        country_id=country_code,
        kek_version=item.viewer_kek_version,  # type: ignore[attr-defined]
        wrapped_key=item.viewer_wrapped_key,  # type: ignore[attr-defined]
    )
    data_key = _unwrap_data_key(item, own_key)
    title = _open_text(data_key, item, "title", country_code)
    body = _open_text(data_key, item, "body", country_code)
    attachments = _summaries_of_attachments(item, data_key, country_code) if item.has_attachments else []  # type: ignore[attr-defined]
    if not item.viewer_has_read:  # type: ignore[attr-defined]
        ItemRead.objects.bulk_create(
            [ItemRead(item=item, user_id=actor.pk, first_read_at=timezone.now())], ignore_conflicts=True
        )
    originator = is_originator(actor, item)
    if not originator:
        _mark_delivery_read(actor, item)
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
    )


@transaction.atomic
def item_list(*, actor: Actor, items: Sequence[Item]) -> list[ItemSummary]:
    """One page of the inbox with titles opened; one ``messaging.item.list`` event names every item returned.

    ``items`` come from ``selectors.items_for_listing(actor)``, which prefetches the viewer's own wrapped keys.
    A title that does not open is returned as None and its failure recorded; the rest of the page is still served.
    """
    membership = content_membership(actor)
    if membership is None:
        raise PermissionDenied("Only officers of a member agency may list items.")
    country_code = membership.agency.country_id
    summaries = []
    for item in items:
        title: str | None
        try:
            wrapped = next(iter(item.viewer_keys), None)  # type: ignore[attr-defined]
            if wrapped is None:
                raise _Unreadable(item, country_code, "no_key")
            title = _open_text(_unwrap_data_key(item, wrapped), item, "title", country_code)
        except _Unreadable as failure:
            _record_decrypt_failure(actor, failure, during="item_list")
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


def _shred(item: Item, country_codes: Iterable[str], *, actor: Actor | None) -> list[str]:
    """Remove these countries from the item: grants, agency restrictions, named people and wrapped keys; then
    re-key the item, so that a removed country's wrapped key, even if a copy survives somewhere, opens nothing."""
    codes = sorted(set(country_codes))
    if not codes:
        return []
    _remove_countries(item, codes)
    try:
        with transaction.atomic():  # a savepoint: no attachment may stay sealed under a key that was not kept
            _reseal(item, rekey=True)
    except _Unreadable as failure:
        # Deleting the wrapped keys has already cut the countries off; a broken item must not block that.
        _record_decrypt_failure(actor, failure, during="shred")
    else:
        item.save(update_fields=["title_sealed", "body_sealed", "updated_at"])
    return codes


def _remove_countries(item: Item, codes: Sequence[str]) -> None:
    ItemKey.objects.filter(item=item, country_id__in=codes).delete()
    ItemCountryGrant.objects.filter(item=item, country_id__in=codes).delete()
    ItemAgencyGrant.objects.filter(item=item, country_id__in=codes).delete()
    ItemUserObjectPermission.objects.filter(
        content_object=item, user__membership__agency__country_id__in=codes
    ).delete()


def _released_countries(item: Item) -> set[str]:
    return set(ItemCountryGrant.objects.filter(item=item).values_list("country_id", flat=True))


# --- reach: forwards and consents follow the originator's release ---------------------------------------------------


@dataclass(frozen=True)
class Reach:
    """What a narrowing, withdrawal or expiry cut off beyond the release itself."""

    forward_ids: list[int] = field(default_factory=list)
    consent_ids: list[str] = field(default_factory=list)
    # Countries shared by a consent that was cut off: their grants and wrapped keys went with it.
    countries: list[str] = field(default_factory=list)

    def details(self) -> dict[str, list[Any]]:
        """For the act's audit event: only what was cut off (ids and codes)."""
        found: dict[str, list[Any]] = {
            "revoked_forwards": self.forward_ids,
            "revoked_consents": self.consent_ids,
            "consented_countries_cut": self.countries,
        }
        return {name: ids for name, ids in found.items() if ids}


def _forwards_that_stay(item: Item, release: Release, before: Release | None, forwards: Sequence[Forward]) -> set[int]:
    """Ids of the forwards that still hold under ``release``, followed outwards from those who hold it themselves.

    A forward holds while its country keeps its grant, its receiving agency was not cut out by this very change
    (it saw the item under ``before`` and does not under ``release``), and its forwarding agency holds the item: as
    the originator, under the release, as a named person, or by a forward that itself holds. Following from the
    holders outwards (not checking each forward alone) is what lets a chain, or a cycle, of forwards fall together.
    """
    if not release.active:
        return set()

    def cut_out(agency_id: int, country: str) -> bool:
        return (
            before is not None
            and before.agency_may_see(agency_id, country)
            and not release.agency_may_see(agency_id, country)
        )

    candidates = [
        f for f in forwards if f.country_id in release.countries and not cut_out(f.to_agency_id, f.country_id)
    ]
    holders = {item.originator_agency_id}
    kept: set[int] = set()
    progress = True
    while progress:
        progress = False
        for forward in candidates:
            if forward.pk in kept:
                continue
            if forward.from_agency_id in holders or release.person_may_see(
                forward.from_user_id, forward.from_agency_id, forward.country_id
            ):
                kept.add(forward.pk)
                holders.add(forward.to_agency_id)
                progress = True
    return kept


def _consent_holds(consent: ConsentRequest, release: Release, holders: set[int]) -> bool:
    """A consent request stands while its requesting agency holds the item and, once approved, its country is
    still released (the originator removing that country revokes the consent)."""
    if consent.status == ConsentStatus.APPROVED and consent.target_country_id not in release.countries:
        return False
    requester_country = consent.requester_agency.country_id
    return release.active and (
        consent.requester_agency_id in holders
        or release.person_may_see(consent.requester_user_id, consent.requester_agency_id, requester_country)
    )


def _follow_release(item: Item, *, before: Release | None, actor: Actor | None) -> Reach:
    """After a narrowing, withdrawal or expiry, cut off every forward and consent whose holder lost the item.

    Revoked forwards get ``revoked_at``; revoked consent requests (approved or pending) become REVOKED, and an
    approved one's country grant and wrapped key go (the caller re-keys the item, as for any removed country).
    Removing a consented country can cut off more (a forward inside it, a consent it asked for), so this runs until
    nothing changes. Deliveries are marked, and their holders told, by the ``item.revoke`` outbox row the caller
    writes. Every revocation is recorded, filed under the country it happened in so its auditors see it.
    """
    now = timezone.now()
    forwards_cut: list[Forward] = []
    consents_cut: list[ConsentRequest] = []
    countries_cut: list[str] = []
    while True:
        release = release_of(item)
        forwards = list(Forward.objects.select_for_update().filter(item=item, revoked_at__isnull=True).order_by("pk"))
        kept = _forwards_that_stay(item, release, before, forwards)
        holders = {item.originator_agency_id} | {f.to_agency_id for f in forwards if f.pk in kept}
        lost_forwards = [f for f in forwards if f.pk not in kept]
        consents = list(
            ConsentRequest.objects.select_for_update(of=("self",))
            .filter(item=item, status__in=[ConsentStatus.PENDING, ConsentStatus.APPROVED])
            .select_related("requester_agency")
            .order_by("created_at", "pk")
        )
        lost_consents = [c for c in consents if not _consent_holds(c, release, holders)]
        countries = sorted(
            {
                c.target_country_id
                for c in lost_consents
                if c.status == ConsentStatus.APPROVED and c.target_country_id in release.countries
            }
        )
        Forward.objects.filter(pk__in=[f.pk for f in lost_forwards]).update(revoked_at=now)
        ConsentRequest.objects.filter(pk__in=[c.pk for c in lost_consents]).update(
            status=ConsentStatus.REVOKED, revoked_at=now
        )
        if countries:
            _remove_countries(item, countries)
        forwards_cut += lost_forwards
        consents_cut += lost_consents
        countries_cut += countries
        if not countries:
            break
    by_country: dict[str, list[int]] = {}
    for forward in forwards_cut:
        by_country.setdefault(forward.country_id, []).append(forward.pk)
    for country_code, forward_ids in sorted(by_country.items()):
        record(
            action="messaging.forward.revoke",
            actor=actor,
            target=item,
            target_country=country_code,
            details={"forward_ids": forward_ids},
        )
    for consent in consents_cut:
        record(
            action="messaging.consent.revoke",
            actor=actor,
            target=consent,
            # The requesting side's country; the originator's auditors see the act through its actor, or through
            # the narrowing, withdrawal or expiry event that lists it.
            target_country=consent.requester_agency.country_id,
            details={
                "item_id": str(item.pk),
                "target_country": consent.target_country_id,
                "was": consent.status,
                "country_cut": consent.target_country_id in countries_cut,
            },
        )
    return Reach(
        forward_ids=[f.pk for f in forwards_cut],
        consent_ids=[str(c.pk) for c in consents_cut],
        countries=sorted(countries_cut),
    )


@_fails_closed
@transaction.atomic
def item_change(
    *,
    actor: Actor,
    item_id: object,
    countries: Sequence[str] | None = None,
    agencies: Sequence[int] | None = None,
    named_users: Sequence[str] | None = None,
    review_date: date | None = None,
    title: str | None = None,
    body: str | None = None,
) -> Item:
    """The originator narrows the release, moves the review date, or corrects the text (a new content version).

    ``countries``, ``agencies`` and ``named_users``, when given, are the complete new lists; each may only narrow
    what the item had. Widening needs the originator-consent flow, not a change.
    """
    item = item_get_as_originator(actor, item_id=item_id, for_update=True)
    if item.status != ItemStatus.ACTIVE:
        raise Conflict(f"This item is {item.status}; it can no longer be changed.")
    if all(value is None for value in (countries, agencies, named_users, review_date, title, body)):
        raise InvalidInput("Nothing to change: give countries, agencies, named_users, review_date, title or body.")
    problems = _Problems()
    current_countries = _released_countries(item)
    remaining = set(current_countries)
    if countries is not None:
        wanted = set(_check_countries(problems, countries, item.originator_country))
        added = sorted(wanted - current_countries)
        if added:
            problems.add(
                "countries",
                f"Adding {', '.join(added)} would widen the release; sharing with another country needs "
                "the originator-consent flow, not a change.",
            )
        remaining = current_countries & wanted
    removed_countries = sorted(current_countries - remaining)

    current_agencies = {grant.agency_id: grant.country_id for grant in item.agency_grants.all()}
    new_agencies = {pk: code for pk, code in current_agencies.items() if code in remaining}
    if agencies is not None:
        requested = {agency.pk: agency.country_id for agency in _check_agencies(problems, agencies, sorted(remaining))}
        for code in remaining:
            before = {pk for pk, country in current_agencies.items() if country == code}
            after = {pk for pk, country in requested.items() if country == code}
            # No rows for a country means every agency of it: dropping a restriction, or adding an agency to one,
            # widens.
            if before and (not after or after - before):
                problems.add(
                    "agencies",
                    f"The change would let more agencies of {code} see the item; a change may only narrow.",
                )
        new_agencies = requested

    current_named = {
        grant.user.get_username(): grant.user_id
        for grant in item.named_grants.select_related("user").filter(user__membership__agency__country_id__in=remaining)
    }
    new_named = dict(current_named)
    if named_users is not None:
        wanted_names = {str(name).strip() for name in named_users}
        added_names = sorted(wanted_names - set(current_named))
        if added_names:
            problems.add("named_users", f"Naming {', '.join(added_names)} would widen the release.")
        new_named = {name: pk for name, pk in current_named.items() if name in wanted_names}

    if review_date is not None:
        _check_review_date(problems, review_date)
    if title is not None:
        title = _check_text(problems, "title", title, limit=TITLE_MAX_LENGTH, multiline=False)
    if body is not None:
        body = _check_text(problems, "body", body, limit=BODY_MAX_LENGTH, multiline=True)
    problems.raise_if_any("The item was not changed.")

    removed_agencies = sorted(set(current_agencies) - set(new_agencies))
    added_restrictions = sorted(set(new_agencies) - set(current_agencies))
    all_named_before = set(item.named_grants.values_list("user_id", flat=True))
    removed_named = sorted(all_named_before - set(new_named.values()))
    text_changed = title is not None or body is not None
    # Countries whose grant and key go: those removed, and those shared by a consent that the narrowing cut off.
    cut_countries: list[str] = []
    if removed_countries or removed_agencies or added_restrictions or removed_named:
        before = release_of(item)
        if removed_countries:
            _remove_countries(item, removed_countries)
        ItemAgencyGrant.objects.filter(item=item, agency_id__in=removed_agencies).delete()
        ItemAgencyGrant.objects.bulk_create(
            [ItemAgencyGrant(item=item, agency_id=pk, country_id=new_agencies[pk]) for pk in added_restrictions]
        )
        ItemUserObjectPermission.objects.filter(content_object=item, user_id__in=removed_named).delete()
        reach = _follow_release(item, before=before, actor=actor)
        cut_countries = sorted({*removed_countries, *reach.countries})
        if not text_changed:
            _shred(item, cut_countries, actor=actor)  # else the re-seal below re-keys for the countries left
        outbox_add(kind=OutboxKind.ITEM_REVOKE, item=item, payload={"item_id": str(item.pk)})
        record(
            action="messaging.item.release_narrow",
            actor=actor,
            target=item,
            target_country=item.originator_country,
            details={
                "removed_countries": removed_countries,
                "removed_agencies": removed_agencies,
                "restricted_to_agencies": added_restrictions,
                "removed_named_users": removed_named,
                **reach.details(),
            },
        )

    changed: list[str] = []
    if review_date is not None and review_date != item.review_date:
        changed.append("review_date")
        item.review_date = review_date
    if text_changed:
        changed.append("text")
        # A correction that fails to open the current text fails closed (the decorator records it).
        _reseal(item, title=title, body=body, new_version=True, rekey=bool(cut_countries))
    if changed:
        item.save(update_fields=["review_date", "title_sealed", "body_sealed", "content_version", "updated_at"])
        record(
            action="messaging.item.change",
            actor=actor,
            target=item,
            target_country=item.originator_country,
            details={
                "changed": changed,
                "content_version": item.content_version,
                "review_date": item.review_date.isoformat(),
            },
        )
    return item


def _reseal(
    item: Item, *, title: str | None = None, body: str | None = None, new_version: bool = False, rekey: bool = False
) -> None:
    """Open title, body and attachments with the originator's key and seal them again (the caller saves the item).

    ``new_version``: a correction; everything moves to the next content version, since the associated data names
    the version and older ciphertexts must not stay valid. ``rekey``: a fresh data key, wrapped only for the
    countries still granted; the old wrapped keys are deleted.
    """
    old_key = _data_key(item, item.originator_country)
    data_key = new_key() if rekey else old_key
    old_version = item.content_version
    version = old_version + 1 if new_version else old_version
    title = title if title is not None else _open_text(old_key, item, "title", item.originator_country)
    body = body if body is not None else _open_text(old_key, item, "body", item.originator_country)
    for attachment_id in item.attachments.values_list("pk", flat=True):
        attachment = Attachment.objects.select_for_update().get(pk=attachment_id)
        try:
            content = open_sealed(
                old_key, bytes(attachment.content_sealed), aad=_attachment_aad(item.pk, attachment.pk, old_version)
            )
            name = open_sealed(
                old_key,
                bytes(attachment.filename_sealed),
                aad=_attachment_name_aad(item.pk, attachment.pk, old_version),
            )
        except DecryptionError:
            raise _Unreadable(item, item.originator_country, "attachment_does_not_open") from None
        attachment.content_sealed = seal(data_key, content, aad=_attachment_aad(item.pk, attachment.pk, version))
        attachment.filename_sealed = seal(data_key, name, aad=_attachment_name_aad(item.pk, attachment.pk, version))
        attachment.save(update_fields=["content_sealed", "filename_sealed"])
    if rekey:
        _reseal_sealed_texts(item, old_key, data_key)
    item.content_version = version
    item.title_sealed = seal(data_key, title.encode("utf-8"), aad=_field_aad(item.pk, "title", version))
    item.body_sealed = seal(data_key, body.encode("utf-8"), aad=_field_aad(item.pk, "body", version))
    if rekey:
        ItemKey.objects.filter(item=item).delete()
        ItemKey.objects.bulk_create(_wrap_for(item.pk, data_key, _primary_keks(_released_countries(item))))


def _end(item: Item, status: str, *, actor: Actor | None) -> tuple[list[str], Reach]:
    """Withdraw or expire: every country but the originator's loses its grant and its key, at once; every forward
    and consent of the item is cut off with them."""
    others = _released_countries(item) - {item.originator_country}
    shredded = _shred(item, others, actor=actor)
    # Named people and agency restrictions in the originator's own country go too: only the originator keeps it.
    ItemUserObjectPermission.objects.filter(content_object=item).delete()
    ItemAgencyGrant.objects.filter(item=item).delete()
    item.status = status
    item.save(update_fields=["status", "updated_at"])
    reach = _follow_release(item, before=None, actor=actor)
    # Holders of deliveries are told after commit that the item is gone.
    outbox_add(kind=OutboxKind.ITEM_REVOKE, item=item, payload={"item_id": str(item.pk)})
    return shredded, reach


@transaction.atomic
def item_withdraw(*, actor: Actor, item_id: object) -> Item:
    """The originator withdraws the item: recipients lose it at once (grants removed, their keys shredded)."""
    item = item_get_as_originator(actor, item_id=item_id, for_update=True)
    if item.status != ItemStatus.ACTIVE:
        raise Conflict(f"This item is already {item.status}.")
    shredded, reach = _end(item, ItemStatus.WITHDRAWN, actor=actor)
    record(
        action="messaging.item.withdraw",
        actor=actor,
        target=item,
        target_country=item.originator_country,
        details={"shredded_countries": shredded, **reach.details()},
    )
    return item


def items_expire(*, actor: Actor | None = None, today: date | None = None, batch_size: int = 200) -> int:
    """Expire every active item whose review date has passed (one transaction per item); returns how many."""
    today = today or timezone.now().date()
    expired = 0
    while True:
        due = list(
            Item.objects.filter(status=ItemStatus.ACTIVE, review_date__lt=today)
            .order_by("review_date", "pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not due:
            return expired
        expired += sum(_item_expire(actor=actor, item_id=pk, today=today) for pk in due)


@transaction.atomic
def _item_expire(*, actor: Actor | None, item_id: uuid.UUID, today: date) -> bool:
    # skip_locked: an item being changed right now is expired on the next run, rather than waited for.
    item = (
        Item.objects.select_for_update(skip_locked=True)
        .filter(pk=item_id, status=ItemStatus.ACTIVE, review_date__lt=today)
        .first()
    )
    if item is None:
        return False
    shredded, reach = _end(item, ItemStatus.EXPIRED, actor=actor)
    record(
        action="messaging.item.expire",
        actor=actor,
        target=item,
        target_country=item.originator_country,
        details={"review_date": item.review_date.isoformat(), "shredded_countries": shredded, **reach.details()},
    )
    return True


# --- attachments ---------------------------------------------------------------------------------------------------


@_fails_closed
@transaction.atomic
def attachment_add(*, actor: Actor, item_id: object, filename: str, content: bytes) -> AttachmentSummary:
    """The originator attaches a file; its type is judged from its bytes and it is sealed like the text."""
    item = item_get_as_originator(actor, item_id=item_id, for_update=True)
    if item.status != ItemStatus.ACTIVE:
        raise Conflict(f"This item is {item.status}; nothing more can be attached.")
    limit = settings.ISN_ATTACHMENT_MAX_BYTES
    if not content:
        raise InvalidInput("The attachment is empty.")
    if len(content) > limit:
        raise InvalidInput(f"The attachment is larger than the limit of {limit} bytes.")
    if item.attachments.count() >= settings.ISN_ATTACHMENTS_PER_ITEM:
        raise InvalidInput(f"An item can have at most {settings.ISN_ATTACHMENTS_PER_ITEM} attachments.")
    sniffed = sniff(content)
    if sniffed is None:
        raise InvalidInput(
            "This kind of file is not accepted (judged from its content, not its name). Accepted: PDF, JPEG, PNG, "
            "GIF, WebP, HEIC, TIFF, DOCX, XLSX, PPTX, ODT, ODS, ODP and plain UTF-8 text."
        )
    name = safe_filename(filename, sniffed)
    data_key = _data_key(item, item.originator_country)
    attachment_id = uuid.uuid4()
    attachment = Attachment.objects.create(
        id=attachment_id,
        item=item,
        filename_sealed=seal(
            data_key, name.encode("utf-8"), aad=_attachment_name_aad(item.pk, attachment_id, item.content_version)
        ),
        content_type=sniffed.content_type,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        content_sealed=seal(data_key, content, aad=_attachment_aad(item.pk, attachment_id, item.content_version)),
        uploaded_by=actor,
    )
    record(
        action="messaging.attachment.add",
        actor=actor,
        target=item,
        target_country=item.originator_country,
        details={"attachment_id": str(attachment_id), "content_type": sniffed.content_type, "size": len(content)},
    )
    return AttachmentSummary(
        id=attachment.pk,
        filename=name,
        content_type=attachment.content_type,
        size=attachment.size,
        sha256=attachment.sha256,
        created_at=attachment.created_at,
    )


@_fails_closed
@transaction.atomic
def attachment_download(*, actor: Actor, item_id: object, attachment_id: object) -> AttachmentFile:
    """Open one attachment with the viewer's own country's key; recorded as ``messaging.attachment.download``."""
    item = item_get(actor, item_id=item_id)
    try:
        wanted = uuid.UUID(str(attachment_id))
    except ValueError:
        raise NotFound("No such attachment.") from None
    attachment = Attachment.objects.filter(item=item, pk=wanted).first()
    if attachment is None:
        raise NotFound("No such attachment.")
    country_code = _viewer_country(actor)
    data_key = _data_key(item, country_code)
    try:
        content = open_sealed(
            data_key,
            bytes(attachment.content_sealed),
            aad=_attachment_aad(item.pk, attachment.pk, item.content_version),
        )
        name = open_sealed(
            data_key,
            bytes(attachment.filename_sealed),
            aad=_attachment_name_aad(item.pk, attachment.pk, item.content_version),
        ).decode("utf-8")
    except (DecryptionError, UnicodeDecodeError):
        raise _Unreadable(item, country_code, "attachment_does_not_open") from None
    if hashlib.sha256(content).hexdigest() != attachment.sha256:
        raise _Unreadable(item, country_code, "attachment_digest_mismatch")
    record(
        action="messaging.attachment.download",
        actor=actor,
        target=item,
        target_country=item.originator_country,
        details={"attachment_id": str(attachment.pk)},
    )
    return AttachmentFile(
        attachment_id=attachment.pk,
        filename=name,
        content_type=attachment.content_type,
        content=content,
        sha256=attachment.sha256,
    )


# --- key rotation --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RewrapResult:
    rewrapped: int
    failed: int
    remaining: int
    retired: bool


def country_keys_rewrap(
    *,
    actor: Actor | None,
    country_code: str,
    old_version: int,
    batch_size: int | None = None,
    time_budget: float | None = None,
) -> RewrapResult:
    """Re-wrap every data key of ``country_code`` held under ``old_version`` with the primary key, never opening
    content; when none is left, retire the old version. Idempotent: run it again to continue where it stopped."""
    old = CountryKey.objects.filter(country_id=country_code, version=old_version).first()
    if old is None or old.status == CountryKeyStatus.PRIMARY:
        raise Conflict(f"{country_code} key v{old_version} is not being rotated out.")
    if old.status == CountryKeyStatus.RETIRED:
        return RewrapResult(rewrapped=0, failed=0, remaining=0, retired=True)
    batch_size = batch_size or settings.ISN_KEY_REWRAP_BATCH
    deadline = None if time_budget is None else time.monotonic() + time_budget
    new_version = CountryKey.objects.get(country_id=country_code, status=CountryKeyStatus.PRIMARY).version
    rewrapped = 0
    # Items' data keys, then requests for information's: both are wrapped with the country's key.
    failed: dict[type[ItemKey | RfiKey], set[int]] = {ItemKey: set(), RfiKey: set()}
    for model in (ItemKey, RfiKey):
        while deadline is None or time.monotonic() < deadline:
            done, broken, seen = _rewrap_batch(
                country_code, old_version, batch_size, exclude=failed[model], model=model
            )
            rewrapped += done
            failed[model] |= broken
            if not seen:
                break
    remaining = sum(
        model.objects.filter(country_id=country_code, kek_version=old_version).exclude(pk__in=pks).count()
        for model, pks in failed.items()
    )
    with transaction.atomic():
        retired = False
        if remaining == 0:
            # Keys that did not unwrap with the old version were already unreadable; retiring loses nothing.
            country_key_retire(actor=actor, country_code=country_code, version=old_version)
            retired = True
        details: dict[str, Any] = {
            "old_version": old_version,
            "new_version": new_version,
            "count": rewrapped,
            "failed_item_ids": sorted(
                str(pk) for pk in ItemKey.objects.filter(pk__in=failed[ItemKey]).values_list("item_id", flat=True)
            ),
            "remaining": remaining,
            "retired": retired,
        }
        if failed[RfiKey]:
            details["failed_rfi_ids"] = sorted(
                str(pk) for pk in RfiKey.objects.filter(pk__in=failed[RfiKey]).values_list("rfi_id", flat=True)
            )
        record(
            action="messaging.country_key.rewrap",
            actor=actor,
            target=old,
            target_country=country_code,
            outcome=Outcome.ERROR if any(failed.values()) else Outcome.OK,
            details=details,
        )
    failures = sum(len(pks) for pks in failed.values())
    return RewrapResult(rewrapped=rewrapped, failed=failures, remaining=remaining, retired=retired)


def _wrapped_key_aad(key: ItemKey | RfiKey, country_code: str, kek_version: int) -> bytes:
    if isinstance(key, RfiKey):
        from messaging.rfis import rfi_data_key_aad  # messaging.rfis builds on this module

        return rfi_data_key_aad(key.rfi_id, country_code, kek_version)
    return _data_key_aad(key.item_id, country_code, kek_version)


@transaction.atomic
def _rewrap_batch(
    country_code: str,
    old_version: int,
    batch_size: int,
    *,
    exclude: set[int],
    model: type[ItemKey | RfiKey] = ItemKey,
) -> tuple[int, set[int], int]:
    # skip_locked: a key being shredded by a narrowing right now is not worth waiting for.
    batch = list(
        model.objects.select_for_update(skip_locked=True)
        .filter(country_id=country_code, kek_version=old_version)
        .exclude(pk__in=exclude)
        .order_by("pk")[:batch_size]
    )
    if not batch:
        return 0, set(), 0
    old_kek = key_version(country_code, old_version)
    new_version, new_kek = primary_key(country_code)
    done: list[ItemKey | RfiKey] = []
    broken: set[int] = set()
    for key in batch:
        try:
            data_key = unwrap_key(old_kek, bytes(key.wrapped_key), aad=_wrapped_key_aad(key, country_code, old_version))
        except DecryptionError:
            broken.add(key.pk)
            continue
        key.kek_version = new_version
        key.wrapped_key = wrap_key(new_kek, data_key, aad=_wrapped_key_aad(key, country_code, new_version))
        done.append(key)
    model.objects.bulk_update(done, ["kek_version", "wrapped_key"])
    return len(done), broken, len(batch)


# --- deliveries and acknowledgement ----------------------------------------------------------------------------------


class AlreadyAcknowledged(Conflict):
    code = "already_acknowledged"


def _ack_note_aad(item_id: uuid.UUID, agency_id: int) -> bytes:
    return associated_data("acknowledgement-note", str(item_id), agency_id)


# --- texts sealed under an item's data key, also for messaging.forwarding ---------------------------------------------

# Services elsewhere that open or seal under an item's key fail closed exactly like these.
fails_closed = _fails_closed


def forward_reason_aad(item_id: uuid.UUID, forward_id: int) -> bytes:
    """Associated data of a forward's reason, sealed under the item's data key."""
    return associated_data("forward", str(item_id), forward_id, "reason")


def consent_text_aad(item_id: uuid.UUID, consent_id: uuid.UUID, field_name: str) -> bytes:
    """Associated data of a consent request's ``justification`` or ``decline_reason``, sealed under the item's key."""
    return associated_data("consent", str(item_id), str(consent_id), field_name)


def item_data_key(item: Item, country_code: str) -> bytes:
    """The item's data key unwrapped with ``country_code``'s own key and no other; inside a ``fails_closed``
    service (a missing key, or one that does not open, is recorded and refused)."""
    return _data_key(item, country_code)


def item_data_key_if_held(item: Item, country_code: str) -> bytes | None:
    """Like ``item_data_key``, but None when the country holds no key for the item any more (it was cut off)."""
    wrapped = ItemKey.objects.filter(item=item, country_id=country_code).first()
    return None if wrapped is None else _unwrap_data_key(item, wrapped)


def item_text_open(data_key: bytes, item: Item, country_code: str, sealed: bytes, *, aad: bytes, what: str) -> str:
    """Open one text sealed under the item's data key; inside a ``fails_closed`` service."""
    try:
        return open_sealed(data_key, bytes(sealed), aad=aad).decode("utf-8")
    except (DecryptionError, UnicodeDecodeError):
        raise _Unreadable(item, country_code, f"{what}_does_not_open") from None


def item_key_wrap(item: Item, data_key: bytes, country_code: str) -> None:
    """Wrap the item's data key for one more country with its primary key (a consent shares the item with it)."""
    ItemKey.objects.bulk_create(_wrap_for(item.pk, data_key, _primary_keks([country_code])))


def text_checked(field_name: str, value: str, *, limit: int, summary: str) -> str:
    """A free-text field checked like an item's (not blank, bounded, no control characters), or InvalidInput."""
    problems = _Problems()
    value = _check_text(problems, field_name, value, limit=limit, multiline=True)
    problems.raise_if_any(summary)
    return value


def _resealed(item: Item, old_key: bytes, data_key: bytes, sealed: bytes, *, aad: bytes, what: str) -> bytes:
    try:
        text = open_sealed(old_key, bytes(sealed), aad=aad)
    except DecryptionError:
        raise _Unreadable(item, item.originator_country, f"{what}_does_not_open") from None
    return seal(data_key, text, aad=aad)


def _reseal_sealed_texts(item: Item, old_key: bytes, data_key: bytes) -> None:
    """A re-key must carry along every text sealed under the item's data key (acknowledgement notes, forward
    reasons, consent justifications and decline reasons), or the sides could no longer open them."""
    for ack in Acknowledgement.objects.select_for_update().filter(item=item, note_text_sealed__isnull=False):
        aad = _ack_note_aad(item.pk, ack.agency_id)
        ack.note_text_sealed = _resealed(
            item, old_key, data_key, ack.note_text_sealed, aad=aad, what="acknowledgement_note"
        )
        ack.save(update_fields=["note_text_sealed"])
    for forward in Forward.objects.select_for_update().filter(item=item):
        aad = forward_reason_aad(item.pk, forward.pk)
        forward.reason_sealed = _resealed(
            item, old_key, data_key, forward.reason_sealed, aad=aad, what="forward_reason"
        )
        forward.save(update_fields=["reason_sealed"])
    for consent in ConsentRequest.objects.select_for_update().filter(item=item):
        for field_name in ("justification", "decline_reason"):
            sealed = getattr(consent, f"{field_name}_sealed")
            if sealed is not None:
                aad = consent_text_aad(item.pk, consent.pk, field_name)
                resealed = _resealed(item, old_key, data_key, sealed, aad=aad, what=f"consent_{field_name}")
                setattr(consent, f"{field_name}_sealed", resealed)
        consent.save(update_fields=["justification_sealed", "decline_reason_sealed"])


def _mark_delivery_read(actor: Actor, item: Item) -> None:
    """A member of a receiving agency opened the item: the agency's deliveries and the reader's notices are read."""
    membership = content_membership(actor)
    if membership is None:
        return
    now = timezone.now()
    Delivery.objects.filter(item=item, agency_id=membership.agency_id, read_at__isnull=True).update(read_at=now)
    notifications_mark_read_for_item(actor=actor, item=item)


@_fails_closed
@transaction.atomic
def item_acknowledge(*, actor: Actor, item_id: object, note: str = "", note_text: str = "") -> Acknowledgement:
    """A receiving agency acknowledges the item, once per agency; a second attempt is ``AlreadyAcknowledged`` (409).

    ``note`` is one of ``AcknowledgementNote``; ``note_text`` is sealed under the item's data key (it may say what
    the agency is doing about it), so only the originator and the acknowledging agency's country can open it.
    """
    item = item_get(actor, item_id=item_id)
    membership = content_membership(actor)
    if membership is None:  # item_get found the item, so this cannot happen; refuse rather than assume
        raise NotFound(NOT_FOUND_MESSAGE)
    if membership.agency_id == item.originator_agency_id:
        raise PermissionDenied("The originating agency does not acknowledge its own item.")
    problems = _Problems()
    note = (note or "").strip()
    if note:
        _check_choice(problems, "note", note, AcknowledgementNote.values)
    note_text = (note_text or "").strip()
    if note_text:
        note_text = _check_text(problems, "note_text", note_text, limit=ACKNOWLEDGEMENT_TEXT_MAX_LENGTH, multiline=True)
    problems.raise_if_any("The acknowledgement was not stored.")
    # Locking the agency's deliveries serialises two officers of one agency acknowledging at the same moment.
    deliveries = list(
        Delivery.objects.select_for_update().filter(item=item, agency_id=membership.agency_id, revoked_at__isnull=True)
    )
    if not deliveries:
        raise PermissionDenied("Only an agency this item was routed to may acknowledge it.")
    existing = Acknowledgement.objects.filter(item=item, agency_id=membership.agency_id).first()
    if existing is not None:
        raise AlreadyAcknowledged(
            f"Your agency already acknowledged this item at {existing.created_at.isoformat(timespec='seconds')}."
        )
    now = timezone.now()
    sealed = None
    if note_text:
        data_key = _data_key(item, membership.agency.country_id)
        sealed = seal(data_key, note_text.encode("utf-8"), aad=_ack_note_aad(item.pk, membership.agency_id))
    acknowledgement = Acknowledgement.objects.create(
        item=item, agency_id=membership.agency_id, user=actor, note=note, note_text_sealed=sealed, created_at=now
    )
    Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(acknowledged_at=now)
    record(
        action="messaging.item.acknowledge",
        actor=actor,
        target=item,
        target_country=item.originator_country,
        details={"agency_id": membership.agency_id, "note": note, "has_text": bool(note_text)},
    )
    return acknowledgement


@dataclass(frozen=True)
class AgencyDeliveryState:
    """What the originator sees of one recipient agency: when it was routed, told, read and acknowledged."""

    agency: Agency
    routed_at: datetime
    notified_at: datetime | None
    read_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    note: str
    note_text: str | None
    escalation_level: int
    revoked: bool


@_fails_closed
@transaction.atomic
def item_deliveries_view(*, actor: Actor, item_id: object) -> list[AgencyDeliveryState]:
    """The originator's view of routing, per recipient agency; recorded like the view of who read the item."""
    item = item_get_as_originator(actor, item_id=item_id)
    states = list(item_delivery_states(actor, item=item))
    agencies = Agency.objects.in_bulk([state["agency_id"] for state in states])
    acknowledgements = {ack.agency_id: ack for ack in Acknowledgement.objects.filter(item=item).select_related("user")}
    data_key = None
    result = []
    for state in states:
        ack = acknowledgements.get(state["agency_id"])
        text = None
        if ack is not None and ack.note_text_sealed is not None:
            data_key = data_key or _data_key(item, item.originator_country)
            try:
                text = open_sealed(
                    data_key, bytes(ack.note_text_sealed), aad=_ack_note_aad(item.pk, ack.agency_id)
                ).decode("utf-8")
            except (DecryptionError, UnicodeDecodeError):
                raise _Unreadable(item, item.originator_country, "acknowledgement_note_does_not_open") from None
        result.append(
            AgencyDeliveryState(
                agency=agencies[state["agency_id"]],
                routed_at=state["routed_at"],
                notified_at=state["notified_at"],
                read_at=state["read_at"],
                acknowledged_at=ack.created_at if ack is not None else None,
                acknowledged_by=ack.user.get_username() if ack is not None else None,
                note=ack.note if ack is not None else "",
                note_text=text,
                escalation_level=state["escalation_level"],
                revoked=bool(state["revoked"]),
            )
        )
    record(
        action="messaging.item.deliveries_view",
        actor=actor,
        target=item,
        target_country=item.originator_country,
        details={"agencies": len(result)},
    )
    return result
