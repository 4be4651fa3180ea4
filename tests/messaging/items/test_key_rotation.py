"""Rotating a country's key re-wraps its data keys without opening content, then retires the old version."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from agencies.keyring import country_key_rotate, forget_cached_keys
from agencies.models import CountryKey, CountryKeyStatus
from audit.models import AuditEvent
from messaging.items.keys import country_keys_rewrap
from messaging.items.lifecycle import item_read
from messaging.models import ItemKey
from messaging.tasks import rewrap_country_keys

pytestmark = pytest.mark.django_db


@pytest.fixture
def items(post, vn_officer, kh_officer):
    return [post(vn_officer, countries=["VN", "KH"]).item for _ in range(5)] + [
        post(kh_officer, countries=["KH", "VN", "TH"]).item
    ]


def _versions(country: str) -> set[int]:
    return set(ItemKey.objects.filter(country_id=country).values_list("kek_version", flat=True))


def test_rotation_leaves_every_item_readable_and_retires_the_old_version(
    items, vn_officer, kh_officer, th_officer, settings, capsys
):
    settings.ISN_KEY_REWRAP_BATCH = 2  # several batches
    wrapped_before = {key.item_id: bytes(key.wrapped_key) for key in ItemKey.objects.filter(country_id="KH")}
    vn_before = {key.pk: bytes(key.wrapped_key) for key in ItemKey.objects.filter(country_id="VN")}

    call_command("rotate_country_key", "KH", "--wait")

    old, new = CountryKey.objects.get(country_id="KH", version=1), CountryKey.objects.get(country_id="KH", version=2)
    assert (old.status, bytes(old.wrapped_key), new.status) == (CountryKeyStatus.RETIRED, b"", CountryKeyStatus.PRIMARY)
    assert _versions("KH") == {2}
    assert all(bytes(k.wrapped_key) != wrapped_before[k.item_id] for k in ItemKey.objects.filter(country_id="KH"))
    assert {key.pk: bytes(key.wrapped_key) for key in ItemKey.objects.filter(country_id="VN")} == vn_before
    forget_cached_keys()
    for item in items:
        assert item_read(actor=kh_officer, item_id=item.pk).title
        assert item_read(actor=vn_officer, item_id=item.pk).title
    assert item_read(actor=th_officer, item_id=items[-1].pk).title
    actions = list(AuditEvent.objects.filter(action__contains="country_key").values_list("action", flat=True))
    assert actions == ["agencies.country_key.rotate", "agencies.country_key.retire", "messaging.country_key.rewrap"]
    rewrap = AuditEvent.objects.get(action="messaging.country_key.rewrap")
    assert rewrap.details == {
        "old_version": 1,
        "new_version": 2,
        "count": 6,
        "failed_item_ids": [],
        "remaining": 0,
        "retired": True,
    }
    assert "v1 retired" in capsys.readouterr().out


def test_rewrap_never_opens_content(items, monkeypatch):
    import messaging.core.sealing as sealing

    def refuse(*args, **kwargs):
        raise AssertionError("content was opened during a re-wrap")

    monkeypatch.setattr(sealing, "open_sealed", refuse)  # the only module that opens sealed bytes
    call_command("rotate_country_key", "KH", "--wait")
    assert _versions("KH") == {2}


def test_command_queues_the_task_which_finishes_the_job(items, kh_officer):
    call_command("rotate_country_key", "KH")
    assert CountryKey.objects.get(country_id="KH", version=1).status == CountryKeyStatus.DECRYPT_ONLY
    assert _versions("KH") == {1}
    # Meanwhile nothing is unreadable: the old version still unwraps.
    assert item_read(actor=kh_officer, item_id=items[0].pk).title
    rewrap_country_keys.apply(args=("KH", 1))  # what the worker runs
    assert CountryKey.objects.get(country_id="KH", version=1).status == CountryKeyStatus.RETIRED
    assert _versions("KH") == {2}
    forget_cached_keys()
    assert item_read(actor=kh_officer, item_id=items[0].pk).title


def test_rewrap_is_idempotent(items):
    country_key_rotate(actor=None, country_code="KH")
    first = country_keys_rewrap(actor=None, country_code="KH", old_version=1)
    again = country_keys_rewrap(actor=None, country_code="KH", old_version=1)
    assert (first.rewrapped, first.retired) == (6, True)
    assert (again.rewrapped, again.retired) == (0, True)


def test_items_posted_after_rotation_use_the_new_version(post, vn_officer, kh_officer):
    post(vn_officer)
    country_key_rotate(actor=None, country_code="KH")
    later = post(vn_officer).item
    assert ItemKey.objects.get(item=later, country_id="KH").kek_version == 2
    country_keys_rewrap(actor=None, country_code="KH", old_version=1)
    forget_cached_keys()
    assert item_read(actor=kh_officer, item_id=later.pk).title


def test_a_key_that_does_not_unwrap_is_recorded_and_does_not_block_retirement(items):
    from django.db import connection

    broken = items[0]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE messaging_itemkey SET wrapped_key = %s WHERE item_id = %s AND country_id = 'KH'",
            [b"\x01" + b"\x00" * 60, broken.pk],
        )
    call_command("rotate_country_key", "KH", "--wait")
    event = AuditEvent.objects.get(action="messaging.country_key.rewrap")
    assert (event.outcome, event.details["failed_item_ids"], event.details["count"]) == ("error", [str(broken.pk)], 5)
    assert CountryKey.objects.get(country_id="KH", version=1).status == CountryKeyStatus.RETIRED


def test_resume_and_bad_arguments(items):
    with pytest.raises(CommandError, match="not a member country"):
        call_command("rotate_country_key", "US")
    with pytest.raises(CommandError, match="No rotation"):
        call_command("rotate_country_key", "KH", "--resume")
    call_command("rotate_country_key", "KH")
    with pytest.raises(CommandError, match="still under way"):
        call_command("rotate_country_key", "KH")
    call_command("rotate_country_key", "KH", "--resume", "--wait")
    assert _versions("KH") == {2}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_rotation_waits_for_items_being_wrapped_with_the_old_version():
    """An item wrapped with v1 but not yet committed must not be missed by the re-wrap that retires v1."""
    import threading
    import time

    from django.db import connection, transaction

    from agencies.keyring import primary_key
    from messaging.core.sealing import primary_keks

    primary_key("KH")
    locked, release, rotated = threading.Event(), threading.Event(), threading.Event()

    def posting() -> None:
        try:
            with transaction.atomic():
                assert primary_keks(["KH"])["KH"][0] == 1
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    def rotating() -> None:
        try:
            country_key_rotate(actor=None, country_code="KH")
            rotated.set()
        finally:
            connection.close()

    poster = threading.Thread(target=posting)
    poster.start()
    assert locked.wait(10)
    rotator = threading.Thread(target=rotating)
    rotator.start()
    time.sleep(0.5)
    assert not rotated.is_set()  # held off by the item still being wrapped with v1
    release.set()
    poster.join(10)
    rotator.join(10)
    assert rotated.is_set()
    with transaction.atomic():
        assert primary_keks(["KH"])["KH"][0] == 2
