"""Everything ISN seals for items and requests for information, in one place: the only messaging module that
touches the AEAD primitives of ``isn.crypto``.

An item's (or RFI's) texts and attachments are sealed under its own random data key, with associated data that
binds what the bytes are (kind, owner id, field, content version), so a ciphertext copied to another field, item or
version does not open. The data key is stored only wrapped, once per country, under that country's key-encryption
key, with associated data naming the owner, the country and the key version.

Opening fails closed: a missing wrapped key, a key that does not unwrap, or a ciphertext that does not open raises
``Unreadable`` inside the service's transaction. ``fails_closed`` lets that transaction roll back, records an
``error`` event (``messaging.item.decrypt_failed`` or ``messaging.rfi.decrypt_failed``) in a transaction of its own
so that it survives, and refuses with ``ContentUnavailable``: no stored bytes are ever returned instead.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterable
from typing import Any, ParamSpec, TypeVar

from django.db import connection, transaction

from agencies.keyring import key_version, primary_key
from agencies.masterkeys import master_unwrap, master_wrap
from agencies.models import CountryKey, CountryKeyStatus
from audit.models import Outcome
from audit.services import record
from isn.crypto import DecryptionError, associated_data, new_key, open_sealed, seal, unwrap_key, wrap_key
from isn.errors import Conflict
from messaging.models import Item, ItemKey, Rfi, RfiKey

P = ParamSpec("P")
R = TypeVar("R")

ITEM = "messaging.item"
RFI = "messaging.rfi"

# Requests for information keep their data key for life (no correction re-keys them); the generation is in the
# associated data so that a future re-key can move to the next one.
RFI_KEY_GENERATION = 1

_REFUSALS = {
    ITEM: (
        "This item's content cannot be opened for your country. The failure has been recorded; "
        "ask the originating agency to check the release."
    ),
    RFI: (
        "This request for information cannot be opened for your country. The failure has been recorded; "
        "ask the ISN operators to check your country's key."
    ),
}


class ContentUnavailable(Conflict):
    code = "content_unavailable"


# --- associated data --------------------------------------------------------------------------------------------


def item_field_aad(item_id: uuid.UUID, field_name: str, version: int) -> bytes:
    return associated_data("item", str(item_id), field_name, version)


def item_entity_aad(item_id: uuid.UUID, entity_id: uuid.UUID, version: int) -> bytes:
    """Associated data of one entity's fields, sealed under the item's data key for one content version."""
    return associated_data("entity", str(item_id), str(entity_id), version)


def attachment_aad(item_id: uuid.UUID, attachment_id: uuid.UUID, version: int) -> bytes:
    return associated_data("attachment", str(item_id), str(attachment_id), version)


def attachment_name_aad(item_id: uuid.UUID, attachment_id: uuid.UUID, version: int) -> bytes:
    return associated_data("attachment-name", str(item_id), str(attachment_id), version)


def item_key_aad(item_id: uuid.UUID, country_code: str, kek_version: int) -> bytes:
    return associated_data("data-key", str(item_id), country_code, kek_version)


def ack_note_aad(item_id: uuid.UUID, agency_id: int) -> bytes:
    return associated_data("acknowledgement-note", str(item_id), agency_id)


def forward_reason_aad(item_id: uuid.UUID, forward_id: int) -> bytes:
    """Associated data of a forward's reason, sealed under the item's data key."""
    return associated_data("forward", str(item_id), forward_id, "reason")


def consent_text_aad(item_id: uuid.UUID, consent_id: uuid.UUID, field_name: str) -> bytes:
    """Associated data of a consent request's ``justification`` or ``decline_reason``, sealed under the item's key."""
    return associated_data("consent", str(item_id), str(consent_id), field_name)


def rfi_text_aad(rfi_id: uuid.UUID, field_name: str) -> bytes:
    return associated_data("rfi", str(rfi_id), field_name, RFI_KEY_GENERATION)


def rfi_reply_aad(rfi_id: uuid.UUID, reply_id: int) -> bytes:
    return associated_data("rfi-reply", str(rfi_id), reply_id, RFI_KEY_GENERATION)


def rfi_key_aad(rfi_id: uuid.UUID, country_code: str, kek_version: int) -> bytes:
    """Associated data of an RFI's data key wrapped for one country (also used by key rotation's re-wrap)."""
    return associated_data("rfi-data-key", str(rfi_id), country_code, kek_version)


def _webhook_secret_aad(agency_id: int) -> bytes:
    return associated_data("webhook-secret", agency_id)


# --- failing closed ---------------------------------------------------------------------------------------------


class Unreadable(Exception):
    """Raised inside a service's transaction when content does not open; turned into an error event outside it.

    ``filed_under`` is the country whose auditors must see the failure: an item's originating country; for an RFI
    the other side's country (the actor's own is on the event already).
    """

    def __init__(self, target_type: str, target_id: uuid.UUID, filed_under: str, country_code: str, reason: str):
        super().__init__(reason)
        self.target_type = target_type
        self.target_id = target_id
        self.filed_under = filed_under
        self.country_code = country_code
        self.reason = reason

    @classmethod
    def of_item(cls, item: Item, country_code: str, reason: str) -> Unreadable:
        return cls(ITEM, item.pk, item.originator_country, country_code, reason)

    @classmethod
    def of_rfi(cls, rfi: Rfi, country_code: str, reason: str) -> Unreadable:
        return cls(RFI, rfi.pk, rfi.other_country(country_code), country_code, reason)


def decrypt_failure_record(actor: Any, failure: Unreadable, *, during: str) -> None:
    """The ``error`` event of a failure (in the caller's transaction: ``fails_closed`` gives it one of its own)."""
    record(
        action="messaging.item.decrypt_failed" if failure.target_type == ITEM else "messaging.rfi.decrypt_failed",
        actor=actor,
        target_type=failure.target_type,
        target_id=str(failure.target_id),
        target_country=failure.filed_under,
        outcome=Outcome.ERROR,
        details={"country": failure.country_code, "reason": failure.reason, "during": during},
    )


def fails_closed(service: Callable[P, R]) -> Callable[P, R]:
    """Record a decryption failure after the service's own transaction has rolled back, then refuse."""

    @functools.wraps(service)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return service(*args, **kwargs)
        except Unreadable as failure:
            with transaction.atomic():
                decrypt_failure_record(kwargs.get("actor"), failure, during=service.__name__)
            raise ContentUnavailable(_REFUSALS[failure.target_type]) from None

    return wrapper


# --- sealing and opening ----------------------------------------------------------------------------------------


def data_key_new() -> bytes:
    """A fresh random data key for a new item or request."""
    return new_key()


def sealed(data_key: bytes, plaintext: str | bytes, *, aad: bytes) -> bytes:
    """``plaintext`` (text as UTF-8) sealed under ``data_key``."""
    data = plaintext.encode("utf-8") if isinstance(plaintext, str) else plaintext
    return seal(data_key, data, aad=aad)


def opened(data_key: bytes, ciphertext: bytes, *, aad: bytes, failure: Unreadable) -> bytes:
    """The bytes sealed in ``ciphertext``; ``failure`` is raised when they do not open."""
    try:
        return open_sealed(data_key, bytes(ciphertext), aad=aad)
    except DecryptionError:
        raise failure from None


def opened_text(data_key: bytes, ciphertext: bytes, *, aad: bytes, failure: Unreadable) -> str:
    """Like ``opened``, for UTF-8 text (bytes that are not valid UTF-8 fail the same way)."""
    try:
        return opened(data_key, ciphertext, aad=aad, failure=failure).decode("utf-8")
    except UnicodeDecodeError:
        raise failure from None


def resealed(old_key: bytes, data_key: bytes, ciphertext: bytes, *, aad: bytes, failure: Unreadable) -> bytes:
    """Move one ciphertext from ``old_key`` to ``data_key`` under the same associated data (a re-key)."""
    return seal(data_key, opened(old_key, ciphertext, aad=aad, failure=failure), aad=aad)


# --- wrapped data keys ------------------------------------------------------------------------------------------


def primary_keks(country_codes: Iterable[str]) -> dict[str, tuple[int, bytes]]:
    """Each country's primary key, held so that a rotation cannot retire it before this transaction commits.

    ``FOR KEY SHARE`` does not block other writers of items, only ``country_key_rotate``'s ``FOR UPDATE``: a rotation
    waits for items being wrapped with the old version, so its re-wrap then sees every one of them.
    """
    codes = sorted(set(country_codes))
    if connection.vendor != "postgresql":  # SQLite (development) serialises writers anyway
        return {code: primary_key(code) for code in codes}
    for _attempt in range(3):
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT country_id, version FROM {CountryKey._meta.db_table} "  # noqa: S608 - table name is ours
                "WHERE country_id = ANY(%s) AND status = %s FOR KEY SHARE",
                [codes, CountryKeyStatus.PRIMARY],
            )
            locked = dict(cursor.fetchall())
        if all(code in locked for code in codes):
            # The versions are held now. A version's key never changes, so the keyring's short cache may serve it:
            # one query for all countries instead of a query and an unwrap for each.
            return {code: (locked[code], key_version(code, locked[code])) for code in codes}
        for code in codes:
            if code not in locked:
                # No first key yet (made here), or a rotation replaced it while this statement waited for the lock.
                primary_key(code)
    raise Conflict("A country key is being rotated right now; please try again.")


def _keys_wrapped(
    model: type[ItemKey | RfiKey], owner_id: uuid.UUID, data_key: bytes, keks: dict[str, tuple[int, bytes]]
) -> list[Any]:
    aad_of = rfi_key_aad if model is RfiKey else item_key_aad
    owner = "rfi_id" if model is RfiKey else "item_id"
    return [
        model(
            **{owner: owner_id},
            country_id=code,
            kek_version=version,
            wrapped_key=wrap_key(kek, data_key, aad=aad_of(owner_id, code, version)),
        )
        for code, (version, kek) in keks.items()
    ]


def item_keys_wrapped(item_id: uuid.UUID, data_key: bytes, keks: dict[str, tuple[int, bytes]]) -> list[ItemKey]:
    """Unsaved ``ItemKey`` rows: the item's data key wrapped for each country of ``keks``."""
    return _keys_wrapped(ItemKey, item_id, data_key, keks)


def rfi_keys_wrapped(rfi_id: uuid.UUID, data_key: bytes, keks: dict[str, tuple[int, bytes]]) -> list[RfiKey]:
    """Unsaved ``RfiKey`` rows: the request's data key wrapped for each country of ``keks``."""
    return _keys_wrapped(RfiKey, rfi_id, data_key, keks)


def item_key_wrap(item: Item, data_key: bytes, country_code: str) -> None:
    """Wrap the item's data key for one more country with its primary key (a consent shares the item with it)."""
    ItemKey.objects.bulk_create(item_keys_wrapped(item.pk, data_key, primary_keks([country_code])))


def item_key_unwrap(item: Item, wrapped: ItemKey) -> bytes:
    """The item's data key from one of its wrapped keys."""
    country_code = wrapped.country_id
    try:
        kek = key_version(country_code, wrapped.kek_version)
        aad = item_key_aad(item.pk, country_code, wrapped.kek_version)
        return unwrap_key(kek, bytes(wrapped.wrapped_key), aad=aad)
    except DecryptionError:
        raise Unreadable.of_item(item, country_code, "key_does_not_open") from None


def item_data_key_if_held(item: Item, country_code: str) -> bytes | None:
    """The item's data key unwrapped with ``country_code``'s own key, or None when the country holds no key for the
    item (it was never released there, or was cut off)."""
    wrapped = ItemKey.objects.filter(item=item, country_id=country_code).first()
    return None if wrapped is None else item_key_unwrap(item, wrapped)


def item_data_key(item: Item, country_code: str) -> bytes:
    """The item's data key unwrapped with ``country_code``'s own key and no other; inside a ``fails_closed``
    service (a missing key, or one that does not open, is recorded and refused)."""
    data_key = item_data_key_if_held(item, country_code)
    if data_key is None:
        raise Unreadable.of_item(item, country_code, "no_key")
    return data_key


def rfi_data_key(rfi: Rfi, country_code: str, wrapped: RfiKey | None = None) -> bytes:
    """The request's data key, unwrapped with ``country_code``'s own key and no other."""
    if wrapped is None:
        wrapped = RfiKey.objects.filter(rfi=rfi, country_id=country_code).first()
    if wrapped is None:
        raise Unreadable.of_rfi(rfi, country_code, "no_key")
    try:
        kek = key_version(country_code, wrapped.kek_version)
        aad = rfi_key_aad(rfi.pk, country_code, wrapped.kek_version)
        return unwrap_key(kek, bytes(wrapped.wrapped_key), aad=aad)
    except DecryptionError:
        raise Unreadable.of_rfi(rfi, country_code, "key_does_not_open") from None


def wrapped_key_rewrapped(key: ItemKey | RfiKey, old_kek: bytes, new_version: int, new_kek: bytes) -> bool:
    """Move one wrapped data key from its country's old key to ``new_kek`` (version ``new_version``), never opening
    content; False (and the row unchanged) when it does not unwrap with the old key."""
    aad_of = rfi_key_aad if isinstance(key, RfiKey) else item_key_aad
    owner_id = key.rfi_id if isinstance(key, RfiKey) else key.item_id
    try:
        data_key = unwrap_key(old_kek, bytes(key.wrapped_key), aad=aad_of(owner_id, key.country_id, key.kek_version))
    except DecryptionError:
        return False
    key.kek_version = new_version
    key.wrapped_key = wrap_key(new_kek, data_key, aad=aad_of(owner_id, key.country_id, new_version))
    return True


# --- secrets under the master key -------------------------------------------------------------------------------


def webhook_secret_sealed(agency_id: int, secret: str) -> tuple[int, bytes]:
    """An agency's webhook signing secret sealed under the master key for storing: (master key version, sealed).
    Call inside the transaction that stores both."""
    return master_wrap(secret.encode("ascii"), aad=_webhook_secret_aad(agency_id))


def webhook_secret_opened(agency_id: int, master_version: int, secret_sealed: bytes) -> bytes:
    return master_unwrap(master_version, bytes(secret_sealed), aad=_webhook_secret_aad(agency_id))


def webhook_secret_aad(webhook: Any) -> bytes:
    """The associated data of a webhook's sealed secret (a master key rotation re-wraps it under it)."""
    return _webhook_secret_aad(webhook.agency_id)


def item_text_open(data_key: bytes, item: Item, country_code: str, ciphertext: bytes, *, aad: bytes, what: str) -> str:
    """Open one text sealed under the item's data key; inside a ``fails_closed`` service."""
    failure = Unreadable.of_item(item, country_code, f"{what}_does_not_open")
    return opened_text(data_key, ciphertext, aad=aad, failure=failure)


def item_field_open(data_key: bytes, item: Item, field_name: str, country_code: str) -> str:
    """An item's ``title`` or ``body``, opened for ``country_code``."""
    ciphertext = item.title_sealed if field_name == "title" else item.body_sealed
    aad = item_field_aad(item.pk, field_name, item.content_version)
    failure = Unreadable.of_item(item, country_code, f"{field_name}_does_not_open")
    return opened_text(data_key, ciphertext, aad=aad, failure=failure)
