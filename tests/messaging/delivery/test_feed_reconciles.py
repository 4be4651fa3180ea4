"""The change feed's promise: a system that reads only the feed, and fetches each item a change names, ends with
exactly the items its caller may read, whatever happened in between.

A seeded random history of posts (agency restrictions, named people), narrowings, corrections, withdrawals,
expiries, forwards (to agencies and to offices only), consent requests granted and declined, and acknowledgements,
with six callers: two in one agency who may read different things (one of them named where the agency is not), the
originator's own colleague, an API key's account, and others. Every few steps each caller's system syncs and must
agree with ``items_visible_to`` exactly. Transactional: the feed reads only what committed transactions wrote.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from agencies.api_keys import api_key_issue
from isn.errors import ApplicationError
from messaging.delivery.feed import changes_page
from messaging.items.acknowledgement import item_acknowledge
from messaging.items.changes import item_change, item_withdraw, items_expire
from messaging.models import ChangeKind, Item, ItemStatus
from messaging.selectors.items import item_get, items_visible_to
from messaging.sharing.consents import consent_decline, consent_grant, consent_request_create
from messaging.sharing.forwards import item_forward
from tests.messaging.network import build_sharing, post_item, run_outbox

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

POSTERS = ["vn.officer", "th.police", "kh.customs", "kh.officer"]
DECIDERS = {"VN": "vn.supervisor", "KH": "kh.supervisor"}
NAMEABLE = ["kh.officer", "kh.desk", "th.officer", "la.officer", "kh.police"]
COUNTRIES = ["VN", "KH", "TH", "LA"]


class System:
    """An agency system that knows only what the feed told it and what reading the named items answered."""

    def __init__(self, caller) -> None:
        self.caller = caller
        self.cursor: str | None = None
        self.items: set = set()
        self.kinds: set[str] = set()

    def sync(self) -> None:
        while True:
            page = changes_page(actor=self.caller, cursor=self.cursor, limit=7)
            for change in page.changes:
                self.kinds.add(change.kind)
                if change.item_id is None:
                    continue
                try:
                    item_get(self.caller, item_id=change.item_id)
                except ApplicationError:
                    self.items.discard(change.item_id)
                else:
                    self.items.add(change.item_id)
            self.cursor = page.cursor
            if not page.more:
                return


class History:
    def __init__(self, sharing, rng: random.Random) -> None:
        self.s = sharing
        self.rng = rng
        self.done: dict[str, int] = {}
        self.consents: list = []

    def user(self, name: str):
        return self.s.user(name)

    def active(self):
        return list(Item.objects.filter(status=ItemStatus.ACTIVE).order_by("created_at", "pk"))

    def step(self) -> None:
        op = self.rng.choice(
            ["post"] * 5
            + ["narrow"] * 3
            + ["forward"] * 3
            + ["consent"] * 2
            + ["decide"] * 2
            + ["correct", "withdraw", "expire", "acknowledge", "route"]
        )
        try:
            getattr(self, op)()
        except ApplicationError:
            op += " (refused)"
        self.done[op] = self.done.get(op, 0) + 1

    def post(self) -> None:
        poster = self.rng.choice(POSTERS)
        own = self.user(poster).membership.agency
        countries = sorted({own.country_id, *self.rng.sample(COUNTRIES, self.rng.randint(0, 3))})
        agencies = []
        if "KH" in countries and self.rng.random() < 0.4:
            agencies = self.rng.sample([self.s.net.kh.pk, self.s.kh_police.pk, self.s.net.kh_customs.pk], 1)
        named = [
            name
            for name in NAMEABLE
            if self.rng.random() < 0.3 and self.user(name).membership.agency.country_id in countries
        ]
        post_item(
            self.user(poster),
            countries=countries,
            agencies=agencies,
            named_users=named,
            handling_code=self.rng.choice(["amber", "green", "amber"]),
        )

    def _originator(self, item):
        return next(
            self.user(name) for name in POSTERS if self.user(name).membership.agency_id == item.originator_agency_id
        )

    def narrow(self) -> None:
        items = self.active()
        if not items:
            return
        item = self.rng.choice(items)
        grants = sorted(item.country_grants.values_list("country_id", flat=True))
        keep = [c for c in grants if c == item.originator_country or self.rng.random() < 0.6]
        named = list(item.named_grants.values_list("user__username", flat=True))
        change = self.rng.choice(["countries", "named", "agencies"])
        if change == "countries":
            item_change(actor=self._originator(item), item_id=item.pk, countries=keep)
        elif change == "named":
            item_change(
                actor=self._originator(item), item_id=item.pk, named_users=named[: self.rng.randint(0, len(named))]
            )
        elif "KH" in grants:
            restricted = list(item.agency_grants.filter(country_id="KH").values_list("agency_id", flat=True))
            others = [a for c, a in item.agency_grants.values_list("country_id", "agency_id") if c != "KH"]
            narrowed = restricted[:1] if restricted else [self.s.net.kh.pk]
            item_change(actor=self._originator(item), item_id=item.pk, agencies=narrowed + others)

    def correct(self) -> None:
        items = self.active()
        if items:
            item = self.rng.choice(items)
            item_change(actor=self._originator(item), item_id=item.pk, title=f"Corrected {self.rng.random()}")

    def withdraw(self) -> None:
        items = self.active()
        if items:
            item = self.rng.choice(items)
            item_withdraw(actor=self._originator(item), item_id=item.pk)

    def expire(self) -> None:
        items = self.active()
        if items:
            item = self.rng.choice(items)
            Item.objects.filter(pk=item.pk).update(review_date=timezone.now().date() - timedelta(days=1))
            items_expire(actor=None)

    def forward(self) -> None:
        items = self.active()
        if not items:
            return
        item = self.rng.choice(items)
        holder = self.rng.choice(["kh.officer", "kh.desk", "kh.police", "kh.military", "th.officer", "th.police"])
        actor = self.user(holder)
        own = actor.membership.agency
        if self.rng.random() < 0.4:  # to an office only, inside the forwarder's own agency
            office = own.offices.exclude(pk=actor.membership.office_id).first() or own.offices.first()
            item_forward(actor=actor, item_id=item.pk, to_agency=own.pk, to_office=office and office.pk, reason="Yours")
        else:
            others = [self.s.net.kh, self.s.kh_police, self.s.kh_military, self.s.net.th, self.s.th_police]
            target = self.rng.choice([a for a in others if a.country_id == own.country_id and a.pk != own.pk])
            item_forward(actor=actor, item_id=item.pk, to_agency=target.pk, reason="For your action")

    def consent(self) -> None:
        items = [i for i in self.active() if i.originator_country in DECIDERS]
        if not items:
            return
        item = self.rng.choice(items)
        asker = self.rng.choice(["kh.officer", "th.officer", "vn.officer", "la.officer", "kh.police"])
        country = self.rng.choice(COUNTRIES)
        target_agency = self.s.kh_police.pk if country == "KH" and self.rng.random() < 0.5 else None
        consent = consent_request_create(
            actor=self.user(asker),
            item_id=item.pk,
            target_country=country,
            target_agency=target_agency,
            justification="The network crosses into our province.",
        ).consent
        self.consents.append(consent)

    def decide(self) -> None:
        if not self.consents:
            return
        consent = self.consents.pop(self.rng.randrange(len(self.consents)))
        decider = self.user(DECIDERS[consent.item.originator_country])
        if self.rng.random() < 0.7:
            consent_grant(actor=decider, consent_id=consent.pk)
        else:
            consent_decline(actor=decider, consent_id=consent.pk, reason="Not yet.")

    def acknowledge(self) -> None:
        items = self.active()
        if items:
            item = self.rng.choice(items)
            item_acknowledge(
                actor=self.user(self.rng.choice(["kh.officer", "th.officer", "la.officer"])), item_id=item.pk
            )

    def route(self) -> None:
        run_outbox()


def _api_key_account(sharing):
    issued = api_key_issue(
        actor=sharing.user("kh.admin"),
        agency=sharing.net.kh,
        name="ADD case system",
        scopes=["read"],
        expires_at=timezone.now() + timedelta(days=30),
    )
    return issued.key.user


@pytest.mark.parametrize("seed", [7, 2026])
def test_a_system_reading_only_the_feed_ends_with_exactly_what_its_caller_may_read(seed):
    sharing = build_sharing()
    key_account = _api_key_account(sharing)
    callers = {name: sharing.user(name) for name in ["kh.officer", "kh.desk", "vn.focal", "th.officer", "la.officer"]}
    callers["ADD system"] = key_account
    systems = {name: System(user) for name, user in callers.items()}
    history = History(sharing, random.Random(seed))
    colleagues_differed = False

    for step in range(1, 221):
        history.step()
        if step % 11 == 0 or step == 220:
            for name, system in systems.items():
                system.sync()
                truth = set(items_visible_to(system.caller).values_list("pk", flat=True))
                assert system.items == truth, f"{name} after step {step} of seed {seed}: {history.done}"
            colleagues_differed |= systems["kh.officer"].items != systems["kh.desk"].items

    # The history was rich enough to mean something: many kinds of act happened and were heard of.
    assert sum(history.done.values()) == 220
    assert {"post", "narrow", "forward", "withdraw", "decide"} <= set(history.done), history.done
    heard = set().union(*(system.kinds for system in systems.values()))
    assert {ChangeKind.ITEM_VISIBLE, ChangeKind.ITEM_NARROWED, ChangeKind.ITEM_WITHDRAWN} <= heard
    # Two callers of one agency read different things at some point (one named where the agency was not).
    assert colleagues_differed
