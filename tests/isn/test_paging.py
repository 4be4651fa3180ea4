"""Keyset pages: walking every page visits each row exactly once, newest first, even when many rows share one
instant; a cursor edited by hand starts again from the top rather than failing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agencies.models import Agency
from isn.paging import keyset_page
from tests.factories import AgencyFactory


def _walk(rows, size, **options):
    seen, cursor = [], None
    while True:
        page, cursor = keyset_page(rows, cursor, size, **options)
        seen += [row.pk for row in page]
        if cursor is None:
            return seen


@pytest.fixture
def agencies(db):
    made = [AgencyFactory(short_name=f"A{number}") for number in range(11)]
    instant = timezone.now() - timedelta(days=1)
    # Seven share one instant to the microsecond, the rest are spread out: the cursor must tell them apart by id.
    for number, agency in enumerate(made):
        moment = instant if number < 7 else instant + timedelta(seconds=number)
        Agency.objects.filter(pk=agency.pk).update(created_at=moment)
    return Agency.objects.filter(pk__in=[agency.pk for agency in made])


@pytest.mark.parametrize("size", [1, 2, 3, 10, 11, 50])
def test_every_row_once_newest_first(agencies, size):
    expected = [row.pk for row in agencies.order_by("-created_at", "-pk")]
    assert _walk(agencies, size) == expected


@pytest.mark.parametrize("size", [1, 4, 11])
def test_by_id_alone(agencies, size):
    assert _walk(agencies, size, by_time=False) == sorted((row.pk for row in agencies), reverse=True)


@pytest.mark.parametrize("cursor", ["nonsense", "12_abc", "99999999999999999999999_1", "_", "1_"])
def test_a_cursor_not_ours_starts_from_the_top(agencies, cursor):
    page, _next = keyset_page(agencies, cursor, 3)
    assert [row.pk for row in page] == [row.pk for row in agencies.order_by("-created_at", "-pk")[:3]]
