"""The audit signing key (Ed25519): it signs checkpoints and the lines of the revocation ledger."""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings

from isn.env import ConfigError

KEY_VARIABLE = "ISN_AUDIT_SIGNING_KEY"


def parse_private_key(text: str) -> Ed25519PrivateKey:
    """A private key from base64 of the raw 32 bytes, or from PEM (PKCS#8)."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
        except (ValueError, TypeError):
            raise ConfigError(f"{KEY_VARIABLE} is not a readable unencrypted PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"{KEY_VARIABLE} must be an Ed25519 key")
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ConfigError(f"{KEY_VARIABLE} must be base64 of a raw 32-byte Ed25519 private key, or PEM")
    return Ed25519PrivateKey.from_private_bytes(raw)


@lru_cache(maxsize=4)
def _key_from(text: str) -> Ed25519PrivateKey:
    return parse_private_key(text)


def signing_key() -> Ed25519PrivateKey:
    """The checkpoint signing key (settings resolve it: given in production, generated in development)."""
    return _key_from(settings.ISN_AUDIT_SIGNING_KEY)


def public_key_hex(key: Ed25519PrivateKey | None = None) -> str:
    public = (key or signing_key()).public_key()
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def trusted_public_keys() -> set[str]:
    """The current key and the previous ones an operator still vouches for (after a key rotation)."""
    return {public_key_hex(), *(key.lower() for key in settings.ISN_AUDIT_TRUSTED_PUBLIC_KEYS)}
