"""Who may read an item: its release at one moment (country, agency and named-person grants, and the live forwards),
read in one statement, and the one rule every channel asks of it.

``selectors.items.items_visible_to`` applies the same rule in SQL, for one viewer over every item; ``Release``
applies it in Python, for one item over every agency, office and person. Routing, deliveries, notifications, FLASH
escalation, the change feed and webhooks all ask ``Release`` (``readers_among`` for a list of people), so nobody is
told of an item they could not open; ``tests/messaging/test_who_may_read.py`` walks each channel and holds the two
forms to the same answers.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection

from messaging.core.sql import fetch_all
from messaging.models import (
    Item,
    ItemStatus,
)


@dataclass(frozen=True)
class Release:
    """An item's grants and live forwards at one moment.

    A member may read the item when their agency originated it (whatever its status), or, while it is active and
    their country has a grant: the country is not restricted to some agencies or their agency is one of them; their
    agency holds a live forward to it as a whole, or to their own office; or they are named on it.
    """

    active: bool
    countries: frozenset[str]
    restricted: dict[str, frozenset[int]] = field(default_factory=dict)
    named: frozenset[int] = frozenset()
    # The countries whose grant an approved consent request added (the third-party rule), not the originator.
    consented: frozenset[str] = frozenset()
    # Live forwards as (country, receiving agency, receiving office or None for the whole agency).
    forwards: frozenset[tuple[str, int, int | None]] = frozenset()
    originator_agency_id: int | None = None

    def agency_may_see(self, agency_id: int, country: str) -> bool:
        """Whether the release itself (not a forward) admits the agency as a whole."""
        if not self.active or country not in self.countries:
            return False
        allowed = self.restricted.get(country)
        return allowed is None or agency_id in allowed

    def agency_holds(self, agency_id: int, country: str) -> bool:
        """Whether every member of the agency may read it: its own item, the release, or a forward to it as a whole."""
        return (
            agency_id == self.originator_agency_id
            or self.agency_may_see(agency_id, country)
            or (self.active and country in self.countries and (country, agency_id, None) in self.forwards)
        )

    def office_holds(self, agency_id: int, office_id: int | None, country: str) -> bool:
        """Whether the members of the office (None: members without an office) may read it through their agency or
        a forward, never through a person named on it."""
        return self.agency_holds(agency_id, country) or (
            office_id is not None
            and self.active
            and country in self.countries
            and (country, agency_id, office_id) in self.forwards
        )

    def person_may_see(self, user_id: int, agency_id: int, country: str) -> bool:
        """The release's own grants for a person: their agency admitted, or they are named."""
        return self.agency_may_see(agency_id, country) or (
            self.active and country in self.countries and user_id in self.named
        )

    def member_may_read(self, *, user_id: int, agency_id: int, office_id: int | None, country: str) -> bool:
        """The rule, for one member who may read content at all (``messaging.core.people.content_people``)."""
        return self.office_holds(agency_id, office_id, country) or (
            self.active and country in self.countries and user_id in self.named
        )


# Table names are Django's defaults for these models; the routing tests run every statement below.
# The grants (a consent's country grants told apart) and live forwards of one item, as (kind, country, agency or
# person, office): one statement for them all (portable SQL).
_RELEASE_SQL = """
    SELECT CASE WHEN consent_id IS NULL THEN 'country' ELSE 'consented' END, country_id, NULL, CAST(NULL AS bigint)
    FROM messaging_itemcountrygrant WHERE item_id = %s
    UNION ALL
    SELECT 'agency', country_id, agency_id, NULL FROM messaging_itemagencygrant WHERE item_id = %s
    UNION ALL
    SELECT 'person', NULL, grant_.user_id, NULL
    FROM messaging_itemuserobjectpermission grant_
    JOIN auth_permission permission ON permission.id = grant_.permission_id
    WHERE grant_.content_object_id = %s AND permission.codename = 'view_item'
    UNION ALL
    SELECT 'forward', country_id, to_agency_id, to_office_id FROM messaging_forward
    WHERE item_id = %s AND revoked_at IS NULL
"""


def release_of(item: Item) -> Release:
    item_id = Item._meta.pk.get_db_prep_value(item.pk, connection)  # a uuid, or its text on SQLite
    countries: set[str] = set()
    restricted: dict[str, set[int]] = defaultdict(set)
    named: set[int] = set()
    forwards: set[tuple[str, int, int | None]] = set()
    consented: set[str] = set()
    for kind, country, pk, office_id in fetch_all(_RELEASE_SQL, [item_id] * 4):
        if kind in ("country", "consented"):
            countries.add(country)
            if kind == "consented":
                consented.add(country)
        elif kind == "agency":
            restricted[country].add(pk)
        elif kind == "person":
            named.add(pk)
        else:
            forwards.add((country, pk, office_id))
    return Release(
        active=item.status == ItemStatus.ACTIVE,
        countries=frozenset(countries),
        restricted={country: frozenset(ids) for country, ids in restricted.items()},
        named=frozenset(named),
        consented=frozenset(consented),
        forwards=frozenset(forwards),
        originator_agency_id=item.originator_agency_id,
    )
