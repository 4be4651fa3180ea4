"""Office documents are zip packages: what an attachment of such a type must hold, and what it must not.

A magic-number check only reads the first entry's name, so any zip whose first entry is ``word/document.xml`` passes
as a DOCX. Here the whole package is opened (standard library ``zipfile`` and ``expat`` only) and refused unless:

- it is a safe zip: every entry stays inside the document (no absolute path, drive letter or ``..``), no name twice,
  nothing encrypted, at most ``MAX_ENTRIES`` entries unpacking to at most ``MAX_UNPACKED_BYTES`` in all, no entry
  over ``RATIO_GRACE_BYTES`` compressed more than ``MAX_RATIO`` times (zip bombs), and every entry unpacks to
  exactly its declared size and checksum;
- it has the parts of its kind: ``[Content_Types].xml`` and the main part declared with the main type of its kind
  (Office Open XML), or ``mimetype`` first, stored, naming exactly its kind, then ``content.xml`` and
  ``META-INF/manifest.xml`` (OpenDocument);
- nothing inside is active: no macros (VBA projects, macro-enabled or macro-sheet types, OpenDocument ``Basic/`` and
  ``Scripts/``), no ActiveX controls or OLE objects, no programs, scripts, web pages or archives (judged by name and
  by the first bytes of every entry), no picture with scripts (SVG), no DTD in the XML read here, and no
  relationship that fetches something from outside the document when it is opened (remote templates, tracking
  pictures), no dynamic data exchange (DDE: Word field codes, Excel formulas or OpenDocument links that start a
  program), no workbook links or data connections to outside sources; links a reader clicks (hyperlinks) stay.

Embedded DOCX, XLSX and PPTX parts (a chart's data is an embedded workbook) are checked the same way, one level deep.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from xml.parsers import expat

from isn.errors import InvalidInput

MAX_ENTRIES = 1000
MAX_UNPACKED_BYTES = 100 * 2**20
MAX_RATIO = 100
RATIO_GRACE_BYTES = 100 * 2**10  # small parts may compress well without harm; their total is bounded anyway
XML_MAX_BYTES = 10 * 2**20  # the parts parsed here: content types, relationships, manifest, SVG pictures


@dataclass(frozen=True)
class OfficeOpenXml:
    label: str
    main_part: str
    main_type: str


OOXML_KINDS: dict[str, OfficeOpenXml] = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": OfficeOpenXml(
        "DOCX", "word/document.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    ),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": OfficeOpenXml(
        "XLSX", "xl/workbook.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
    ),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": OfficeOpenXml(
        "PPTX",
        "ppt/presentation.xml",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
    ),
}
OPENDOCUMENT_KINDS: dict[str, str] = {
    "application/vnd.oasis.opendocument.text": "ODT",
    "application/vnd.oasis.opendocument.spreadsheet": "ODS",
    "application/vnd.oasis.opendocument.presentation": "ODP",
}
_NESTED_KINDS = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}

# Entries refused by extension. Programs and libraries (Windows, Linux, macOS, Java, Android), scripts any system runs
# on a double click, shortcuts and settings files that run or fetch things, web pages (script runs in the browser that
# opens an extracted part; Word's altChunk imports HTML and MHT), and disk images that mount and run.
EXECUTABLE_EXTENSIONS = frozenset(
    {
        *("exe", "dll", "com", "scr", "pif", "cpl", "msi", "msp", "msc", "sys", "drv", "ocx", "efi", "elf", "so"),
        *("dylib", "jar", "class", "apk", "app", "dmg", "pkg", "deb", "rpm"),
        *("bat", "cmd", "ps1", "psm1", "psd1", "vbs", "vbe", "js", "jse", "mjs", "wsf", "wsh", "wsc", "sct", "hta"),
        *("sh", "bash", "zsh", "csh", "ksh", "py", "pyw", "pl", "rb", "php", "lua"),
        *("lnk", "url", "scf", "inf", "reg", "iqy", "slk", "appref-ms", "settingcontent-ms", "library-ms"),
        *("search-ms", "html", "htm", "xhtml", "xht", "shtml", "mht", "mhtml", "svgz", "xsl", "xslt"),
        *("iso", "img", "vhd", "vhdx"),
    }
)
MACRO_EXTENSIONS = frozenset({"docm", "dotm", "xlsm", "xltm", "xlam", "xlsb", "pptm", "potm", "ppam", "ppsm", "sldm"})
MACRO_EXTENSIONS |= {"odb"}  # a LibreOffice Base database carries its macros and queries
ARCHIVE_EXTENSIONS = frozenset({"zip", "7z", "rar", "tar", "gz", "tgz", "bz2", "xz", "zst", "cab", "arj", "lzh", "ace"})
# Content types declared in [Content_Types].xml that mean macros, or controls and objects that run code.
MACRO_TYPE_MARKERS = ("macroenabled", "vbaproject", "vbadata", "macrosheet", "intlmacrosheet", "attachedtoolbars")
ACTIVE_TYPE_MARKERS = ("activex", "oleobject", "keymapcustomizations", "x-msdownload", "javascript", "html")

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "object"),  # OLE compound file: an embedded object, or an old Office file
    (b"MZ", "program"),
    (b"\x7fELF", "program"),
    (b"\xfe\xed\xfa\xce", "program"),
    (b"\xfe\xed\xfa\xcf", "program"),
    (b"\xce\xfa\xed\xfe", "program"),
    (b"\xcf\xfa\xed\xfe", "program"),
    (b"\xca\xfe\xba\xbe", "program"),  # macOS universal program, or Java class
    (b"#!", "program"),
    (b"PK\x03\x04", "archive"),
    (b"Rar!\x1a\x07", "archive"),
    (b"7z\xbc\xaf\x27\x1c", "archive"),
    (b"\x1f\x8b", "archive"),
    (b"MSCF", "archive"),
)
_DRIVE = re.compile(r"^[A-Za-z]:")
_CHUNK = 64 * 2**10

_AS_PDF = "or attach it as PDF"
_SAVE_AGAIN = f"Save it again from the office program, {_AS_PDF}."


def _refuse(message: str) -> InvalidInput:
    return InvalidInput(f"This document is refused: {message}")


def _macros(name: str) -> InvalidInput:
    return _refuse(
        f"it contains macros ('{name}'). Save it as a document without macros (DOCX, XLSX, PPTX, ODT, ODS or ODP) "
        f"and attach it again, {_AS_PDF}."
    )


def _runnable(name: str) -> InvalidInput:
    return _refuse(
        f"it carries a file that could run on the reader's computer ('{name}'). Remove it from the document and "
        f"attach it again, {_AS_PDF}."
    )


def _embedded_object(name: str) -> InvalidInput:
    return _refuse(
        f"it contains an embedded object or control (ActiveX or OLE: '{name}') whose content cannot be checked. "
        f"Remove it, or paste it in as a picture, and attach the document again, {_AS_PDF}."
    )


def _archive(name: str) -> InvalidInput:
    return _refuse(
        f"it carries an archive or another document ('{name}') whose contents cannot be checked. Remove it, or "
        "attach that file on its own."
    )


def _damaged(label: str, embedded: str = "") -> InvalidInput:
    what = f"its embedded part '{embedded}'" if embedded else "it"
    return _refuse(f"{what} could not be opened as {label} (damaged, or not what its name says). {_SAVE_AGAIN}")


def _missing(label: str, part: str) -> InvalidInput:
    return _refuse(f"it is incomplete: this {label} document lacks '{part}'. {_SAVE_AGAIN}")


def check_package(content: bytes, content_type: str) -> None:
    """Raise ``InvalidInput`` naming the reason when an office document of ``content_type`` is unsafe or not whole;
    any other type passes untouched."""
    if content_type in OOXML_KINDS or content_type in OPENDOCUMENT_KINDS:
        _Package(content, content_type, prefix="", budget=[MAX_UNPACKED_BYTES]).check()


class _Package:
    def __init__(self, content: bytes, content_type: str, *, prefix: str, budget: list[int]) -> None:
        self.content = content
        self.ooxml = OOXML_KINDS.get(content_type)
        self.content_type = content_type
        self.label = self.ooxml.label if self.ooxml else OPENDOCUMENT_KINDS[content_type]
        self.prefix = prefix  # the path of an embedded package inside the outer one, for messages
        self.budget = budget  # bytes still allowed to unpack, shared with embedded packages

    def check(self) -> None:
        try:
            with zipfile.ZipFile(io.BytesIO(self.content)) as archive:
                self._check(archive)
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            zlib.error,
            struct.error,
            NotImplementedError,
            EOFError,
            OSError,
            ValueError,
        ) as error:
            raise _damaged(self.label, self.prefix.rstrip("/")) from error

    def _check(self, archive: zipfile.ZipFile) -> None:
        entries = archive.infolist()
        self._check_zip(entries)
        names = {entry.filename for entry in entries}
        for entry in entries:
            self._check_name(entry.filename)
        if self.ooxml:
            self._check_ooxml(archive, names, self.ooxml)
        else:
            self._check_opendocument(archive, entries, names)
        for entry in entries:
            self._check_content(archive, entry)

    def _where(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def _check_zip(self, entries: list[zipfile.ZipInfo]) -> None:
        if len(entries) > MAX_ENTRIES:
            raise _refuse(f"it has more than {MAX_ENTRIES} parts. Split it into smaller documents, {_AS_PDF}.")
        if not entries or min(entry.header_offset for entry in entries) != 0:
            # Bytes before the first entry: another reader could see another package than the one checked here.
            raise _damaged(self.label, self.prefix.rstrip("/"))
        seen: set[str] = set()
        declared = 0
        for entry in entries:
            name = entry.filename
            parts = name.replace("\\", "/").split("/")
            if name.startswith(("/", "\\")) or _DRIVE.match(name) or ".." in parts:
                raise _refuse(
                    f"its part '{self._where(name)}' would be unpacked outside the document (a path-traversal "
                    f"trick). {_SAVE_AGAIN}"
                )
            if name.casefold() in seen:
                raise _refuse(f"it holds the part '{self._where(name)}' twice. {_SAVE_AGAIN}")
            seen.add(name.casefold())
            if entry.flag_bits & 0x1:
                raise _password()
            declared += entry.file_size
            if entry.file_size > RATIO_GRACE_BYTES and entry.file_size > MAX_RATIO * max(entry.compress_size, 1):
                raise _refuse(
                    f"its part '{self._where(name)}' is compressed more than {MAX_RATIO} times (the mark of a zip "
                    f"bomb). {_SAVE_AGAIN}"
                )
        if declared > self.budget[0]:
            raise _too_big()

    def _check_name(self, name: str) -> None:
        where = self._where(name)
        folders, _, base = name.replace("\\", "/").casefold().rpartition("/")
        extension = base.rpartition(".")[2] if "." in base else ""
        if base.startswith(("vbaproject", "vbadata")) or extension in MACRO_EXTENSIONS:
            raise _macros(where)
        if self.ooxml is None and folders.split("/")[0] in {"basic", "scripts"}:
            raise _macros(where)
        if extension in EXECUTABLE_EXTENSIONS:
            raise _runnable(where)
        if extension in ARCHIVE_EXTENSIONS:
            raise _archive(where)
        if "activex" in folders.split("/"):
            raise _embedded_object(where)
        if self.ooxml is not None and (folders.endswith("externallinks") or base == "connections.xml"):
            raise _outside_data(where)
        # Excel and Word save printer settings as .bin; any other .bin part is a binary object nobody can check here.
        if extension == "bin" and not folders.endswith("printersettings"):
            raise _embedded_object(where)

    def _check_ooxml(self, archive: zipfile.ZipFile, names: set[str], kind: OfficeOpenXml) -> None:
        if "[Content_Types].xml" not in names:
            raise _missing(kind.label, "[Content_Types].xml")
        defaults: dict[str, str] = {}
        overrides: dict[str, str] = {}
        for tag, attributes in self._xml(archive, "[Content_Types].xml"):
            declared = attributes.get("ContentType", "")
            lowered = declared.casefold()
            if any(marker in lowered for marker in MACRO_TYPE_MARKERS):
                raise _macros(self._where(f"[Content_Types].xml: {declared}"))
            if any(marker in lowered for marker in ACTIVE_TYPE_MARKERS):
                raise _embedded_object(self._where(f"[Content_Types].xml: {declared}"))
            if tag == "Default":
                defaults[attributes.get("Extension", "").casefold()] = declared
            elif tag == "Override":
                overrides[attributes.get("PartName", "").lstrip("/").casefold()] = declared
        main = kind.main_part
        if main not in names:
            raise _missing(kind.label, main)
        declared = overrides.get(main.casefold(), defaults.get("xml", ""))
        if declared != kind.main_type:
            raise _refuse(
                f"it is not really {kind.label}: its main part '{self._where(main)}' is declared as "
                f"'{declared or 'nothing'}'. {_SAVE_AGAIN}"
            )
        for name in sorted(names):
            if name.casefold().endswith(".rels"):
                self._check_relationships(archive, name)

    def _check_relationships(self, archive: zipfile.ZipFile, name: str) -> None:
        for tag, attributes in self._xml(archive, name):
            if tag != "Relationship" or attributes.get("TargetMode", "").casefold() != "external":
                continue
            if not attributes.get("Type", "").endswith("/hyperlink"):
                target = attributes.get("Target", "")[:200]
                raise _refuse(
                    f"it fetches something from outside itself when opened ('{target}' in '{self._where(name)}'), "
                    "which would tell whoever runs that address when and where it is read. Remove the linked "
                    f"picture, template or object (keep links a reader clicks), and attach it again, {_AS_PDF}."
                )

    def _check_opendocument(self, archive: zipfile.ZipFile, entries: list[zipfile.ZipInfo], names: set[str]) -> None:
        first = entries[0]
        if (
            first.filename != "mimetype"
            or first.header_offset != 0
            or first.compress_type != zipfile.ZIP_STORED
            or archive.read(first) != self.content_type.encode("ascii")
        ):
            raise _refuse(
                f"it is not really {self.label}: its first part must be an uncompressed 'mimetype' saying "
                f"'{self.content_type}'. {_SAVE_AGAIN}"
            )
        for part in ("content.xml", "META-INF/manifest.xml"):
            if part not in names:
                raise _missing(self.label, part)
        if any(tag == "encryption-data" for tag, _ in self._xml(archive, "META-INF/manifest.xml")):
            raise _password()

    def _check_content(self, archive: zipfile.ZipFile, entry: zipfile.ZipInfo) -> None:
        where = self._where(entry.filename)
        head = b""
        kept = bytearray()
        nested_kind = _NESTED_KINDS.get(entry.filename.rpartition(".")[2].casefold())
        is_svg = entry.filename.casefold().endswith(".svg")
        dde = self._dde_reader(entry.filename)
        with archive.open(entry) as stream:
            # Reading to the end makes zipfile compare the size and checksum with what the directory declares.
            while chunk := stream.read(_CHUNK):
                self.budget[0] -= len(chunk)
                if self.budget[0] < 0:
                    raise _too_big()
                if not head:
                    head = chunk[:16]
                    self._check_magic(head, where, nested=nested_kind is not None)
                if nested_kind or is_svg or dde:
                    kept += chunk
        if nested_kind:
            if self.prefix:
                raise _archive(where)  # one level of embedding is what Office writes; deeper is not checked
            _Package(bytes(kept), nested_kind, prefix=f"{where}/", budget=self.budget).check()
        elif is_svg:
            self._check_svg(bytes(kept), where)
        elif dde:
            dde(bytes(kept), where)

    def _dde_reader(self, name: str) -> Callable[[bytes, str], None] | None:
        """The check for dynamic data exchange in this part, when it is a part that can carry it."""
        lowered = name.casefold()
        if self.ooxml is None:
            return _check_opendocument_dde if lowered in {"content.xml", "styles.xml"} else None
        if lowered.startswith("word/") and lowered.endswith(".xml") and lowered.count("/") == 1:
            return _check_word_fields
        if lowered.startswith("xl/worksheets/") and lowered.endswith(".xml"):
            return _check_excel_formulas
        return None

    def _check_magic(self, head: bytes, where: str, *, nested: bool) -> None:
        for magic, kind in _MAGIC:
            if head.startswith(magic):
                if kind == "object":
                    raise _embedded_object(where)
                if kind == "program":
                    raise _runnable(where)
                if not (nested and magic == b"PK\x03\x04"):
                    raise _archive(where)

    def _check_svg(self, content: bytes, where: str) -> None:
        for tag, attributes in _xml_elements(content, where):
            scripted = tag.casefold() in {"script", "foreignobject", "handler", "listener"} or any(
                name.casefold().startswith("on") for name in attributes
            )
            hrefs = [value.strip().casefold() for name, value in attributes.items() if name.casefold() == "href"]
            if scripted or any(not href.startswith(("#", "data:image/")) for href in hrefs):
                raise _refuse(
                    f"it contains a picture with scripts or outside links ('{where}'). Replace it with a PNG or JPEG "
                    "picture and attach the document again."
                )

    def _xml(self, archive: zipfile.ZipFile, name: str) -> list[tuple[str, dict[str, str]]]:
        entry = archive.getinfo(name)
        if entry.file_size > XML_MAX_BYTES:
            raise _refuse(f"its part '{self._where(name)}' is too large to check. {_SAVE_AGAIN}")
        return _xml_elements(archive.read(entry), self._where(name))


def _password() -> InvalidInput:
    return _refuse(
        "it is password-protected, so its content cannot be checked. Remove the password and attach it again."
    )


def _too_big() -> InvalidInput:
    return _refuse(
        f"it unpacks to more than {MAX_UNPACKED_BYTES // 2**20} MB (the mark of a zip bomb, or a very large "
        f"document). Split it into smaller documents, {_AS_PDF}."
    )


def _local(name: str) -> str:
    return name.rpartition("}")[2]


def _parse(
    content: bytes,
    where: str,
    *,
    start: Callable[[str, dict[str, str]], None],
    end: Callable[[str], None] | None = None,
    text: Callable[[str], None] | None = None,
) -> None:
    """Parse ``content`` with expat, handing elements (local names, attributes by local name) to ``start`` and
    ``end`` and character data to ``text``; a DTD (entity expansion, external entities) is refused, as Office and
    OpenDocument parts never carry one."""
    if len(content) > XML_MAX_BYTES:
        raise _refuse(f"its part '{where}' is too large to check. {_SAVE_AGAIN}")
    parser = expat.ParserCreate(namespace_separator="}")

    def refuse_dtd(*_: object) -> None:
        raise _refuse(f"its part '{where}' declares a DTD, which office documents never carry. {_SAVE_AGAIN}")

    parser.StartDoctypeDeclHandler = refuse_dtd
    parser.EntityDeclHandler = refuse_dtd
    parser.StartElementHandler = lambda tag, attributes: start(
        _local(tag), {_local(name): value for name, value in attributes.items()}
    )
    if end is not None:
        parser.EndElementHandler = lambda tag: end(_local(tag))
    if text is not None:
        parser.CharacterDataHandler = text
    try:
        parser.Parse(content, True)
    except expat.ExpatError as error:
        raise _refuse(f"its part '{where}' is not well-formed XML. {_SAVE_AGAIN}") from error


def _xml_elements(content: bytes, where: str) -> list[tuple[str, dict[str, str]]]:
    """Every element of ``content`` as (local name, attributes by local name)."""
    elements: list[tuple[str, dict[str, str]]] = []
    _parse(content, where, start=lambda tag, attributes: elements.append((tag, attributes)))
    return elements


def _outside_data(where: str) -> InvalidInput:
    return _refuse(
        f"it links to data outside itself ('{where}': a link to another workbook or a data connection), which is "
        f"fetched when it is opened. Paste the values in instead and attach it again, {_AS_PDF}."
    )


def _dde(where: str) -> InvalidInput:
    return _refuse(
        f"it uses dynamic data exchange (DDE, in '{where}'), which can start a program on the reader's computer. "
        f"Remove that field or formula and attach it again, {_AS_PDF}."
    )


# A DDE call in an Excel formula: an application name, a bar, then a quoted topic (=cmd|'/c calc'!A1).
_DDE_FORMULA = re.compile(r"[\w.]+\s*\|\s*'")


def _texts(content: bytes, where: str, elements: set[str]) -> str:
    """The text inside ``elements``, joined in document order."""
    found: list[str] = []
    depth = [0]

    def start(tag: str, _attributes: dict[str, str]) -> None:
        depth[0] += tag in elements

    def end(tag: str) -> None:
        depth[0] -= tag in elements

    _parse(content, where, start=start, end=end, text=lambda data: found.append(data) if depth[0] else None)
    return "".join(found)


def _check_word_fields(content: bytes, where: str) -> None:
    """Word fields whose instruction is DDE or DDEAUTO: simple fields (``fldSimple``'s ``instr``) and complex ones
    (``instrText`` runs between a ``fldChar`` begin and its separator, which may be split over many runs and nest)."""
    instructions: list[str] = []
    open_fields: list[list[str]] = []
    in_text = [False]

    def start(tag: str, attributes: dict[str, str]) -> None:
        if tag == "fldSimple":
            instructions.append(attributes.get("instr", ""))
        elif tag == "fldChar" and attributes.get("fldCharType") == "begin":
            open_fields.append([])
        elif tag == "fldChar" and attributes.get("fldCharType") in ("separate", "end") and open_fields:
            instructions.append("".join(open_fields.pop()))
        in_text[0] = in_text[0] or tag == "instrText"

    def end(tag: str) -> None:
        in_text[0] = in_text[0] and tag != "instrText"

    def text(data: str) -> None:
        if in_text[0] and open_fields:
            open_fields[-1].append(data)

    _parse(content, where, start=start, end=end, text=text)
    instructions += ["".join(field) for field in open_fields]  # a field never closed is judged too
    for instruction in instructions:
        words = instruction.replace('"', " ").split()
        if words and words[0].upper() in {"DDE", "DDEAUTO"}:
            raise _dde(where)


def _check_excel_formulas(content: bytes, where: str) -> None:
    if _DDE_FORMULA.search(_texts(content, where, {"f"})):
        raise _dde(where)


def _check_opendocument_dde(content: bytes, where: str) -> None:
    """OpenDocument's DDE links and their declarations (``dde-source``, ``dde-link``, ``dde-connection-decl`` ...)."""
    if any(tag.casefold().startswith("dde-") for tag, _ in _xml_elements(content, where)):
        raise _dde(where)
