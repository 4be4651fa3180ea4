"""After a restore, the revocation ledger's shreds are applied again to the restored rows: once, and recorded."""

from __future__ import annotations

import pytest

from agencies.models import CountryKey, CountryKeyStatus
from audit.models import AuditEvent
from isn.errors import NotFound
from messaging.items.lifecycle import item_read
from messaging.items.revocations import ledger_line_apply
from messaging.models import Item, ItemKey, ItemStatus

pytestmark = pytest.mark.django_db


def _line(action: str, target_id: str, details: dict, target_country: str = "VN") -> dict:
    return {
        "seq": 1,
        "event_id": 999_999,
        "action": action,
        "target_id": target_id,
        "target_country": target_country,
        "details": details,
    }


def test_a_withdrawal_is_applied_again_once(post, vn_officer, kh_officer):
    item = post(vn_officer).item
    line = _line("messaging.item.withdraw", str(item.pk), {"shredded_countries": ["KH"]})
    assert ledger_line_apply(line) is True
    assert ledger_line_apply(line) is False
    assert Item.objects.get(pk=item.pk).status == ItemStatus.WITHDRAWN
    assert list(ItemKey.objects.filter(item=item).values_list("country_id", flat=True)) == ["VN"]
    with pytest.raises(NotFound):
        item_read(actor=kh_officer, item_id=item.pk)
    event = AuditEvent.objects.get(action="messaging.item.reshred")
    assert event.details["as"] == "withdrawn"
    assert event.details["ledger_event_id"] == 999_999


def test_a_narrowing_is_applied_again_and_the_rest_still_reads(post, vn_officer, kh_officer, th_officer):
    item = post(vn_officer, countries=["VN", "KH", "TH"]).item
    line = _line("messaging.item.release_narrow", str(item.pk), {"removed_countries": ["TH"]})
    assert ledger_line_apply(line) is True
    assert ledger_line_apply(line) is False
    assert sorted(ItemKey.objects.filter(item=item).values_list("country_id", flat=True)) == ["KH", "VN"]
    assert item_read(actor=kh_officer, item_id=item.pk).title == "Meth pills shipment expected at Moc Bai"
    with pytest.raises(NotFound):
        item_read(actor=th_officer, item_id=item.pk)
    assert AuditEvent.objects.get(action="messaging.item.reshred").details["removed_countries"] == ["TH"]


def test_a_narrowing_of_an_item_the_backup_never_had_does_nothing(vn_officer):
    line = _line("messaging.item.release_narrow", "6f1c1c1e-1111-4111-8111-111111111111", {"removed_countries": ["TH"]})
    assert ledger_line_apply(line) is False


def test_a_key_retirement_is_applied_again_without_losing_an_item(post, vn_officer, kh_officer):
    item = post(vn_officer).item
    line = _line("agencies.country_key.retire", "1", {"version": 1}, target_country="KH")
    assert ledger_line_apply(line) is True
    assert ledger_line_apply(line) is False
    assert CountryKey.objects.get(country_id="KH", version=1).status == CountryKeyStatus.RETIRED
    assert ItemKey.objects.get(item=item, country_id="KH").kek_version == 2
    assert item_read(actor=kh_officer, item_id=item.pk).title
