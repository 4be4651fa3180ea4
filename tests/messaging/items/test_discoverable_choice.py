"""The originator's discoverable choice as ``item_create`` stores it: kept on the item, never for TLP:RED."""

from __future__ import annotations

import pytest

from isn.errors import InvalidInput
from messaging.models import Item

pytestmark = pytest.mark.django_db


def test_the_choice_is_stored_on_the_item(post, vn_officer):
    assert post(vn_officer, discoverable=True).item.discoverable is True
    assert post(vn_officer, discoverable=False).item.discoverable is False
    assert list(Item.objects.values_list("discoverable", flat=True).order_by("created_at")) == [True, False]


def test_a_tlp_red_item_is_never_discoverable(post, vn_officer):
    with pytest.raises(InvalidInput) as refused:
        post(vn_officer, handling_code="red", discoverable=True)
    assert "discoverable" in refused.value.extra["fields"]
    assert not Item.objects.exists()
    assert post(vn_officer, handling_code="red", discoverable=False).item.discoverable is False
