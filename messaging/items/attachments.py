"""Attachments: added by the originator, sealed like the text, opened for readers.

What an attachment is, judged from its bytes (never from its name), and a file name safe to hand back.

Allowed types are those border liaison officers actually exchange and that do not execute when opened: PDF,
photographs (JPEG, PNG, GIF, WebP, HEIC, TIFF), office documents (DOCX, XLSX, PPTX and their OpenDocument
equivalents) and plain UTF-8 text (CSV, notes). Archives (ZIP, RAR, 7z, tar, gzip) are refused: their contents
cannot be checked here. Legacy binary Office files (DOC, XLS, PPT) are refused: they carry macros. Office documents
are zip packages, and ``messaging.items.packages`` checks them whole: their parts, nothing active inside, zip safety.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import filetype
from django.conf import settings
from django.db import transaction

from audit.services import record
from isn.errors import Conflict, InvalidInput, NotFound
from messaging.core.sealing import (
    Unreadable,
    attachment_aad,
    attachment_name_aad,
    fails_closed,
    item_data_key,
    opened,
    opened_text,
    sealed,
)
from messaging.items.packages import check_package
from messaging.models import (
    FILENAME_MAX_LENGTH,
    Attachment,
    Item,
    ItemStatus,
)
from messaging.selectors.items import (
    item_get,
    item_get_as_originator,
    reader_required,
)

if TYPE_CHECKING:
    from typing import TypeAlias

    from django.contrib.auth.models import AbstractBaseUser

    Actor: TypeAlias = AbstractBaseUser

# MIME type as detected by ``filetype`` -> the extension a saved copy should carry.
ALLOWED_TYPES: dict[str, str] = {
    "application/pdf": "pdf",
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/heic": "heic",
    "image/tiff": "tif",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/vnd.oasis.opendocument.text": "odt",
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "application/vnd.oasis.opendocument.presentation": "odp",
}
TEXT_TYPE = "text/plain; charset=utf-8"
_EXTENSION_ALIASES = {"jpg": {"jpg", "jpeg"}, "tif": {"tif", "tiff"}, "txt": {"txt", "csv", "text", "md", "log"}}


@dataclass(frozen=True)
class SniffedType:
    content_type: str
    extension: str


def sniff(content: bytes) -> SniffedType | None:
    """The allowed type of ``content`` from its magic bytes, or None when it is not one we accept."""
    kind = filetype.guess(content)
    if kind is not None:
        extension = ALLOWED_TYPES.get(kind.mime)
        return SniffedType(kind.mime, extension) if extension else None
    # No magic number: accept it only as text, and only when it is honest UTF-8 text.
    if b"\x00" in content:
        return None
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return SniffedType(TEXT_TYPE, "txt")


_PATH_SEPARATORS = re.compile(r"[/\\]")
_SPACES = re.compile(r"\s+")


def _is_unsafe_character(char: str) -> bool:
    # Cc: control characters; Cf: format characters such as U+202E, which turns "gpj.exe" into "exe.jpg" on screen;
    # Zl/Zp: line and paragraph separators.
    return unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"}


def safe_filename(name: str, sniffed: SniffedType) -> str:
    """The last path component, without control or format characters, at most 200 characters, and ending in an
    extension that matches the content (so the receiving computer opens it as what it really is)."""
    base = _PATH_SEPARATORS.split(unicodedata.normalize("NFC", name or ""))[-1]
    base = "".join(" " if _is_unsafe_character(char) else char for char in base)
    base = _SPACES.sub(" ", base).strip().lstrip(".").strip()
    stem, dot, extension = base.rpartition(".")
    if not dot:
        stem, extension = base, ""
    if extension.lower() not in _EXTENSION_ALIASES.get(sniffed.extension, {sniffed.extension}):
        stem, extension = base, sniffed.extension
    stem = stem or "attachment"
    suffix = f".{extension}"
    return stem[: FILENAME_MAX_LENGTH - len(suffix)].rstrip() + suffix


@dataclass(frozen=True)
class AttachmentSummary:
    id: uuid.UUID
    filename: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime


@dataclass(frozen=True)
class AttachmentFile:
    attachment_id: uuid.UUID
    filename: str
    content_type: str
    content: bytes
    sha256: str


def attachment_summaries(item: Item, data_key: bytes, country_code: str) -> list[AttachmentSummary]:
    summaries = []
    for attachment in item.attachments.defer("content_sealed"):
        filename = opened_text(
            data_key,
            attachment.filename_sealed,
            aad=attachment_name_aad(item.pk, attachment.pk, item.content_version),
            failure=Unreadable.of_item(item, country_code, "attachment_name_does_not_open"),
        )
        summaries.append(
            AttachmentSummary(
                id=attachment.pk,
                filename=filename,
                content_type=attachment.content_type,
                size=attachment.size,
                sha256=attachment.sha256,
                created_at=attachment.created_at,
            )
        )
    return summaries


@fails_closed
@transaction.atomic
def attachment_add(*, actor: Actor, item_id: object, filename: str, content: bytes) -> AttachmentSummary:
    """The originator attaches a file; its type is judged from its bytes and it is sealed like the text."""
    item = item_get_as_originator(actor, item_id=item_id, for_update=True)
    if item.status != ItemStatus.ACTIVE:
        raise Conflict(f"This item is {item.status}; nothing more can be attached.")
    limit = settings.ISN_ATTACHMENT_MAX_BYTES
    if not content:
        raise InvalidInput("The attachment is empty.")
    if len(content) > limit:
        raise InvalidInput(f"The attachment is larger than the limit of {limit} bytes.")
    if item.attachments.count() >= settings.ISN_ATTACHMENTS_PER_ITEM:
        raise InvalidInput(f"An item can have at most {settings.ISN_ATTACHMENTS_PER_ITEM} attachments.")
    sniffed = sniff(content)
    if sniffed is None:
        raise InvalidInput(
            "This kind of file is not accepted (judged from its content, not its name). Accepted: PDF, JPEG, PNG, "
            "GIF, WebP, HEIC, TIFF, DOCX, XLSX, PPTX, ODT, ODS, ODP and plain UTF-8 text. Archives (ZIP, RAR, 7z, "
            "tar, gzip) are not accepted, their contents cannot be checked: attach the files inside one by one. An "
            "office document refused here is damaged or not what its name says: save it again, or attach it as PDF."
        )
    check_package(content, sniffed.content_type)
    name = safe_filename(filename, sniffed)
    data_key = item_data_key(item, item.originator_country)
    attachment_id = uuid.uuid4()
    attachment = Attachment.objects.create(
        id=attachment_id,
        item=item,
        filename_sealed=sealed(data_key, name, aad=attachment_name_aad(item.pk, attachment_id, item.content_version)),
        content_type=sniffed.content_type,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        content_sealed=sealed(data_key, content, aad=attachment_aad(item.pk, attachment_id, item.content_version)),
        uploaded_by=actor,
    )
    record(
        action="messaging.attachment.add",
        actor=actor,
        target=item,
        target_country=item.originator_country,
        details={"attachment_id": str(attachment_id), "content_type": sniffed.content_type, "size": len(content)},
    )
    return AttachmentSummary(
        id=attachment.pk,
        filename=name,
        content_type=attachment.content_type,
        size=attachment.size,
        sha256=attachment.sha256,
        created_at=attachment.created_at,
    )


@fails_closed
@transaction.atomic
def attachment_download(*, actor: Actor, item_id: object, attachment_id: object) -> AttachmentFile:
    """Open one attachment with the viewer's own country's key; recorded as ``messaging.attachment.download``."""
    reader = reader_required(actor)
    item = item_get(reader, item_id=item_id)
    try:
        wanted = uuid.UUID(str(attachment_id))
    except ValueError:
        raise NotFound("No such attachment.") from None
    attachment = Attachment.objects.filter(item=item, pk=wanted).first()
    if attachment is None:
        raise NotFound("No such attachment.")
    country_code = reader.country
    data_key = item_data_key(item, country_code)
    failure = Unreadable.of_item(item, country_code, "attachment_does_not_open")
    content = opened(
        data_key,
        attachment.content_sealed,
        aad=attachment_aad(item.pk, attachment.pk, item.content_version),
        failure=failure,
    )
    name = opened_text(
        data_key,
        attachment.filename_sealed,
        aad=attachment_name_aad(item.pk, attachment.pk, item.content_version),
        failure=failure,
    )
    if hashlib.sha256(content).hexdigest() != attachment.sha256:
        raise Unreadable.of_item(item, country_code, "attachment_digest_mismatch")
    record(
        action="messaging.attachment.download",
        actor=actor,
        target=item,
        target_country=item.originator_country,
        details={"attachment_id": str(attachment.pk)},
    )
    return AttachmentFile(
        attachment_id=attachment.pk,
        filename=name,
        content_type=attachment.content_type,
        content=content,
        sha256=attachment.sha256,
    )
