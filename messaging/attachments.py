"""What an attachment is, judged from its bytes (never from its name), and a file name safe to hand back.

Allowed types are those border liaison officers actually exchange and that do not execute when opened: PDF,
photographs (JPEG, PNG, GIF, WebP, HEIC, TIFF), office documents (DOCX, XLSX, PPTX and their OpenDocument
equivalents) and plain UTF-8 text (CSV, notes). Archives (ZIP, RAR, 7z) are refused: their contents cannot be
checked here. Legacy binary Office files (DOC, XLS, PPT) are refused: they carry macros.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import filetype

from messaging.models import FILENAME_MAX_LENGTH

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
