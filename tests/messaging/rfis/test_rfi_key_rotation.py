"""Rotating a country's key re-wraps the data keys of its requests for information too, never opening them, so the
rotated country still opens its requests once the old key version is retired."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from agencies.keyring import country_key_rotate, forget_cached_keys
from agencies.models import CountryKey, CountryKeyStatus
from audit.models import AuditEvent
from messaging.items.keys import country_keys_rewrap
from messaging.items.lifecycle import item_read
from messaging.models import ItemKey, RfiKey
from messaging.rfis.services import rfi_create, rfi_read, rfi_reply
from tests.messaging.network import build_network, post_item

pytestmark = pytest.mark.django_db


@pytest.fixture
def net():
    return build_network()


def ask(net, n: int):
    rfi = rfi_create(
        actor=net.user("vn.officer"),
        target_agency=net.kh.pk,
        target_office=net.bavet.pk,
        subject=f"Question {n}",
        question=f"Who owns lorry number {n}?",
        priority="routine",
    ).rfi
    rfi_reply(actor=net.user("kh.officer"), rfi_id=rfi.pk, body=f"Owner of lorry {n} is known.")
    return rfi


def test_rotation_rewraps_rfi_keys_and_both_countries_still_open_them(net, settings):
    settings.ISN_KEY_REWRAP_BATCH = 2  # several batches of each kind
    rfis = [ask(net, n) for n in range(3)]
    item = post_item(net.user("vn.officer"), countries=["VN", "KH"])
    kh_before = {key.rfi_id: bytes(key.wrapped_key) for key in RfiKey.objects.filter(country_id="KH")}
    vn_before = {key.pk: bytes(key.wrapped_key) for key in RfiKey.objects.filter(country_id="VN")}

    call_command("rotate_country_key", "KH", "--wait")

    old = CountryKey.objects.get(country_id="KH", version=1)
    assert (old.status, bytes(old.wrapped_key)) == (CountryKeyStatus.RETIRED, b"")
    assert set(RfiKey.objects.filter(country_id="KH").values_list("kek_version", flat=True)) == {2}
    assert all(bytes(k.wrapped_key) != kh_before[k.rfi_id] for k in RfiKey.objects.filter(country_id="KH"))
    assert {key.pk: bytes(key.wrapped_key) for key in RfiKey.objects.filter(country_id="VN")} == vn_before
    forget_cached_keys()
    for n, rfi in enumerate(rfis):
        for reader in ("kh.officer", "vn.officer"):
            content = rfi_read(actor=net.user(reader), rfi_id=rfi.pk)
            assert content.question == f"Who owns lorry number {n}?"
            assert [r.body for r in content.replies] == [f"Owner of lorry {n} is known."]
    assert item_read(actor=net.user("kh.officer"), item_id=item.pk).title
    event = AuditEvent.objects.get(action="messaging.country_key.rewrap")
    assert event.details["count"] == 4  # one item and three requests
    assert (event.details["remaining"], event.details["retired"], event.outcome) == (0, True, "ok")


def test_rewrapping_rfi_keys_never_opens_content(net, monkeypatch):
    ask(net, 1)
    import messaging.core.sealing as sealing

    def refuse(*args, **kwargs):
        raise AssertionError("content was opened during a re-wrap")

    monkeypatch.setattr(sealing, "open_sealed", refuse)  # the only module that opens sealed bytes
    call_command("rotate_country_key", "KH", "--wait")
    assert set(RfiKey.objects.filter(country_id="KH").values_list("kek_version", flat=True)) == {2}


def test_an_unfinished_rewrap_keeps_the_old_version_until_rfi_keys_are_done(net):
    rfi = ask(net, 1)
    country_key_rotate(actor=None, country_code="KH")
    # A time budget already spent: nothing is re-wrapped, so the old version must not be retired.
    result = country_keys_rewrap(actor=None, country_code="KH", old_version=1, time_budget=0)
    assert (result.rewrapped, result.remaining, result.retired) == (0, 1, False)
    assert CountryKey.objects.get(country_id="KH", version=1).status == CountryKeyStatus.DECRYPT_ONLY
    assert rfi_read(actor=net.user("kh.officer"), rfi_id=rfi.pk).question  # still opens with the old version
    done = country_keys_rewrap(actor=None, country_code="KH", old_version=1)
    assert (done.rewrapped, done.retired) == (1, True)
    forget_cached_keys()
    assert rfi_read(actor=net.user("kh.officer"), rfi_id=rfi.pk).question


def test_an_rfi_key_that_does_not_unwrap_is_recorded_and_does_not_block_retirement(net):
    broken, fine = ask(net, 1), ask(net, 2)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE messaging_rfikey SET wrapped_key = %s WHERE rfi_id = %s AND country_id = 'KH'",
            [b"\x01" + b"\x00" * 60, broken.pk],
        )
    call_command("rotate_country_key", "KH", "--wait")
    event = AuditEvent.objects.get(action="messaging.country_key.rewrap")
    assert (event.outcome, event.details["failed_rfi_ids"], event.details["count"]) == ("error", [str(broken.pk)], 1)
    assert event.details["failed_item_ids"] == []
    assert CountryKey.objects.get(country_id="KH", version=1).status == CountryKeyStatus.RETIRED
    forget_cached_keys()
    assert rfi_read(actor=net.user("kh.officer"), rfi_id=fine.pk).question
    assert not ItemKey.objects.exists()
