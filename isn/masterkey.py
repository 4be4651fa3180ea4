"""The master key: what wraps every country's key-encryption keys, the match key and the webhook secrets.

The master key is versioned. A version lives in one of two backends:

- ``environment``: 32 bytes given by ``ISN_MASTER_KEY`` (or ``ISN_MASTER_KEY_NEXT`` during a rotation to a new
  environment key), from the variable or a ``_FILE``. A version is known by its fingerprint, an HMAC of a fixed text
  under the key, so configuration never says which version a key is: the key that matches is the one.
- ``pkcs11``: an AES-256 key generated inside a PKCS#11 token (``ISN_PKCS11_MODULE``, ``ISN_PKCS11_TOKEN_LABEL``,
  ``ISN_PKCS11_PIN``), sensitive and not extractable, labelled ``<ISN_PKCS11_KEY_LABEL>.v<version>``. Wrapping and
  unwrapping are AES-256-GCM done by the module (``CKM_AES_GCM``), with the same associated data as the environment
  backend; the key never leaves the module.

Both produce values of isn.crypto's sealed format (format byte, 96-bit nonce, ciphertext and tag). Which version
wrapped a value is stored beside it; the registry of versions (which backend, which fingerprint or label) is the
keyring's (agencies), this module only does the cryptography of one version. Settings are read at each call.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from isn.crypto import KEY_BYTES, NONCE_BYTES, DecryptionError, open_sealed, seal
from isn.env import ConfigError

ENVIRONMENT = "environment"
PKCS11 = "pkcs11"
BACKENDS = (ENVIRONMENT, PKCS11)

_FORMAT_V1 = b"\x01"
_TAG_BITS = 128


@dataclass(frozen=True)
class MasterKeyRef:
    """One master key version: its number, its backend and how to find it (fingerprint or token label)."""

    version: int
    backend: str
    reference: str


def fingerprint(key: bytes) -> str:
    """What identifies an environment key without revealing it (kept in the database)."""
    return hmac.new(key, b"isn-master-key-fingerprint-v1", hashlib.sha256).hexdigest()[:32]


def environment_keys() -> list[bytes]:
    """The environment keys this process is given: ``ISN_MASTER_KEY`` and, during a rotation, the next one."""
    keys = [getattr(settings, "ISN_MASTER_KEY", None), getattr(settings, "ISN_MASTER_KEY_NEXT", None)]
    return [key for key in keys if key]


def _environment_key(ref: MasterKeyRef) -> bytes:
    for key in environment_keys():
        if hmac.compare_digest(fingerprint(key), ref.reference):
            return key
    raise DecryptionError(f"master key v{ref.version} is an environment key that this process is not given")


def pkcs11_configured() -> bool:
    return bool(getattr(settings, "ISN_PKCS11_MODULE", None))


def pkcs11_label(version: int) -> str:
    return f"{settings.ISN_PKCS11_KEY_LABEL}.v{version}"


# --- the PKCS#11 token ------------------------------------------------------------------------------------------
# One logged-in session per process, opened on first use and again after a fork (a PKCS#11 library must be
# initialised anew in a child process). python-pkcs11 sessions are not safe to share between threads: one lock.

_token_lock = threading.RLock()
_token_state: dict[str, Any] = {}


def _pkcs11_config() -> tuple[str, str, str]:
    return settings.ISN_PKCS11_MODULE, settings.ISN_PKCS11_TOKEN_LABEL, settings.ISN_PKCS11_PIN


def _open_session() -> Any:
    """The process's logged-in read-write session on the configured token; ConfigError (one line) if it cannot be."""
    import pkcs11
    from pkcs11 import exceptions as p11

    module, token_label, pin = _pkcs11_config()
    config = (module, token_label, pin, os.getpid())
    if _token_state.get("config") == config:
        return _token_state["session"]
    forked = _token_state.get("pid") not in (None, os.getpid())
    _token_state.clear()
    try:
        lib = pkcs11.lib(module)
        if forked:
            lib.reinitialize()
    except p11.PKCS11Error as exc:
        raise ConfigError(f"ISN_PKCS11_MODULE {module!r} could not be loaded as a PKCS#11 module ({exc})") from None
    try:
        token = lib.get_token(token_label=token_label)
    except p11.NoSuchToken:
        raise ConfigError(f"ISN_PKCS11_TOKEN_LABEL: the PKCS#11 module has no token labelled {token_label!r}") from None
    except p11.MultipleTokensReturned:
        raise ConfigError(f"ISN_PKCS11_TOKEN_LABEL: more than one token is labelled {token_label!r}") from None
    except p11.PKCS11Error as exc:
        raise ConfigError(f"ISN_PKCS11_TOKEN_LABEL: the token {token_label!r} is not available ({exc!r})") from None
    try:
        session = token.open(user_pin=pin, rw=True)
    except p11.PinIncorrect:
        raise ConfigError(f"ISN_PKCS11_PIN is not the PIN of the token {token_label!r}") from None
    except p11.PinLocked:
        raise ConfigError(f"ISN_PKCS11_PIN: the token {token_label!r} is locked after too many wrong PINs") from None
    except p11.PKCS11Error as exc:
        raise ConfigError(f"ISN_PKCS11_PIN: cannot sign in to the token {token_label!r} ({exc!r})") from None
    _token_state.update(config=config, pid=os.getpid(), lib=lib, session=session)
    return session


def check_module() -> None:
    """At start-up: when a PKCS#11 module is configured, sign in to its token now (ConfigError if that fails)."""
    if pkcs11_configured():
        with _token_lock:
            _open_session()


def _token_key(version: int, label: str) -> Any:
    from pkcs11 import KeyType, ObjectClass
    from pkcs11 import exceptions as p11

    if not pkcs11_configured():
        raise DecryptionError(f"master key v{version} is in a PKCS#11 module and none is configured")
    try:
        return _open_session().get_key(object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label=label)
    except p11.NoSuchKey:
        raise DecryptionError(f"master key v{version} ({label}) is not in the token") from None


def _gcm(nonce: bytes, aad: bytes) -> Any:
    from pkcs11.mechanisms import GCMParams

    return GCMParams(nonce, aad, _TAG_BITS)


def _with_key(ref: MasterKeyRef, use: Any) -> Any:
    """``use(key)`` with the token's key of ``ref``; once more on a new session when the module dropped the session
    (a network HSM restarted, a session timed out)."""
    from pkcs11 import exceptions as p11

    lost = (p11.SessionClosed, p11.SessionHandleInvalid, p11.UserNotLoggedIn, p11.DeviceRemoved, p11.TokenNotPresent)
    with _token_lock:
        try:
            return use(_token_key(ref.version, ref.reference))
        except lost:
            _token_state.clear()
            return use(_token_key(ref.version, ref.reference))


def _pkcs11_seal(ref: MasterKeyRef, plaintext: bytes, aad: bytes) -> bytes:
    from pkcs11 import Mechanism

    nonce = os.urandom(NONCE_BYTES)
    sealed = _with_key(
        ref, lambda key: key.encrypt(plaintext, mechanism=Mechanism.AES_GCM, mechanism_param=_gcm(nonce, aad))
    )
    return _FORMAT_V1 + nonce + bytes(sealed)


def _pkcs11_open(ref: MasterKeyRef, sealed: bytes, aad: bytes) -> bytes:
    from pkcs11 import Mechanism
    from pkcs11 import exceptions as p11

    if len(sealed) < 1 + NONCE_BYTES + _TAG_BITS // 8 or sealed[:1] != _FORMAT_V1:
        raise DecryptionError("not a sealed value of a known format")
    nonce, ciphertext = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]

    def decrypt(key: Any) -> bytes:
        try:
            return bytes(key.decrypt(ciphertext, mechanism=Mechanism.AES_GCM, mechanism_param=_gcm(nonce, aad)))
        except (p11.FunctionFailed, p11.GeneralError, p11.EncryptedDataInvalid, p11.EncryptedDataLenRange):
            # Modules report a failed tag in different ways (SoftHSM: a general error); none may yield bytes.
            raise DecryptionError("sealed value failed authentication in the PKCS#11 module") from None

    return _with_key(ref, decrypt)


def pkcs11_generate(version: int) -> str:
    """Generate the AES-256 key of master key ``version`` inside the token (sensitive, never extractable); its
    label. Idempotent: a key already there under that label (an interrupted rotation) is kept."""
    from pkcs11 import Attribute, KeyType, ObjectClass
    from pkcs11 import exceptions as p11

    label = pkcs11_label(version)
    with _token_lock:
        session = _open_session()
        try:
            session.get_key(object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label=label)
        except p11.NoSuchKey:
            template = {
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.ENCRYPT: True,
                Attribute.DECRYPT: True,
                Attribute.WRAP: False,
                Attribute.UNWRAP: False,
            }
            session.generate_key(KeyType.AES, KEY_BYTES * 8, label=label, store=True, template=template)
    return label


def pkcs11_destroy(label: str) -> bool:
    """Delete the token's key of that label; False when it was already gone."""
    from pkcs11 import KeyType, ObjectClass
    from pkcs11 import exceptions as p11

    with _token_lock:
        try:
            key = _open_session().get_key(object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label=label)
        except p11.NoSuchKey:
            return False
        key.destroy()
    return True


def pkcs11_labels() -> list[str]:
    """The labels of the AES keys in the token (tests and the operator's checks)."""
    from pkcs11 import Attribute, KeyType, ObjectClass

    with _token_lock:
        objects = _open_session().get_objects(
            {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES}
        )
        return sorted(obj.label for obj in objects)


# --- one version's wrap and unwrap ------------------------------------------------------------------------------


def wrap(ref: MasterKeyRef, plaintext: bytes, *, aad: bytes) -> bytes:
    """Seal a key or secret under master key version ``ref``, bound to ``aad``."""
    if ref.backend == PKCS11:
        return _pkcs11_seal(ref, plaintext, aad)
    return seal(_environment_key(ref), plaintext, aad=aad)


def unwrap(ref: MasterKeyRef, sealed: bytes, *, aad: bytes) -> bytes:
    """Open a value sealed under ``ref``; DecryptionError on any mismatch or when the version is not at hand."""
    sealed = bytes(sealed)
    if ref.backend == PKCS11:
        return _pkcs11_open(ref, sealed, aad)
    return open_sealed(_environment_key(ref), sealed, aad=aad)
