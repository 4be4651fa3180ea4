from __future__ import annotations

import pytest
from django.db import connection

from agencies.keyring import country_key_retire, country_key_rotate, forget_cached_keys, key_version, primary_key
from agencies.models import CountryKey, CountryKeyStatus
from audit.models import AuditEvent
from isn.crypto import DecryptionError
from isn.errors import Conflict

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache():
    forget_cached_keys()
    yield
    forget_cached_keys()


def test_first_use_makes_version_one_stored_only_wrapped():
    version, kek = primary_key("KH")
    stored = CountryKey.objects.get(country_id="KH")
    assert (version, stored.version, stored.status) == (1, 1, CountryKeyStatus.PRIMARY)
    assert len(kek) == 32
    assert kek not in bytes(stored.wrapped_key)
    assert primary_key("KH") == (1, kek)


def test_countries_have_different_keys():
    assert primary_key("KH")[1] != primary_key("TH")[1]


def test_wrapped_key_moved_to_another_country_does_not_open():
    primary_key("KH")
    primary_key("TH")
    kh = CountryKey.objects.get(country_id="KH")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE agencies_countrykey SET wrapped_key = %s WHERE country_id = 'TH'", [kh.wrapped_key])
    forget_cached_keys()
    with pytest.raises(DecryptionError):
        key_version("TH", 1)


def test_wrong_master_key_fails_closed(settings):
    primary_key("VN")
    forget_cached_keys()
    settings.ISN_MASTER_KEY = b"\x00" * 32
    with pytest.raises(DecryptionError):
        key_version("VN", 1)


def test_rotation_makes_new_primary_keeps_old_for_unwrapping_and_is_recorded(vn_admin):
    _, old = primary_key("VN")
    new = country_key_rotate(actor=vn_admin, country_code="VN")
    assert new.version == 2
    assert primary_key("VN")[0] == 2
    assert key_version("VN", 1) == old
    event = AuditEvent.objects.get(action="agencies.country_key.rotate")
    assert (event.actor_label, event.target_country, event.details) == (
        "vn.admin",
        "VN",
        {"old_version": 1, "new_version": 2},
    )


def test_rotation_waits_for_the_previous_one():
    country_key_rotate(actor=None, country_code="LA")
    with pytest.raises(Conflict):
        country_key_rotate(actor=None, country_code="LA")


def test_retired_version_is_destroyed():
    primary_key("MM")
    country_key_rotate(actor=None, country_code="MM")
    country_key_retire(actor=None, country_code="MM", version=1)
    stored = CountryKey.objects.get(country_id="MM", version=1)
    assert (stored.status, bytes(stored.wrapped_key)) == (CountryKeyStatus.RETIRED, b"")
    with pytest.raises(DecryptionError):
        key_version("MM", 1)
    assert AuditEvent.objects.filter(action="agencies.country_key.retire", target_country="MM").count() == 1


def test_primary_cannot_be_retired():
    primary_key("CN")
    with pytest.raises(Conflict):
        country_key_retire(actor=None, country_code="CN", version=1)
