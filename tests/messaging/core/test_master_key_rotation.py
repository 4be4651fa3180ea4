"""Items under a master key in a PKCS#11 module (SoftHSM2), and ``manage.py rotate_master_key``: from the
environment key into the module, between module keys and between environment keys, interrupted and resumed; every
item stays readable and the old version is destroyed once nothing refers to it."""

from __future__ import annotations

import io
import os
import uuid
from base64 import b64encode

import pytest
from django.core.management import CommandError, call_command

from agencies.keyring import forget_cached_keys, key_version, match_key
from agencies.masterkeys import master_key_destroy, master_key_ref, master_version_references
from agencies.models import CountryKey, MasterKeyStatus, MasterKeyVersion, MatchKey
from audit.models import AuditEvent
from isn import masterkey
from isn.crypto import DecryptionError
from isn.errors import Conflict
from messaging.delivery.webhooks import webhook_configure, webhook_secret
from messaging.items.lifecycle import item_read
from messaging.models import AgencyWebhook
from tests.softhsm import softhsm  # noqa: F401 - a fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def module(settings, softhsm):  # noqa: F811 - the fixture imported above
    """Every process of this test is given the token (the key labels are this test's own)."""
    settings.ISN_PKCS11_MODULE = softhsm.module
    settings.ISN_PKCS11_TOKEN_LABEL = softhsm.label
    settings.ISN_PKCS11_PIN = softhsm.pin
    settings.ISN_PKCS11_KEY_LABEL = f"isn-test-{uuid.uuid4().hex[:12]}"
    return softhsm


@pytest.fixture
def network(post, vn_officer, kh_officer, th_officer, vn_admin, settings):
    """Country keys of VN, KH and TH, the match key and a webhook secret, all sealed under the master key."""
    settings.ISN_WEBHOOK_ALLOW_PRIVATE_TARGETS = True

    def build():
        item = post(vn_officer, countries=["VN", "KH", "TH"]).item
        match_key()
        webhook, secret = webhook_configure(actor=vn_admin, url="https://hooks.example.org/isn")
        return item, webhook, secret

    return build


def _everything_opens(item, webhook, secret, *readers):
    forget_cached_keys()  # open from the stored rows, not from what this process remembers
    for reader in readers:
        assert item_read(actor=reader, item_id=item.pk).title == "Meth pills shipment expected at Moc Bai"
    assert webhook_secret(AgencyWebhook.objects.get(pk=webhook.pk)) == secret.encode()
    match_key()


def _versions():
    return {row.version: (row.backend, row.status) for row in MasterKeyVersion.objects.all()}


def _named(version):
    return (
        CountryKey.objects.filter(master_version=version).count()
        + MatchKey.objects.filter(master_version=version).count()
        + AgencyWebhook.objects.filter(secret_master_version=version).count()
    )


def _rotate(*args):
    out = io.StringIO()
    call_command("rotate_master_key", *args, stdout=out)
    return out.getvalue()


def test_items_post_and_read_with_the_master_key_in_the_module(
    module, settings, post, vn_officer, kh_officer, th_officer
):
    settings.ISN_MASTER_KEY = None  # the module only: no key in this process's environment
    item = post(vn_officer).item
    assert _versions() == {1: ("pkcs11", "primary")}
    assert f"{settings.ISN_PKCS11_KEY_LABEL}.v1" in masterkey.pkcs11_labels()
    assert set(CountryKey.objects.values_list("country_id", "master_version")) == {("VN", 1), ("KH", 1)}
    forget_cached_keys()
    assert item_read(actor=kh_officer, item_id=item.pk).body.startswith("Two lorries")
    assert item_read(actor=vn_officer, item_id=item.pk).title == "Meth pills shipment expected at Moc Bai"


def test_rotation_from_the_environment_key_into_the_module_interrupted_and_resumed(
    module, settings, network, post, vn_officer, kh_officer, th_officer, la_officer
):
    item, webhook, secret = network()
    assert _versions() == {1: ("environment", "primary")}
    assert _named(1) == 5  # three country keys, the match key, the webhook secret

    with pytest.raises(CommandError, match="3 values still name master key v1; run again to continue"):
        _rotate("--to", "pkcs11", "--batch-size", "1", "--max-batches", "2")
    assert _versions() == {1: ("environment", "retiring"), 2: ("pkcs11", "primary")}
    assert (_named(1), _named(2)) == (3, 2)
    with pytest.raises(Conflict):
        master_key_destroy(actor=None, version=1)
    _everything_opens(item, webhook, secret, vn_officer, kh_officer, th_officer)

    # While the rotation is under way, new keys are wrapped under the new version only.
    other = post(vn_officer, countries=["VN", "LA"]).item
    assert CountryKey.objects.get(country_id="LA").master_version == 2

    output = _rotate("--batch-size", "1")
    assert "Continuing the rotation of master key v1" in output
    assert "remove that environment key" in output
    assert _versions() == {1: ("environment", "destroyed"), 2: ("pkcs11", "primary")}
    assert master_version_references(1) == {
        "agencies.countrykey": 0,
        "agencies.matchkey": 0,
        "messaging.agencywebhook": 0,
    }

    with pytest.raises(DecryptionError, match="v1 was destroyed"):
        master_key_ref(1)
    # The operator removes the environment key: everything opens through the module alone.
    settings.ISN_MASTER_KEY = None
    _everything_opens(item, webhook, secret, vn_officer, kh_officer, th_officer)
    assert item_read(actor=la_officer, item_id=other.pk).title == "Meth pills shipment expected at Moc Bai"

    rotate = AuditEvent.objects.get(action="agencies.master_key.rotate")
    assert rotate.details == {"old_version": 1, "old_backend": "environment", "new_version": 2, "new_backend": "pkcs11"}
    rewraps = AuditEvent.objects.filter(action="agencies.master_key.rewrap")
    assert sum(event.details["count"] for event in rewraps) == 5
    destroy = AuditEvent.objects.get(action="agencies.master_key.destroy")
    assert destroy.details == {"version": 1, "backend": "environment"}


def test_rotation_between_module_keys_interrupted_and_resumed_destroys_the_old_token_key(
    module, settings, network, vn_officer, kh_officer, th_officer
):
    settings.ISN_MASTER_KEY = None
    item, webhook, secret = network()
    old_label, new_label = f"{settings.ISN_PKCS11_KEY_LABEL}.v1", f"{settings.ISN_PKCS11_KEY_LABEL}.v2"
    assert _versions() == {1: ("pkcs11", "primary")}

    with pytest.raises(CommandError, match="4 values still name master key v1"):
        _rotate("--batch-size", "1", "--max-batches", "1")
    assert {old_label, new_label} <= set(masterkey.pkcs11_labels())
    _everything_opens(item, webhook, secret, vn_officer, kh_officer, th_officer)

    assert "its key is deleted from the token" in _rotate("--batch-size", "2")
    assert _versions() == {1: ("pkcs11", "destroyed"), 2: ("pkcs11", "primary")}
    labels = masterkey.pkcs11_labels()
    assert old_label not in labels
    assert new_label in labels
    assert _named(2) == 5
    _everything_opens(item, webhook, secret, vn_officer, kh_officer, th_officer)


def test_rotation_between_environment_keys(settings, network, vn_officer, kh_officer, th_officer):
    item, webhook, secret = network()
    with pytest.raises(CommandError, match="ISN_MASTER_KEY_NEXT"):
        _rotate()
    assert _versions() == {1: ("environment", "primary")}

    next_key = os.urandom(32)
    settings.ISN_MASTER_KEY_NEXT = next_key
    assert "remove that environment key" in _rotate()
    assert _versions() == {1: ("environment", "destroyed"), 2: ("environment", "primary")}
    assert MasterKeyVersion.objects.get(version=2).reference == masterkey.fingerprint(next_key)

    # The operator moves the new key to ISN_MASTER_KEY and drops the old one.
    settings.ISN_MASTER_KEY, settings.ISN_MASTER_KEY_NEXT = next_key, None
    _everything_opens(item, webhook, secret, vn_officer, kh_officer, th_officer)
    assert b64encode(next_key).decode() not in str(list(AuditEvent.objects.values_list("details", flat=True)))


def test_a_second_rotation_waits_for_the_first(module, settings, network):
    network()
    with pytest.raises(CommandError):
        _rotate("--to", "pkcs11", "--max-batches", "1", "--batch-size", "1")
    # Running the command again continues the rotation under way rather than starting another.
    _rotate("--to", "environment")
    assert _versions() == {1: ("environment", "destroyed"), 2: ("pkcs11", "primary")}
    assert MasterKeyVersion.objects.filter(status=MasterKeyStatus.RETIRING).count() == 0


def test_a_module_alone_never_takes_the_place_of_the_environment_key_that_wrapped_existing_keys(
    module, settings, post, vn_officer
):
    post(vn_officer)
    MasterKeyVersion.objects.all().delete()  # as just after the upgrade: keys name v1, nothing registered yet
    forget_cached_keys()
    settings.ISN_MASTER_KEY = None
    with pytest.raises(DecryptionError, match="give ISN_MASTER_KEY until rotate_master_key"):
        key_version("VN", 1)
    assert not MasterKeyVersion.objects.exists()
    assert f"{settings.ISN_PKCS11_KEY_LABEL}.v1" not in masterkey.pkcs11_labels()
