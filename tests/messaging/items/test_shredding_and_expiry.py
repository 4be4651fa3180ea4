"""Narrowing, withdrawal and expiry shred the removed countries' copies: not only hidden, but unopenable."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from agencies.keyring import key_version
from audit.models import AuditEvent
from isn.crypto import DecryptionError, associated_data, open_sealed, unwrap_key
from isn.errors import Conflict
from messaging.items.attachments import attachment_add
from messaging.items.changes import item_change, item_withdraw, items_expire
from messaging.items.lifecycle import item_read
from messaging.models import Item, ItemCountryGrant, ItemKey, ItemStatus, ItemUserObjectPermission
from messaging.selectors.items import items_visible_to
from messaging.tasks import expire_items

pytestmark = pytest.mark.django_db


def _open_title_with(item_id, country: str, kek_version: int, wrapped: bytes) -> str:
    """What someone holding ``country``'s key-encryption key could do with a kept copy of its wrapped data key."""
    data_key = unwrap_key(
        key_version(country, kek_version), wrapped, aad=associated_data("data-key", str(item_id), country, kek_version)
    )
    item = Item.objects.get(pk=item_id)
    return open_sealed(
        data_key, bytes(item.title_sealed), aad=associated_data("item", str(item_id), "title", item.content_version)
    ).decode()


def test_narrowing_shreds_the_removed_countrys_copy_even_for_its_key(post, vn_officer, kh_officer, th_officer):
    item = post(vn_officer, countries=["VN", "KH", "TH"]).item
    kept = ItemKey.objects.get(item=item, country_id="TH")
    kept_bytes, kept_version = bytes(kept.wrapped_key), kept.kek_version
    assert _open_title_with(item.pk, "TH", kept_version, kept_bytes) == "Meth pills shipment expected at Moc Bai"

    item_change(actor=vn_officer, item_id=item.pk, countries=["VN", "KH"])

    assert not ItemKey.objects.filter(item=item, country_id="TH").exists()
    assert not ItemCountryGrant.objects.filter(item=item, country_id="TH").exists()
    assert not items_visible_to(th_officer).filter(pk=item.pk).exists()
    # A copy of Thailand's wrapped key, kept from before, unwraps to a data key that no longer opens anything.
    with pytest.raises(DecryptionError):
        _open_title_with(item.pk, "TH", kept_version, kept_bytes)
    # Putting it back changes nothing: the query still denies, and the item is sealed under a new key.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO messaging_itemkey (item_id, country_id, kek_version, wrapped_key) VALUES (%s, 'TH', %s, %s)",
            [item.pk, kept_version, kept_bytes],
        )
    assert not items_visible_to(th_officer).filter(pk=item.pk).exists()
    # The countries left keep reading.
    assert item_read(actor=kh_officer, item_id=item.pk).title
    assert item_read(actor=vn_officer, item_id=item.pk).title
    event = AuditEvent.objects.get(action="messaging.item.release_narrow")
    assert (event.actor_label, event.target_id, event.details["removed_countries"]) == (
        "vn.officer",
        str(item.pk),
        ["TH"],
    )


def test_narrowing_removes_named_people_of_the_removed_country(post, vn_officer, kh_officer):
    item = post(vn_officer, named_users=["kh.officer"]).item
    item_change(actor=vn_officer, item_id=item.pk, countries=["VN"])
    assert not ItemUserObjectPermission.objects.filter(content_object=item).exists()
    assert not items_visible_to(kh_officer).filter(pk=item.pk).exists()


def test_narrowing_rekeys_attachments_too(post, vn_officer, kh_officer):
    item = post(vn_officer, countries=["VN", "KH", "TH"]).item
    summary = attachment_add(actor=vn_officer, item_id=item.pk, filename="n.txt", content=b"note")
    item_change(actor=vn_officer, item_id=item.pk, countries=["VN", "KH"])
    from messaging.items.attachments import attachment_download

    assert attachment_download(actor=kh_officer, item_id=item.pk, attachment_id=summary.id).content == b"note"


def test_withdrawal_shreds_every_other_country(post, vn_officer, kh_officer):
    item = post(vn_officer, countries=["VN", "KH", "LA"]).item
    kh = ItemKey.objects.get(item=item, country_id="KH")
    kh_bytes, kh_version = bytes(kh.wrapped_key), kh.kek_version
    item_withdraw(actor=vn_officer, item_id=item.pk)
    assert list(ItemKey.objects.filter(item=item).values_list("country_id", flat=True)) == ["VN"]
    with pytest.raises(DecryptionError):
        _open_title_with(item.pk, "KH", kh_version, kh_bytes)
    assert item_read(actor=vn_officer, item_id=item.pk).title == "Meth pills shipment expected at Moc Bai"


def test_withdrawn_item_cannot_be_changed(post, vn_officer):
    item = post(vn_officer).item
    item_withdraw(actor=vn_officer, item_id=item.pk)
    with pytest.raises(Conflict):
        item_change(actor=vn_officer, item_id=item.pk, title="again")


def _backdate(item, days: int) -> None:
    Item.objects.filter(pk=item.pk).update(review_date=timezone.now().date() - timedelta(days=days))


def test_expiry_withdraws_items_past_their_review_date_and_shreds_their_keys(post, vn_officer, kh_officer):
    due = post(vn_officer).item
    today_is_last_day = post(vn_officer).item
    later = post(vn_officer).item
    _backdate(due, 1)
    _backdate(today_is_last_day, 0)

    assert expire_items.apply().get() == 1  # the daily beat task

    statuses = dict(Item.objects.values_list("pk", "status"))
    assert statuses == {
        due.pk: ItemStatus.EXPIRED,
        today_is_last_day.pk: ItemStatus.ACTIVE,
        later.pk: ItemStatus.ACTIVE,
    }
    assert list(ItemKey.objects.filter(item=due).values_list("country_id", flat=True)) == ["VN"]
    assert not items_visible_to(kh_officer).filter(pk=due.pk).exists()
    assert items_visible_to(vn_officer).filter(pk=due.pk).exists()
    event = AuditEvent.objects.get(action="messaging.item.expire")
    assert (event.actor_label, event.target_id, event.target_country, event.details["shredded_countries"]) == (
        "ISN",
        str(due.pk),
        "VN",
        ["KH"],
    )
    assert items_expire() == 0  # idempotent


def test_expiry_of_an_item_that_does_not_open_still_shreds_and_records_the_failure(post, vn_officer):
    item = post(vn_officer).item
    _backdate(item, 3)
    Item.objects.filter(pk=item.pk).update(title_sealed=b"\x01" + b"\x00" * 40)
    assert items_expire() == 1
    assert list(ItemKey.objects.filter(item=item).values_list("country_id", flat=True)) == ["VN"]
    assert AuditEvent.objects.get(action="messaging.item.decrypt_failed").details["during"] == "shred"
