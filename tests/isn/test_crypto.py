from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from isn.crypto import (
    DecryptionError,
    associated_data,
    decode_key,
    new_key,
    open_sealed,
    seal,
    unwrap_key,
    wrap_key,
)

AAD = associated_data("item", 42, "body", 1)


@given(st.binary(max_size=4096))
def test_sealed_value_opens_with_the_same_key_and_place(plaintext):
    key = new_key()
    assert open_sealed(key, seal(key, plaintext, aad=AAD), aad=AAD) == plaintext


def test_fresh_nonce_every_time():
    key = new_key()
    assert seal(key, b"same", aad=AAD) != seal(key, b"same", aad=AAD)


def test_wrong_key_fails_closed():
    sealed = seal(new_key(), b"lead on a shipment", aad=AAD)
    with pytest.raises(DecryptionError):
        open_sealed(new_key(), sealed, aad=AAD)


@pytest.mark.parametrize(
    "other_place",
    [
        associated_data("item", 43, "body", 1),  # another row
        associated_data("item", 42, "title", 1),  # another field
        associated_data("item", 42, "body", 2),  # another key version
        associated_data("item", 4, "2body", 1),  # same characters, other split
    ],
)
def test_ciphertext_moved_elsewhere_fails(other_place):
    key = new_key()
    with pytest.raises(DecryptionError):
        open_sealed(key, seal(key, b"x", aad=AAD), aad=other_place)


@given(st.integers(min_value=0, max_value=200), st.integers(min_value=0, max_value=7))
def test_any_flipped_bit_fails(position, bit):
    key = new_key()
    sealed = bytearray(seal(key, b"a" * 100, aad=AAD))
    sealed[position % len(sealed)] ^= 1 << bit
    with pytest.raises(DecryptionError):
        open_sealed(key, bytes(sealed), aad=AAD)


@pytest.mark.parametrize("planted", [b"", b"plaintext stored by mistake", b"\x01" + b"\x00" * 20])
def test_planted_or_short_values_never_open(planted):
    with pytest.raises(DecryptionError):
        open_sealed(new_key(), planted, aad=AAD)


def test_key_wrap_is_bound_to_its_place():
    kek, data_key = new_key(), new_key()
    wrapped = wrap_key(kek, data_key, aad=associated_data("data-key", 42, "KH", 1))
    assert unwrap_key(kek, wrapped, aad=associated_data("data-key", 42, "KH", 1)) == data_key
    with pytest.raises(DecryptionError):
        unwrap_key(kek, wrapped, aad=associated_data("data-key", 42, "TH", 1))


def test_decode_key_accepts_base64_and_hex_of_32_bytes():
    key = new_key()
    assert decode_key(base64.b64encode(key).decode()) == key
    assert decode_key(base64.urlsafe_b64encode(key).decode()) == key
    assert decode_key(key.hex()) == key
    with pytest.raises(ValueError, match="32 bytes"):
        decode_key(base64.b64encode(b"short").decode())
