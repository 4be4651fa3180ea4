"""The register of master key versions: a rotation never misses a key wrapped under the old version while it ran."""

from __future__ import annotations

import os
import threading

import pytest
from django.db import connection, transaction

from agencies.keyring import forget_cached_keys, key_version, primary_key
from agencies.masterkeys import master_key_rotate, master_key_rotation_continue
from agencies.models import CountryKey, MasterKeyStatus, MasterKeyVersion


@pytest.fixture(autouse=True)
def _empty_cache():
    forget_cached_keys()
    yield
    forget_cached_keys()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_rotation_waits_for_a_key_being_wrapped_under_the_old_version(settings):
    """A country key wrapped under v1 but not yet committed must be re-wrapped before v1 is destroyed."""
    primary_key("VN")
    settings.ISN_MASTER_KEY_NEXT = os.urandom(32)
    held, release, rotated = threading.Event(), threading.Event(), threading.Event()

    def wrapping() -> None:
        try:
            with transaction.atomic():
                primary_key("LA")  # a first key for Lao PDR, wrapped under the primary master key
                held.set()
                release.wait(10)
        finally:
            connection.close()

    def rotating() -> None:
        try:
            master_key_rotate(actor=None, backend="environment")
            rotated.set()
        finally:
            connection.close()

    wrapper = threading.Thread(target=wrapping)
    wrapper.start()
    assert held.wait(10)
    rotator = threading.Thread(target=rotating)
    rotator.start()
    assert not rotated.wait(3)  # held off by the key still being wrapped under v1
    release.set()
    wrapper.join(10)
    rotator.join(10)
    assert rotated.is_set()
    assert CountryKey.objects.get(country_id="LA").master_version == 1

    progress = master_key_rotation_continue(actor=None)
    assert (progress.rewrapped, progress.remaining) == (2, 0)
    assert MasterKeyVersion.objects.get(version=1).status == MasterKeyStatus.DESTROYED
    assert set(CountryKey.objects.values_list("master_version", flat=True)) == {2}
    settings.ISN_MASTER_KEY, settings.ISN_MASTER_KEY_NEXT = settings.ISN_MASTER_KEY_NEXT, None
    forget_cached_keys()
    assert len(key_version("LA", 1)) == 32
    assert len(key_version("VN", 1)) == 32
