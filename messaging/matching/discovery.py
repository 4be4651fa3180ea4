"""Hit/no-hit discovery: a check of identifiers answers, for each, the items the caller may read that carry it, and
for the active discoverable items they may not read, only the holding agency, its country and a fresh hit reference.

An identifier is shaped like an entity (``{"type": "phone", "number": "...", "country": "KH"}``) and normalised by
the entities' own code (``entities.entities_check``, so ``normalise.match_values``): what matches an item's entity is
exactly what its token was made from. Its tokens are computed under every live version of the match key, so a check
works while a rotation recomputes the stored tokens.

Readable is decided by ``selectors.items.items_visible_to``, the inbox's own rule. A hit is an item that is active,
not past its review date, ``discoverable``, not TLP:RED, not of the caller's agency, and not readable by the caller.
Each (identifier, item) hit is one ``Hit`` row with its own random reference, so two identifiers of one item cannot
be linked through their references; the asker sees the reference, the holder agency and its country, nothing else.

No fishing: identifiers checked per UTC day are counted in the database (``MatchCheck`` rows) per person, per API key
and per agency, under a per-agency lock held to the end of the transaction, so two concurrent checks cannot both
slip under a quota. Every check is one ``messaging.match.check`` event (counts and types, never values or tokens)
filed under the caller's country, and every hit one ``messaging.match.hit`` event on the item, filed under the
holder's country. Both sides hear of each hit through the change feed (``delivery.hits.hits_recorded``).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, Sum
from django.utils import timezone

from agencies.keyring import match_key_versions, match_tokens
from agencies.models import ApiKey
from audit.services import record, record_each
from isn.errors import ApplicationError, PermissionDenied
from messaging.core.people import Reader, reader_of
from messaging.core.sealing import DecryptionError
from messaging.core.validation import Problems
from messaging.delivery.hit_notices import hits_notify
from messaging.delivery.hits import hits_recorded
from messaging.matching.entities import CheckedEntity, entities_check
from messaging.models import (
    IDENTIFIERS_PER_CHECK_MAX,
    CheckOrigin,
    EntityType,
    HandlingCode,
    Hit,
    Item,
    ItemStatus,
    MatchCheck,
    MatchToken,
)
from messaging.selectors.items import items_visible_to

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

# The class id of the quota's advisory locks (PostgreSQL's two-key form: this, and the agency's id).
QUOTA_LOCK_CLASS = 0x15A_0015

# Why an identifier of this type matched nothing at all: it carries no matchable value.
_NEVER_MATCHES = {
    EntityType.PERSON: "A person matches on a name with a date of birth (birth_date); a name alone never matches.",
    EntityType.COMPANY: "A company matches on its registration_number with its country.",
    EntityType.LOCATION: "A location never matches; check what was found there instead.",
    EntityType.SEIZURE: "A seizure matches on its logo or lab_profile, with its substance.",
    EntityType.VESSEL: "A vessel matches on its imo, or on its registration with its flag country.",
}


@dataclass(frozen=True)
class HitView:
    """What the asker may see of a hit: who holds something, and the reference to ask them about it."""

    reference: str
    agency_id: int
    agency_code: str
    agency_name: str
    country: str


@dataclass(frozen=True)
class IdentifierResult:
    """The answer for one identifier (``position`` in the request, or of the entity in the item at posting)."""

    position: int
    entity_type: str
    related: list[uuid.UUID]
    hits: list[HitView]


@dataclass(frozen=True)
class CheckResult:
    check: MatchCheck
    results: list[IdentifierResult]


@dataclass(frozen=True)
class PostCheck:
    """A post's own check of its entities: whether it ran, why not, and what it found."""

    checked: bool
    reason: str = ""  # why not: one of POST_CHECK_SKIPPED
    results: list[IdentifierResult] = field(default_factory=list)
    quota: QuotaExceeded | None = None


NOT_DISCOVERABLE = "not_discoverable"
NO_MATCHABLE_ENTITIES = "no_matchable_entities"
QUOTA_USED = "quota_exceeded"
REPLAYED = "replayed"
POST_CHECK_SKIPPED = [
    (NOT_DISCOVERABLE, "The item is not discoverable (or TLP:RED): nothing is checked for it."),
    (NO_MATCHABLE_ENTITIES, "None of its entities can match."),
    (QUOTA_USED, "Your daily quota of identifier checks is used up: the item was posted without its check."),
    (REPLAYED, "A retried post answered again: its check ran once, when it was posted (GET /api/v1/hits/)."),
]


class QuotaExceeded(ApplicationError):
    """A check would take the person, the API key or the agency over its daily quota of identifiers."""

    status = 429
    code = "quota_exceeded"

    def __init__(self, *, scope: str, limit: int, used: int, requested: int, resets_at: datetime) -> None:
        whose = {"person": "your", "key": "this API key's", "agency": "your agency's"}[scope]
        super().__init__(
            f"This check of {requested} identifiers would go over {whose} daily quota of {limit} identifiers "
            f"({used} checked today). It resets at {resets_at.isoformat()} (00:00 UTC).",
            extra={
                "quota": {
                    "scope": scope,
                    "limit": limit,
                    "used": used,
                    "requested": requested,
                    "resets_at": resets_at.isoformat(),
                }
            },
        )
        self.scope = scope
        self.limit = limit
        self.used = used
        self.requested = requested
        self.resets_at = resets_at
        seconds = max(1, int((resets_at - timezone.now()).total_seconds()) + 1)
        self.headers = {"Retry-After": str(seconds)}


# --- input ---------------------------------------------------------------------------------------------------------


def identifiers_checked(identifiers: Sequence[Mapping[str, Any]]) -> list[CheckedEntity]:
    """Every identifier checked and normalised as an entity is, each problem named ``identifiers[i].field``; an
    identifier that can never match is refused too (it would tell the caller nothing). Raises InvalidInput."""
    problems = Problems()
    if not isinstance(identifiers, list | tuple) or not identifiers:
        problems.add("identifiers", f"A list of 1 to {IDENTIFIERS_PER_CHECK_MAX} identifiers.")
        problems.raise_if_any("Nothing was checked.")
    if len(identifiers) > IDENTIFIERS_PER_CHECK_MAX:
        problems.add(
            "identifiers",
            f"At most {IDENTIFIERS_PER_CHECK_MAX} identifiers in one check (got {len(identifiers)}); "
            "split them over several checks.",
        )
        problems.raise_if_any("Nothing was checked.")
    as_entities = Problems()
    checked = entities_check(as_entities, list(identifiers))
    for name, messages in as_entities.errors.items():
        for message in messages:
            problems.add("identifiers" + name[len("entities") :], message)
    if not problems.errors:  # then each identifier is checked, in order
        for position, entity in enumerate(checked):
            if not entity.pairs:
                problems.add(
                    f"identifiers[{position}]",
                    _NEVER_MATCHES.get(entity.entity_type, "This identifier can never match."),
                )
    problems.raise_if_any("Nothing was checked.")
    return checked


# --- quotas --------------------------------------------------------------------------------------------------------


def _day_start(now: datetime) -> datetime:
    return datetime.combine(now.astimezone(UTC).date(), time.min, tzinfo=UTC)


def _quota_lock(agency_id: int) -> None:
    if connection.vendor == "postgresql":  # SQLite (development) serialises writers anyway
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [QUOTA_LOCK_CLASS, agency_id])


def _quota_take(reader: Reader, api_key_id: int | None, requested: int, now: datetime, *, exact: bool) -> None:
    """Refuse a check that would go over a quota. An ``exact`` count (a check) holds the agency's lock to the
    transaction's end, so the check written after this is counted by the next one.

    A post's own check counts without the lock: it would hold every discoverable post of the agency behind the one
    before it (and, taken after the post's writes have the change feed's lock, in the opposite order to a check's).
    Posts running at the same moment may then take a few identifiers past a quota: each is a real item, posted,
    released and recorded, which is no way to fish; and over a quota a post is never refused, only not checked."""
    if exact:
        _quota_lock(reader.agency_id)
    start = _day_start(now)
    mine = Q(user_id=reader.pk) | Q(agency_id=reader.agency_id)
    if api_key_id is not None:
        mine |= Q(api_key_id=api_key_id)
    used = MatchCheck.objects.filter(mine, created_at__gte=start).aggregate(
        person=Sum("identifiers", filter=Q(user_id=reader.pk), default=0),
        key=Sum("identifiers", filter=Q(api_key_id=api_key_id), default=0),
        agency=Sum("identifiers", filter=Q(agency_id=reader.agency_id), default=0),
    )
    limits = {
        "person": settings.ISN_MATCH_DAILY_PER_PERSON,
        "key": settings.ISN_MATCH_DAILY_PER_KEY if api_key_id is not None else None,
        "agency": settings.ISN_MATCH_DAILY_PER_AGENCY,
    }
    for scope, limit in limits.items():
        if limit is not None and used[scope] + requested > limit:
            raise QuotaExceeded(
                scope=scope, limit=limit, used=used[scope], requested=requested, resets_at=start + timedelta(days=1)
            )


def quota_left(*, actor: AbstractBaseUser, api_key: ApiKey | int | None = None) -> dict[str, int]:
    """How many identifiers the caller may still check today, per quota (for a page to say so); no lock."""
    reader = _reader_required(actor)
    api_key_id = _api_key_id(actor, api_key)
    start = _day_start(timezone.now())
    used = MatchCheck.objects.filter(created_at__gte=start).aggregate(
        person=Sum("identifiers", filter=Q(user_id=reader.pk), default=0),
        agency=Sum("identifiers", filter=Q(agency_id=reader.agency_id), default=0),
        key=Sum("identifiers", filter=Q(api_key_id=api_key_id), default=0),
    )
    left = {
        "person": settings.ISN_MATCH_DAILY_PER_PERSON - used["person"],
        "agency": settings.ISN_MATCH_DAILY_PER_AGENCY - used["agency"],
    }
    if api_key_id is not None:
        left["key"] = settings.ISN_MATCH_DAILY_PER_KEY - used["key"]
    return {scope: max(0, count) for scope, count in left.items()}


# --- the check -----------------------------------------------------------------------------------------------------


def _reader_required(actor: AbstractBaseUser) -> Reader:
    reader = reader_of(actor)
    if reader is None:
        raise PermissionDenied("Only officers of a member agency may check identifiers.")
    return reader


def _api_key_id(actor: AbstractBaseUser, api_key: ApiKey | int | None) -> int | None:
    if isinstance(api_key, ApiKey):
        return api_key.pk
    if api_key is not None:
        return int(api_key)
    return getattr(actor, "isn_api_key_id", None)  # set by agencies.authentication for a call with a key


def _tokens(checked: Sequence[CheckedEntity]) -> dict[bytes, set[int]]:
    """Each token of each identifier under every live match key version, and the identifiers it stands for."""
    positions: dict[bytes, set[int]] = defaultdict(set)
    pairs = [(index, pair) for index, entity in enumerate(checked) for pair in entity.pairs]
    for version in match_key_versions():
        try:
            _version, tokens = match_tokens([pair for _index, pair in pairs], version=version)
        except DecryptionError:  # retired since it was listed: no token of it is left to match
            continue
        for (index, _pair), token in zip(pairs, tokens, strict=True):
            positions[token].add(index)
    return positions


def _check(
    reader: Reader,
    checked: Sequence[CheckedEntity],
    *,
    api_key_id: int | None,
    origin: str,
    positions: Sequence[int],
    exclude: Collection[uuid.UUID],
) -> CheckResult:
    now = timezone.now()
    _quota_take(reader, api_key_id, len(checked), now, exact=origin != CheckOrigin.POST)
    by_token = _tokens(checked)
    matched: dict[uuid.UUID, set[int]] = defaultdict(set)
    if by_token:
        for token, item_id in MatchToken.objects.filter(token__in=list(by_token)).values_list("token", "item_id"):
            if item_id not in exclude:
                matched[item_id] |= by_token[bytes(token)]
    readable: list[uuid.UUID] = []
    holders: list[Item] = []
    if matched:
        readable = list(
            items_visible_to(reader).filter(pk__in=list(matched), status=ItemStatus.ACTIVE).values_list("pk", flat=True)
        )
    # Not readable, so a readable item is never shown as a hit (the caller's own agency's items are readable).
    unreadable = [pk for pk in matched if pk not in set(readable)]
    if unreadable:
        holders = list(
            Item.objects.filter(
                pk__in=unreadable,
                status=ItemStatus.ACTIVE,
                discoverable=True,
                review_date__gte=now.date(),
            )
            .exclude(handling_code=HandlingCode.RED)
            .exclude(originator_agency_id=reader.agency_id)
            .select_related("originator_agency")
            .order_by("originator_country", "originator_agency__short_name", "-created_at", "pk")
        )
    found = [(index, item) for index in range(len(checked)) for item in holders if index in matched[item.pk]]
    check = MatchCheck.objects.create(
        user_id=reader.pk,
        api_key_id=api_key_id,
        agency_id=reader.agency_id,
        country=reader.country,
        origin=origin,
        identifiers=len(checked),
        hits=len(found),
        created_at=now,
    )
    hits = Hit.objects.bulk_create(
        [
            Hit(
                match_check=check,
                position=positions[index],
                entity_type=checked[index].entity_type,
                item=item,
                holder_agency=item.originator_agency,
                holder_country=item.originator_country,
                asker_user_id=reader.pk,
                asker_agency_id=reader.agency_id,
                asker_country=reader.country,
                created_at=now,
            )
            for index, item in found
        ]
    )
    results = [
        IdentifierResult(
            position=positions[index],
            entity_type=entity.entity_type,
            related=[pk for pk in readable if index in matched[pk]],
            hits=[
                HitView(
                    reference=hit.reference,
                    agency_id=hit.holder_agency_id,
                    agency_code=hit.holder_agency.short_name,
                    agency_name=hit.holder_agency.name,
                    country=hit.holder_country,
                )
                for hit in hits
                if hit.position == positions[index]
            ],
        )
        for index, entity in enumerate(checked)
    ]
    record(
        action="messaging.match.check",
        actor=reader.user,
        target=check,
        target_country=reader.country,
        details={
            "origin": origin,
            "identifiers": len(checked),
            "types": [entity.entity_type for entity in checked],
            "related": sum(len(result.related) for result in results),
            "hits": len(hits),
            "hit_countries": sorted({hit.holder_country for hit in hits}),
        },
    )
    record_each(
        action="messaging.match.hit",
        actor=reader.user,
        targets=[
            (
                hit.item,
                hit.holder_country,
                {
                    "check_id": check.pk,
                    "hit_id": hit.pk,
                    "entity_type": hit.entity_type,
                    "asker_agency_id": reader.agency_id,
                    "asker_country": reader.country,
                },
            )
            for hit in hits
        ],
    )
    hits_recorded(hits)
    hits_notify(hits)  # the holders' officers: at once for FLASH and PRIORITY items, else in the daily digest
    return CheckResult(check=check, results=results)


@transaction.atomic
def identifiers_check(
    *,
    actor: AbstractBaseUser,
    identifiers: Sequence[Mapping[str, Any]],
    api_key: ApiKey | int | None = None,
    origin: str = CheckOrigin.CHECK,
) -> CheckResult:
    """Check up to ``IDENTIFIERS_PER_CHECK_MAX`` identifiers (see the module docstring); counted against the daily
    quotas (``QuotaExceeded``), recorded, and told to the holders of every hit. Bad input writes nothing."""
    reader = _reader_required(actor)
    checked = identifiers_checked(identifiers)
    return _check(
        reader,
        checked,
        api_key_id=_api_key_id(actor, api_key),
        origin=origin,
        positions=range(len(checked)),
        exclude=(),
    )


def item_entities_check(*, actor: AbstractBaseUser, item: Item, entities: Sequence[CheckedEntity]) -> PostCheck:
    """A discoverable item's own check of its entities as it is posted (inside the post's transaction), counted
    against the poster's quotas; the item itself is left out. Over a quota the post still goes ahead, unchecked:
    refusing intelligence for want of a check would lose it. Positions are the entities' positions in the item."""
    if not item.discoverable or item.handling_code == HandlingCode.RED:
        return PostCheck(checked=False, reason=NOT_DISCOVERABLE)
    positions = [position for position, entity in enumerate(entities) if entity.pairs]
    if not positions:
        return PostCheck(checked=False, reason=NO_MATCHABLE_ENTITIES)
    reader = _reader_required(actor)
    try:
        with transaction.atomic():
            result = _check(
                reader,
                [entities[position] for position in positions],
                api_key_id=_api_key_id(actor, None),
                origin=CheckOrigin.POST,
                positions=positions,
                exclude={item.pk},
            )
    except QuotaExceeded as refused:
        return PostCheck(checked=False, reason=QUOTA_USED, quota=refused)
    return PostCheck(checked=True, results=result.results)


def related_items(actor: AbstractBaseUser, item: Item) -> list[uuid.UUID]:
    """Other active items the actor can read that share a match token with ``item`` (one they can read), newest
    first: "also in 2 items you can read". Not recorded here: the page showing them records its own read."""
    reader = reader_of(actor)
    if reader is None or not items_visible_to(reader).filter(pk=item.pk).exists():
        return []
    tokens = MatchToken.objects.filter(item_id=item.pk).values("token")
    return list(
        items_visible_to(reader)
        .filter(status=ItemStatus.ACTIVE)
        .exclude(pk=item.pk)
        .filter(Exists(MatchToken.objects.filter(item=OuterRef("pk"), token__in=tokens)))
        .values_list("pk", flat=True)
    )


# --- hits, as each side sees them ----------------------------------------------------------------------------------


@transaction.atomic
def hit_list(*, actor: AbstractBaseUser, direction: str, hits: Sequence[Hit]) -> Sequence[Hit]:
    """One page of hits (from ``selectors.hits``), recorded as ``messaging.hit.list`` naming every hit returned."""
    reader = _reader_required(actor)
    record(
        action="messaging.hit.list",
        actor=actor,
        target_type=Hit._meta.label_lower,
        target_country=reader.country,
        details={"direction": direction, "hit_ids": [hit.pk for hit in hits], "count": len(hits)},
    )
    return hits
