"""Ciphertexts and wrapped keys are bound to their place: moved to another row, field or country they do not open,
and the refusal returns no bytes and leaves an error event."""

from __future__ import annotations

import pytest
from django.db import connection

from agencies.keyring import forget_cached_keys, key_version
from audit.models import AuditEvent
from isn.crypto import DecryptionError, associated_data, unwrap_key
from messaging.core.sealing import ContentUnavailable
from messaging.items.lifecycle import item_read
from messaging.models import Item, ItemKey

pytestmark = pytest.mark.django_db


def _sql(statement: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def _refused(api, user, item_id, *, reason: str) -> None:
    api.force_authenticate(user)
    response = api.get(f"/api/v1/items/{item_id}/")
    assert response.status_code == 409
    assert response.json()["code"] == "content_unavailable"
    assert b"lorries" not in response.content
    assert b"Moc Bai" not in response.content
    event = AuditEvent.objects.filter(action="messaging.item.decrypt_failed").latest("id")
    assert (event.outcome, event.target_id, event.actor_user_id) == ("error", str(item_id), user.pk)
    assert event.details["reason"] == reason
    # The read did not happen, so it is not recorded as one.
    assert not AuditEvent.objects.filter(action="messaging.item.read", target_id=str(item_id)).exists()


def test_title_and_body_swapped_between_fields_do_not_open(api, post, vn_officer, kh_officer):
    item = post(vn_officer).item
    _sql("UPDATE messaging_item SET title_sealed = body_sealed, body_sealed = title_sealed WHERE id = %s", [item.pk])
    _refused(api, kh_officer, item.pk, reason="title_does_not_open")


def test_ciphertext_moved_to_another_row_does_not_open(api, post, vn_officer, kh_officer):
    first = post(vn_officer, title="First").item
    second = post(vn_officer, title="Second").item
    # Even with the other row's data key moved along with it, the associated data names the item id.
    _sql(
        "UPDATE messaging_item SET title_sealed = (SELECT title_sealed FROM messaging_item WHERE id = %s) "
        "WHERE id = %s",
        [first.pk, second.pk],
    )
    _sql(
        "UPDATE messaging_itemkey SET wrapped_key = (SELECT wrapped_key FROM messaging_itemkey "
        "WHERE item_id = %s AND country_id = 'KH') WHERE item_id = %s AND country_id = 'KH'",
        [first.pk, second.pk],
    )
    _refused(api, kh_officer, second.pk, reason="key_does_not_open")


def test_wrapped_key_moved_to_another_country_does_not_open(api, post, vn_officer, kh_officer):
    item = post(vn_officer, countries=["VN", "KH", "TH"]).item
    _sql(
        "UPDATE messaging_itemkey SET wrapped_key = (SELECT wrapped_key FROM messaging_itemkey "
        "WHERE item_id = %s AND country_id = 'TH'), kek_version = (SELECT kek_version FROM messaging_itemkey "
        "WHERE item_id = %s AND country_id = 'TH') WHERE item_id = %s AND country_id = 'KH'",
        [item.pk, item.pk, item.pk],
    )
    _refused(api, kh_officer, item.pk, reason="key_does_not_open")


def test_a_country_opens_with_its_own_key_only(post, vn_officer):
    item = post(vn_officer, countries=["VN", "KH", "TH"]).item
    th_wrapped = ItemKey.objects.get(item=item, country_id="TH")
    aad_as_kh = associated_data("data-key", str(item.pk), "KH", th_wrapped.kek_version)
    with pytest.raises(DecryptionError):
        unwrap_key(key_version("KH", th_wrapped.kek_version), bytes(th_wrapped.wrapped_key), aad=aad_as_kh)


def test_flipped_bit_does_not_open(api, post, vn_officer, kh_officer):
    item = post(vn_officer).item
    sealed = bytearray(Item.objects.get(pk=item.pk).body_sealed)
    sealed[-1] ^= 0x01
    _sql("UPDATE messaging_item SET body_sealed = %s WHERE id = %s", [bytes(sealed), item.pk])
    _refused(api, kh_officer, item.pk, reason="body_does_not_open")


def test_planted_plaintext_does_not_open(api, post, vn_officer, kh_officer):
    item = post(vn_officer).item
    _sql("UPDATE messaging_item SET title_sealed = %s WHERE id = %s", [b"Planted title in the clear", item.pk])
    _refused(api, kh_officer, item.pk, reason="title_does_not_open")


def test_missing_key_for_a_granted_country_fails_closed(api, post, vn_officer, kh_officer):
    item = post(vn_officer).item
    _sql("DELETE FROM messaging_itemkey WHERE item_id = %s AND country_id = 'KH'", [item.pk])
    _refused(api, kh_officer, item.pk, reason="no_key")
    # The originator's own copy is untouched.
    assert item_read(actor=vn_officer, item_id=item.pk).title


def test_wrong_master_key_fails_closed(post, vn_officer, kh_officer, settings):
    item = post(vn_officer).item
    forget_cached_keys()
    settings.ISN_MASTER_KEY = b"\x01" * 32
    with pytest.raises(ContentUnavailable):
        item_read(actor=kh_officer, item_id=item.pk)
    assert AuditEvent.objects.filter(action="messaging.item.decrypt_failed", outcome="error").count() == 1


def test_inbox_shows_no_title_for_an_item_that_does_not_open_and_records_it(api, post, vn_officer, kh_officer):
    good = post(vn_officer, title="Good").item
    bad = post(vn_officer, title="Bad").item
    _sql("UPDATE messaging_item SET title_sealed = %s WHERE id = %s", [b"\x01" + b"\x00" * 40, bad.pk])
    api.force_authenticate(kh_officer)
    rows = {row["id"]: row["title"] for row in api.get("/api/v1/items/").json()["results"]}
    assert rows == {str(good.pk): "Good", str(bad.pk): None}
    event = AuditEvent.objects.get(action="messaging.item.decrypt_failed")
    assert (event.target_id, event.details["during"]) == (str(bad.pk), "item_list")


def test_old_ciphertext_does_not_open_after_a_correction(api, post, vn_officer, kh_officer):
    from messaging.items.changes import item_change

    item = post(vn_officer).item
    old_body = bytes(Item.objects.get(pk=item.pk).body_sealed)
    item_change(actor=vn_officer, item_id=item.pk, body="Corrected")
    _sql("UPDATE messaging_item SET body_sealed = %s WHERE id = %s", [old_body, item.pk])
    _refused(api, kh_officer, item.pk, reason="body_does_not_open")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_decrypt_failure_event_survives_the_refused_read(api, post, vn_officer, kh_officer):
    # Outside a test transaction: the read's own transaction rolls back, the error event commits on its own.
    item = post(vn_officer).item
    _sql("UPDATE messaging_item SET body_sealed = title_sealed WHERE id = %s", [item.pk])
    api.force_authenticate(kh_officer)
    response = api.get(f"/api/v1/items/{item.pk}/")
    assert response.status_code == 409
    assert AuditEvent.objects.filter(action="messaging.item.decrypt_failed", target_id=str(item.pk)).count() == 1
    assert not AuditEvent.objects.filter(action="messaging.item.read").exists()
    assert not item.reads.filter(user=kh_officer).exists()
