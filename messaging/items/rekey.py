"""Re-sealing an item: removing countries (crypto-shredding), correcting the text, and re-keying."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.db import transaction

from messaging.core.sealing import (
    Unreadable,
    ack_note_aad,
    attachment_aad,
    attachment_name_aad,
    consent_text_aad,
    data_key_new,
    decrypt_failure_record,
    forward_reason_aad,
    item_data_key,
    item_field_aad,
    item_field_open,
    item_keys_wrapped,
    opened,
    primary_keks,
    resealed,
    sealed,
)
from messaging.matching.entities import CheckedEntity, entities_replace, entities_reseal
from messaging.models import (
    Acknowledgement,
    Attachment,
    ConsentRequest,
    Forward,
    Item,
    ItemKey,
)
from messaging.selectors.items import released_countries

if TYPE_CHECKING:
    from typing import TypeAlias

    from django.contrib.auth.models import AbstractBaseUser

    Actor: TypeAlias = AbstractBaseUser
from typing import TYPE_CHECKING

from messaging.sharing.reach import countries_remove

if TYPE_CHECKING:
    from typing import TypeAlias

    from django.contrib.auth.models import AbstractBaseUser

    Actor: TypeAlias = AbstractBaseUser


def countries_shred(item: Item, country_codes: Iterable[str], *, actor: Actor | None) -> list[str]:
    """Remove these countries from the item: grants, agency restrictions, named people and wrapped keys; then
    re-key the item, so that a removed country's wrapped key, even if a copy survives somewhere, opens nothing."""
    codes = sorted(set(country_codes))
    if not codes:
        return []
    countries_remove(item, codes)
    try:
        with transaction.atomic():  # a savepoint: no attachment may stay sealed under a key that was not kept
            item_reseal(item, rekey=True)
    except Unreadable as failure:
        # Deleting the wrapped keys has already cut the countries off; a broken item must not block that.
        decrypt_failure_record(actor, failure, during="shred")
    else:
        item.save(update_fields=["title_sealed", "body_sealed", "updated_at"])
    return codes


def item_reseal(
    item: Item,
    *,
    title: str | None = None,
    body: str | None = None,
    entities: list[CheckedEntity] | None = None,
    new_version: bool = False,
    rekey: bool = False,
) -> None:
    """Open title, body, entities and attachments with the originator's key and seal them again (the caller saves
    the item).

    ``new_version``: a correction; everything moves to the next content version, since the associated data names
    the version and older ciphertexts must not stay valid. ``entities``, when given, replace the item's entities
    (and their match tokens). ``rekey``: a fresh data key, wrapped only for the countries still granted; the old
    wrapped keys are deleted.
    """
    old_key = item_data_key(item, item.originator_country)
    data_key = data_key_new() if rekey else old_key
    old_version = item.content_version
    version = old_version + 1 if new_version else old_version
    title = title if title is not None else item_field_open(old_key, item, "title", item.originator_country)
    body = body if body is not None else item_field_open(old_key, item, "body", item.originator_country)
    for attachment_id in item.attachments.values_list("pk", flat=True):
        attachment = Attachment.objects.select_for_update().get(pk=attachment_id)
        failure = Unreadable.of_item(item, item.originator_country, "attachment_does_not_open")
        content_aad = attachment_aad(item.pk, attachment.pk, old_version)
        content = opened(old_key, attachment.content_sealed, aad=content_aad, failure=failure)
        name_aad = attachment_name_aad(item.pk, attachment.pk, old_version)
        name = opened(old_key, attachment.filename_sealed, aad=name_aad, failure=failure)
        attachment.content_sealed = sealed(data_key, content, aad=attachment_aad(item.pk, attachment.pk, version))
        attachment.filename_sealed = sealed(data_key, name, aad=attachment_name_aad(item.pk, attachment.pk, version))
        attachment.save(update_fields=["content_sealed", "filename_sealed"])
    if rekey:
        _reseal_sealed_texts(item, old_key, data_key)
    if entities is not None:
        entities_replace(item, data_key, entities, version=version)
    elif rekey or new_version:
        entities_reseal(item, old_key, data_key, old_version=old_version, version=version)
    item.content_version = version
    item.title_sealed = sealed(data_key, title, aad=item_field_aad(item.pk, "title", version))
    item.body_sealed = sealed(data_key, body, aad=item_field_aad(item.pk, "body", version))
    if rekey:
        ItemKey.objects.filter(item=item).delete()
        ItemKey.objects.bulk_create(item_keys_wrapped(item.pk, data_key, primary_keks(released_countries(item))))


def _reseal_sealed_texts(item: Item, old_key: bytes, data_key: bytes) -> None:
    """A re-key must carry along every text sealed under the item's data key (acknowledgement notes, forward
    reasons, consent justifications and decline reasons), or the sides could no longer open them."""

    def moved(ciphertext: bytes, *, aad: bytes, what: str) -> bytes:
        failure = Unreadable.of_item(item, item.originator_country, f"{what}_does_not_open")
        return resealed(old_key, data_key, ciphertext, aad=aad, failure=failure)

    for ack in Acknowledgement.objects.select_for_update().filter(item=item, note_text_sealed__isnull=False):
        aad = ack_note_aad(item.pk, ack.agency_id)
        ack.note_text_sealed = moved(ack.note_text_sealed, aad=aad, what="acknowledgement_note")
        ack.save(update_fields=["note_text_sealed"])
    for forward in Forward.objects.select_for_update().filter(item=item):
        aad = forward_reason_aad(item.pk, forward.pk)
        forward.reason_sealed = moved(forward.reason_sealed, aad=aad, what="forward_reason")
        forward.save(update_fields=["reason_sealed"])
    for consent in ConsentRequest.objects.select_for_update().filter(item=item):
        for field_name in ("justification", "decline_reason"):
            text = getattr(consent, f"{field_name}_sealed")
            if text is not None:
                aad = consent_text_aad(item.pk, consent.pk, field_name)
                setattr(consent, f"{field_name}_sealed", moved(text, aad=aad, what=f"consent_{field_name}"))
        consent.save(update_fields=["justification_sealed", "decline_reason_sealed"])
