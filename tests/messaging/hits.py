"""Hits for tests: a check and its hits written as the discovery service writes them (``messaging.matching``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from agencies.selectors import membership_for
from messaging.models import CheckOrigin, Hit, Item, MatchCheck


def make_hits(asker: Any, items: list[Item], *, entity_type: str = "phone", at: datetime | None = None) -> list[Hit]:
    """One check by ``asker`` whose identifiers hit ``items`` (one identifier each), made ``at`` (default now)."""
    at = at or timezone.now()
    agency = membership_for(asker).agency
    check = MatchCheck.objects.create(
        user=asker,
        agency=agency,
        country=agency.country_id,
        origin=CheckOrigin.CHECK,
        identifiers=len(items),
        hits=len(items),
        created_at=at,
    )
    return [
        Hit.objects.create(
            match_check=check,
            position=position,
            entity_type=entity_type,
            item=item,
            holder_agency_id=item.originator_agency_id,
            holder_country=item.originator_country,
            asker_user=asker,
            asker_agency=agency,
            asker_country=agency.country_id,
            created_at=at,
        )
        for position, item in enumerate(items)
    ]


def make_hit(asker: Any, item: Item, **kwargs: Any) -> Hit:
    return make_hits(asker, [item], **kwargs)[0]
