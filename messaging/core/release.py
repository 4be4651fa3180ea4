"""An item's release at one moment (its country, agency and named-person grants, and which countries a consent
added), read in one statement."""

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
    """An item's grants at one moment: the same rule as ``selectors.items_visible_to``, for many agencies at once."""

    active: bool
    countries: frozenset[str]
    restricted: dict[str, frozenset[int]] = field(default_factory=dict)
    named: frozenset[int] = frozenset()
    # The countries whose grant an approved consent request added (the third-party rule), not the originator.
    consented: frozenset[str] = frozenset()

    def agency_may_see(self, agency_id: int, country: str) -> bool:
        if not self.active or country not in self.countries:
            return False
        allowed = self.restricted.get(country)
        return allowed is None or agency_id in allowed

    def person_may_see(self, user_id: int, agency_id: int, country: str) -> bool:
        return self.agency_may_see(agency_id, country) or (
            self.active and country in self.countries and user_id in self.named
        )


# Table names are Django's defaults for these models; the routing tests run every statement below.
# The grants of one item, as (kind, country, agency or person): one statement for the three kinds (portable SQL).
_RELEASE_SQL = """
    SELECT CASE WHEN consent_id IS NULL THEN 'country' ELSE 'consented' END, country_id, NULL
    FROM messaging_itemcountrygrant WHERE item_id = %s
    UNION ALL
    SELECT 'agency', country_id, agency_id FROM messaging_itemagencygrant WHERE item_id = %s
    UNION ALL
    SELECT 'person', NULL, grant_.user_id
    FROM messaging_itemuserobjectpermission grant_
    JOIN auth_permission permission ON permission.id = grant_.permission_id
    WHERE grant_.content_object_id = %s AND permission.codename = 'view_item'
"""


def release_of(item: Item) -> Release:
    item_id = Item._meta.pk.get_db_prep_value(item.pk, connection)  # a uuid, or its text on SQLite
    countries: set[str] = set()
    restricted: dict[str, set[int]] = defaultdict(set)
    named: set[int] = set()
    consented: set[str] = set()
    for kind, country, pk in fetch_all(_RELEASE_SQL, [item_id, item_id, item_id]):
        if kind in ("country", "consented"):
            countries.add(country)
            if kind == "consented":
                consented.add(country)
        elif kind == "agency":
            restricted[country].add(pk)
        else:
            named.add(pk)
    return Release(
        active=item.status == ItemStatus.ACTIVE,
        countries=frozenset(countries),
        restricted={country: frozenset(ids) for country, ids in restricted.items()},
        named=frozenset(named),
        consented=frozenset(consented),
    )
