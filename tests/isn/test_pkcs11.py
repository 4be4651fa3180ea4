"""The master key inside a PKCS#11 module (SoftHSM2): wrapping done by the module, the key never leaving it, and a
misconfigured module stopping start-up with one line."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from pkcs11 import Attribute, KeyType, ObjectClass

from isn import masterkey
from isn.crypto import DecryptionError, associated_data
from tests.isn.test_settings import GOOD_PRODUCTION, ROOT, _outside_environment
from tests.softhsm import softhsm, softhsm_token  # noqa: F401 - softhsm is a fixture


@pytest.fixture
def module(settings, softhsm):  # noqa: F811 - the fixture imported above
    settings.ISN_PKCS11_MODULE = softhsm.module
    settings.ISN_PKCS11_TOKEN_LABEL = softhsm.label
    settings.ISN_PKCS11_PIN = softhsm.pin
    settings.ISN_PKCS11_KEY_LABEL = f"isn-test-{uuid.uuid4().hex[:12]}"
    return softhsm


def test_the_module_wraps_and_unwraps_bound_to_the_associated_data(module):
    label = masterkey.pkcs11_generate(7)
    ref = masterkey.MasterKeyRef(version=7, backend=masterkey.PKCS11, reference=label)
    aad = associated_data("country-key", "VN", 1)
    key = os.urandom(32)
    sealed = masterkey.wrap(ref, key, aad=aad)
    assert key not in sealed
    assert len(sealed) == 1 + 12 + 32 + 16
    assert masterkey.unwrap(ref, sealed, aad=aad) == key
    with pytest.raises(DecryptionError):
        masterkey.unwrap(ref, sealed, aad=associated_data("country-key", "KH", 1))
    with pytest.raises(DecryptionError):
        masterkey.unwrap(ref, sealed[:-1] + bytes([sealed[-1] ^ 1]), aad=aad)
    # Generating again (a rotation run twice) keeps the same key.
    assert masterkey.pkcs11_generate(7) == label
    assert masterkey.unwrap(ref, sealed, aad=aad) == key


def test_the_key_is_generated_in_the_token_sensitive_and_never_extractable(module, settings):
    label = masterkey.pkcs11_generate(1)
    assert label == f"{settings.ISN_PKCS11_KEY_LABEL}.v1"
    session = masterkey._open_session()
    key = session.get_key(object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label=label)
    assert key[Attribute.SENSITIVE] is True
    assert key[Attribute.EXTRACTABLE] is False
    assert key[Attribute.NEVER_EXTRACTABLE] is True
    assert key[Attribute.TOKEN] is True
    assert label in masterkey.pkcs11_labels()
    assert masterkey.pkcs11_destroy(label) is True
    assert label not in masterkey.pkcs11_labels()
    assert masterkey.pkcs11_destroy(label) is False


def test_a_version_missing_from_the_token_fails_closed(module):
    ref = masterkey.MasterKeyRef(version=3, backend=masterkey.PKCS11, reference="isn-test-nothing.v3")
    with pytest.raises(DecryptionError, match="not in the token"):
        masterkey.unwrap(ref, b"\x01" + b"\x00" * 60, aad=b"x")


# --- start-up -----------------------------------------------------------------------------------------------------


@pytest.fixture
def own_token(tmp_path):
    return softhsm_token(tmp_path, label="isn-startup")


def _check(token, **overrides: str | None) -> subprocess.CompletedProcess[str]:
    """``manage.py check`` in production with the master key in ``token`` (and no environment key)."""
    env = _outside_environment()
    env["ISN_DATA_DIR"] = os.environ["ISN_DATA_DIR"]
    settings = {
        **GOOD_PRODUCTION,
        "ISN_MASTER_KEY": None,
        "ISN_PKCS11_MODULE": token.module,
        "ISN_PKCS11_TOKEN_LABEL": token.label,
        "ISN_PKCS11_PIN": token.pin,
        **overrides,
    }
    env.update({key: value for key, value in settings.items() if value is not None})
    env["SOFTHSM2_CONF"] = str(token.conf)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_the_right_pin_starts(own_token):
    result = _check(own_token)
    assert result.returncode == 0, result.stderr


def test_a_wrong_pin_stops_start_up_with_one_line(own_token):
    line = _one_line(_check(own_token, ISN_PKCS11_PIN="0000-wrong"))
    assert line == "ISN configuration error: ISN_PKCS11_PIN is not the PIN of the token 'isn-startup'"


def test_a_missing_token_stops_start_up_with_one_line(own_token):
    line = _one_line(_check(own_token, ISN_PKCS11_TOKEN_LABEL="isn-elsewhere"))
    assert (
        line
        == "ISN configuration error: ISN_PKCS11_TOKEN_LABEL: the PKCS#11 module has no token labelled 'isn-elsewhere'"
    )


def test_a_pin_from_a_file(own_token, tmp_path):
    pin_file = tmp_path / "pin"
    pin_file.write_text(own_token.pin + "\n")
    assert _check(own_token, ISN_PKCS11_PIN=None, ISN_PKCS11_PIN_FILE=str(pin_file)).returncode == 0


def test_a_module_that_is_not_there_stops_start_up_with_one_line(own_token):
    line = _one_line(_check(own_token, ISN_PKCS11_MODULE="/nowhere/libpkcs11.so"))
    assert line == "ISN configuration error: ISN_PKCS11_MODULE names '/nowhere/libpkcs11.so', which is not a file"


def test_production_without_a_module_still_needs_the_environment_key(own_token):
    line = _one_line(_check(own_token, ISN_PKCS11_MODULE=None))
    assert line.startswith("ISN configuration error: ISN_MASTER_KEY is required")
