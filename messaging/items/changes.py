"""The originator's changes: narrowing the release, correcting the text, moving the review date; withdrawal and
expiry. A narrowing is planned first (``narrowing_plan``, pure), then applied and followed to every copy."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from agencies.models import Agency
from audit.services import record
from isn.errors import Conflict, InvalidInput
from messaging.core.outbox import outbox_add
from messaging.core.release import release_of
from messaging.core.sealing import fails_closed
from messaging.core.validation import (
    Problems,
    check_agencies,
    check_countries,
    check_discoverable,
    check_review_date,
    check_text,
)
from messaging.delivery.feed import audience_of, feed_follow
from messaging.items.rekey import countries_shred, item_reseal
from messaging.matching.entities import CheckedEntity, entities_check, tokens_drop
from messaging.models import (
    BODY_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    ChangeKind,
    Item,
    ItemAgencyGrant,
    ItemStatus,
    ItemUserObjectPermission,
    OutboxKind,
)
from messaging.selectors.items import item_get_as_originator, released_countries
from messaging.sharing.reach import Reach, countries_remove, release_follow

if TYPE_CHECKING:
    from typing import TypeAlias

    from django.contrib.auth.models import AbstractBaseUser

    Actor: TypeAlias = AbstractBaseUser


@dataclass(frozen=True)
class Grants:
    """An item's grants as an originator's change sees them."""

    countries: frozenset[str]
    agencies: dict[int, str]  # agency id -> its country: the agencies a country's release is restricted to
    named: dict[str, tuple[int, str | None]]  # username -> (user id, their country)
    # The countries whose every agency restriction an approved consent added (its named agency), not the originator.
    consent_restricted: frozenset[str] = frozenset()

    @classmethod
    def of(cls, item: Item) -> Grants:
        named = item.named_grants.values_list("user__username", "user_id", "user__membership__agency__country_id")
        grants = list(item.agency_grants.values_list("agency_id", "country_id", "consent_id"))
        by_originator = {country for _pk, country, consent in grants if consent is None}
        return cls(
            countries=frozenset(released_countries(item)),
            agencies={pk: country for pk, country, _consent in grants},
            named={name: (pk, country) for name, pk, country in named},
            consent_restricted=frozenset(country for _pk, country, _consent in grants) - by_originator,
        )


@dataclass(frozen=True)
class Narrowing:
    """What a change takes away from the release; empty when it narrows nothing."""

    removed_countries: list[str]
    removed_agencies: list[int]
    added_restrictions: dict[int, str]  # agency id -> country: a country now restricted to these agencies
    removed_named: list[int]

    def __bool__(self) -> bool:
        return bool(self.removed_countries or self.removed_agencies or self.added_restrictions or self.removed_named)


def narrowing_plan(
    problems: Problems,
    current: Grants,
    *,
    countries: set[str] | None,
    agencies: dict[int, str] | None,
    named_users: set[str] | None,
) -> Narrowing:
    """The narrowing the requested lists ask for (each, when given, the complete new list, except that a country
    ``agencies`` names no agency of keeps the restriction an approved consent gave it), with a problem noted for
    anything that would widen the release instead: a pure function of the grants and the request."""
    remaining = set(current.countries)
    if countries is not None:
        added = sorted(countries - current.countries)
        if added:
            problems.add(
                "countries",
                f"Adding {', '.join(added)} would widen the release; sharing with another country needs "
                "the originator-consent flow, not a change.",
            )
        remaining &= countries
    new_agencies = {pk: code for pk, code in current.agencies.items() if code in remaining}
    if agencies is not None:
        # Kept as it is, so never widened: the originator need not repeat what a consent added.
        unnamed = current.consent_restricted - set(agencies.values())
        agencies = {**{pk: code for pk, code in new_agencies.items() if code in unnamed}, **agencies}
        for code in sorted(remaining):
            before = {pk for pk, country in current.agencies.items() if country == code}
            after = {pk for pk, country in agencies.items() if country == code}
            # No rows for a country means every agency of it: dropping a restriction, or adding an agency to one,
            # widens.
            if before and (not after or after - before):
                problems.add(
                    "agencies", f"The change would let more agencies of {code} see the item; a change may only narrow."
                )
        new_agencies = agencies
    named = {name: pk for name, (pk, country) in current.named.items() if country in remaining}
    if named_users is not None:
        added_names = sorted(named_users - set(named))
        if added_names:
            problems.add("named_users", f"Naming {', '.join(added_names)} would widen the release.")
        named = {name: pk for name, pk in named.items() if name in named_users}
    return Narrowing(
        removed_countries=sorted(current.countries - remaining),
        removed_agencies=sorted(set(current.agencies) - set(new_agencies)),
        added_restrictions={pk: new_agencies[pk] for pk in sorted(set(new_agencies) - set(current.agencies))},
        removed_named=sorted({pk for pk, _country in current.named.values()} - set(named.values())),
    )


def _narrow(
    item: Item, plan: Narrowing, *, actor: Actor | None, rekey_later: bool, ledger_event_id: int | None = None
) -> list[str]:
    """Apply a narrowing and follow it to every forward and consent; returns the countries whose grant and key went
    (those removed, and those a cut-off consent had added). Their keys are shredded here unless ``rekey_later``.
    ``ledger_event_id``: a restore applies again the narrowing the revocation ledger holds under that event."""
    before = release_of(item)
    if plan.removed_countries:
        countries_remove(item, plan.removed_countries)
    ItemAgencyGrant.objects.filter(item=item, agency_id__in=plan.removed_agencies).delete()
    ItemAgencyGrant.objects.bulk_create(
        [ItemAgencyGrant(item=item, agency_id=pk, country_id=code) for pk, code in plan.added_restrictions.items()]
    )
    ItemUserObjectPermission.objects.filter(content_object=item, user_id__in=plan.removed_named).delete()
    reach = release_follow(item, before=before, actor=actor)
    cut_countries = sorted({*plan.removed_countries, *reach.countries})
    if not rekey_later:
        countries_shred(item, cut_countries, actor=actor)
    outbox_add(kind=OutboxKind.ITEM_REVOKE, item=item, payload={"item_id": str(item.pk)})
    again = {} if ledger_event_id is None else {"as": "release_narrow", "ledger_event_id": ledger_event_id}
    record(
        action="messaging.item.release_narrow" if ledger_event_id is None else "messaging.item.reshred",
        actor=actor,
        target=item,
        target_country=item.originator_country,
        details={
            **again,
            "removed_countries": plan.removed_countries,
            "removed_agencies": plan.removed_agencies,
            "restricted_to_agencies": sorted(plan.added_restrictions),
            "removed_named_users": plan.removed_named,
            **reach.details(),
        },
    )
    return cut_countries


def _correct(
    item: Item,
    *,
    actor: Actor,
    review_date: date | None,
    title: str | None,
    body: str | None,
    entities: list[CheckedEntity] | None,
    rekey: bool,
    discoverable: bool | None = None,
) -> bool:
    """Move the review date and correct the text or the entities (a new content version, re-keyed when countries
    were cut); returns whether anything changed."""
    changed: list[str] = []
    if review_date is not None and review_date != item.review_date:
        changed.append("review_date")
        item.review_date = review_date
    if title is not None or body is not None:
        changed.append("text")
    if entities is not None:
        changed.append("entities")
    if discoverable is not None and discoverable != item.discoverable:
        changed.append("discoverable")
        item.discoverable = discoverable
    if title is not None or body is not None or entities is not None:
        # A correction that fails to open the current text fails closed (the decorator records it).
        item_reseal(item, title=title, body=body, entities=entities, new_version=True, rekey=rekey)
    if not changed:
        return False
    item.save(
        update_fields=["review_date", "title_sealed", "body_sealed", "content_version", "discoverable", "updated_at"]
    )
    record(
        action="messaging.item.change",
        actor=actor,
        target=item,
        target_country=item.originator_country,
        details={
            "changed": changed,
            "content_version": item.content_version,
            "review_date": item.review_date.isoformat(),
            **({"discoverable": item.discoverable} if "discoverable" in changed else {}),
        },
    )
    return True


@fails_closed
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
    entities: Sequence[dict] | None = None,
    discoverable: bool | None = None,
) -> Item:
    """The originator narrows the release, moves the review date, or corrects the text or the entities (a new
    content version; ``entities``, when given, is the complete new list), or says whether the item is
    ``discoverable`` (never a TLP:RED one).

    ``countries``, ``agencies`` and ``named_users``, when given, are the complete new lists; each may only narrow
    what the item had. Widening needs the originator-consent flow, not a change. One exception: a country restricted
    to the agency an approved consent named keeps that restriction unless ``agencies`` names an agency of it.
    """
    item = item_get_as_originator(actor, item_id=item_id, for_update=True)
    if item.status != ItemStatus.ACTIVE:
        raise Conflict(f"This item is {item.status}; it can no longer be changed.")
    wanted_values = (countries, agencies, named_users, review_date, title, body, entities, discoverable)
    if all(value is None for value in wanted_values):
        raise InvalidInput(
            "Nothing to change: give countries, agencies, named_users, review_date, title, body, entities or "
            "discoverable."
        )
    problems = Problems()
    current = Grants.of(item)
    wanted = None if countries is None else set(check_countries(problems, countries, item.originator_country))
    remaining = sorted(current.countries if wanted is None else current.countries & wanted)
    requested = None
    if agencies is not None:
        requested = {agency.pk: agency.country_id for agency in check_agencies(problems, agencies, remaining)}
    names = None if named_users is None else {str(name).strip() for name in named_users}
    plan = narrowing_plan(problems, current, countries=wanted, agencies=requested, named_users=names)
    if review_date is not None:
        check_review_date(problems, review_date)
    if title is not None:
        title = check_text(problems, "title", title, limit=TITLE_MAX_LENGTH, multiline=False)
    if body is not None:
        body = check_text(problems, "body", body, limit=BODY_MAX_LENGTH, multiline=True)
    checked_entities = None if entities is None else entities_check(problems, entities)
    if discoverable is not None:
        check_discoverable(problems, discoverable, item.handling_code)
    problems.raise_if_any("The item was not changed.")

    text_changed = title is not None or body is not None or entities is not None
    before = audience_of(item)
    # With a correction, the re-seal re-keys for the countries left; without one, the narrowing shreds.
    cut_countries = _narrow(item, plan, actor=actor, rekey_later=text_changed) if plan else []
    corrected = _correct(
        item,
        actor=actor,
        review_date=review_date,
        title=title,
        body=body,
        entities=checked_entities,
        rekey=bool(cut_countries),
        discoverable=discoverable,
    )
    feed_follow(item, before, kept=ChangeKind.ITEM_CHANGED if corrected else None)
    return item


def _end(item: Item, status: str, *, actor: Actor | None) -> tuple[list[str], Reach]:
    """Withdraw or expire: every country but the originator's loses its grant and its key, at once; every forward
    and consent of the item is cut off with them."""
    before = audience_of(item)
    others = released_countries(item) - {item.originator_country}
    shredded = countries_shred(item, others, actor=actor)
    tokens_drop(item)  # it stops matching at once
    # Named people and agency restrictions in the originator's own country go too: only the originator keeps it.
    ItemUserObjectPermission.objects.filter(content_object=item).delete()
    ItemAgencyGrant.objects.filter(item=item).delete()
    item.status = status
    item.save(update_fields=["status", "updated_at"])
    reach = release_follow(item, before=None, actor=actor)
    told = ChangeKind.ITEM_WITHDRAWN if status == ItemStatus.WITHDRAWN else ChangeKind.ITEM_EXPIRED
    feed_follow(item, before, lost=told, kept=told)
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


# --- after a restore: the revocation ledger applied again (audit.ledger) ----------------------------------------------
@transaction.atomic
def item_end_again(*, item_id: object, status: str, ledger_event_id: int) -> bool:
    """A restore withdraws or expires again an item the revocation ledger says ended after the backup; recorded
    as ``messaging.item.reshred``. False when there is nothing to do (no such item, or it is no longer active)."""
    item = Item.objects.select_for_update().filter(pk=item_id).first()
    if item is None or item.status != ItemStatus.ACTIVE:
        return False
    shredded, reach = _end(item, status, actor=None)
    record(
        action="messaging.item.reshred",
        actor=None,
        target=item,
        target_country=item.originator_country,
        details={"as": status, "ledger_event_id": ledger_event_id, "shredded_countries": shredded, **reach.details()},
    )
    return True


@transaction.atomic
def item_narrowing_again(
    *,
    item_id: object,
    ledger_event_id: int,
    removed_countries: Sequence[str] = (),
    removed_agencies: Sequence[int] = (),
    restricted_to_agencies: Sequence[int] = (),
    removed_named_users: Sequence[int] = (),
) -> bool:
    """A restore applies again a narrowing the revocation ledger holds: whatever of it the restored grants still
    allow is taken away, shredded and followed to every copy, as the originator's change did. False when the
    restored item already lacks all of it."""
    item = Item.objects.select_for_update().filter(pk=item_id).first()
    if item is None or item.status != ItemStatus.ACTIVE:
        return False
    current = Grants.of(item)
    countries_cut = (current.countries & set(removed_countries)) - {item.originator_country}
    remaining = current.countries - countries_cut
    restrictions = dict(
        Agency.objects.filter(pk__in=restricted_to_agencies, country_id__in=remaining).values_list("pk", "country_id")
    )
    plan = Narrowing(
        removed_countries=sorted(countries_cut),
        removed_agencies=sorted(set(current.agencies) & {int(pk) for pk in removed_agencies}),
        added_restrictions={pk: code for pk, code in sorted(restrictions.items()) if pk not in current.agencies},
        removed_named=sorted({pk for pk, _country in current.named.values()} & {int(pk) for pk in removed_named_users}),
    )
    if not plan:
        return False
    before = audience_of(item)
    _narrow(item, plan, actor=None, rekey_later=False, ledger_event_id=ledger_event_id)
    feed_follow(item, before)
    return True
