"""Fixtures for items: more personas (a second agency in the originator's and the counterpart's country) and a
helper that posts an item through the service with sensible defaults."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from agencies.keyring import forget_cached_keys
from agencies.models import AgencyKind, Role
from messaging.items.lifecycle import ItemContent, item_create
from tests.factories import AgencyFactory, MembershipFactory, UserFactory, country


@pytest.fixture(autouse=True)
def _no_cached_keys():
    # Country keys are cached per process; each test starts from the database it made.
    forget_cached_keys()
    yield
    forget_cached_keys()


def _officer(username: str, agency: Any, role: str = Role.OFFICER) -> Any:
    return MembershipFactory(user=UserFactory(username=username), agency=agency, role=role).user


@pytest.fixture
def vn_police_officer(db):
    """An officer of a second Viet Nam agency: the originator's country, not the originator's agency."""
    agency = AgencyFactory(country=country("VN"), name="Viet Nam Police C04", short_name="C04")
    return _officer("vn.police", agency)


@pytest.fixture
def kh_police_officer(db):
    """An officer of a second Cambodian agency."""
    agency = AgencyFactory(country=country("KH"), name="Cambodian Customs", short_name="GDCE", kind=AgencyKind.CUSTOMS)
    return _officer("kh.customs", agency)


@pytest.fixture
def la_officer(db):
    agency = AgencyFactory(country=country("LA"), name="Lao Counter-Narcotics", short_name="LCDC")
    return _officer("la.officer", agency)


def item_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "title": "Meth pills shipment expected at Moc Bai",
        "body": "Two lorries, plates 70C-123.45 and 70C-678.90, crossing Thursday night.",
        "language": "en",
        "category": "meth_pills",
        "priority": "priority",
        "source_reliability": "B",
        "info_credibility": 2,
        "handling_code": "amber",
        "border_crossing": "Moc Bai - Bavet",
        "review_date": timezone.now().date() + timedelta(days=90),
        "countries": ["VN", "KH"],
        "discoverable": False,
    }
    fields.update(overrides)
    return fields


@pytest.fixture
def post():
    """``post(actor, **overrides)``: an item posted through ``item_create``."""

    def _post(actor: Any, **overrides: Any) -> ItemContent:
        return item_create(actor=actor, **item_fields(**overrides))

    return _post


def api_payload(**overrides: Any) -> dict[str, Any]:
    payload = item_fields(**overrides)
    if hasattr(payload["review_date"], "isoformat"):
        payload["review_date"] = payload["review_date"].isoformat()
    return payload
