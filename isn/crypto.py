"""Authenticated encryption for ISN: AES-256-GCM with associated data, and key wrapping.

Every sealed value is ``format byte || 96-bit random nonce || ciphertext+tag``. The associated data names exactly
where the value belongs (item id, field, key version, country...), so a ciphertext copied to another row, field or
country fails to open. Opening fails closed: any mismatch raises :class:`DecryptionError`, never returns bytes.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
_FORMAT_V1 = b"\x01"
_OVERHEAD = len(_FORMAT_V1) + NONCE_BYTES + 16


class DecryptionError(Exception):
    """A sealed value did not open: wrong key, wrong place, or altered. Nothing of it may be used."""


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return os.urandom(KEY_BYTES)


def associated_data(purpose: str, *parts: str | int) -> bytes:
    """An unambiguous encoding of where a sealed value belongs: each part is length-prefixed."""
    encoded = bytearray(b"isn-aad-v1")
    for part in (purpose, *parts):
        raw = str(part).encode("utf-8")
        encoded += len(raw).to_bytes(4, "big") + raw
    return bytes(encoded)


def seal(key: bytes, plaintext: bytes, *, aad: bytes) -> bytes:
    if len(key) != KEY_BYTES:
        raise ValueError("AES-256-GCM needs a 32-byte key")
    nonce = os.urandom(NONCE_BYTES)
    return _FORMAT_V1 + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, sealed: bytes, *, aad: bytes) -> bytes:
    sealed = bytes(sealed)
    if len(key) != KEY_BYTES or len(sealed) < _OVERHEAD or sealed[:1] != _FORMAT_V1:
        raise DecryptionError("not a sealed value of a known format")
    nonce, ciphertext = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise DecryptionError("sealed value failed authentication") from None


def wrap_key(wrapping_key: bytes, key: bytes, *, aad: bytes) -> bytes:
    """Seal one key under another (AES-GCM rather than RFC 3394 key wrap, so the wrap is bound to its place)."""
    if len(key) != KEY_BYTES:
        raise ValueError("only 32-byte keys are wrapped")
    return seal(wrapping_key, key, aad=aad)


def unwrap_key(wrapping_key: bytes, wrapped: bytes, *, aad: bytes) -> bytes:
    key = open_sealed(wrapping_key, wrapped, aad=aad)
    if len(key) != KEY_BYTES:
        raise DecryptionError("unwrapped key has the wrong length")
    return key


def decode_key(text: str) -> bytes:
    """A 32-byte key from base64 (standard or URL-safe) or hex text; ValueError otherwise."""
    text = text.strip()
    for decode in (base64.b64decode, base64.urlsafe_b64decode, bytes.fromhex):
        try:
            key = decode(text)
        except (binascii.Error, ValueError):
            continue
        if len(key) == KEY_BYTES:
            return key
    raise ValueError("expected 32 bytes as base64 or hex")
