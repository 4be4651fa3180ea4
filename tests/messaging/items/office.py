"""Office documents built in the tests: minimal valid packages, and the hostile ones ISN must refuse.

An Office Open XML package (DOCX, XLSX, PPTX) is a zip holding ``[Content_Types].xml``, ``_rels/.rels`` and the
main part; an OpenDocument package (ODT, ODS, ODP) starts with a stored ``mimetype`` entry, then ``content.xml``
and ``META-INF/manifest.xml``.
"""

from __future__ import annotations

import io
import warnings
import zipfile

OOXML = {
    "docx": ("word/document.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"),
    "xlsx": ("xl/workbook.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"),
    "pptx": (
        "ppt/presentation.xml",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
    ),
}
ODF = {
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "odp": "application/vnd.oasis.opendocument.presentation",
}
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48 + b"This program cannot be run"
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504
RELS_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
OFFICE_DOCUMENT = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"


def content_types(main: str, main_type: str, *extra: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/{main}" ContentType="{main_type}"/>' + "".join(extra) + "</Types>"
    )


def relationships(*relationships: str) -> str:
    return f'<?xml version="1.0"?><Relationships xmlns="{RELS_NS}">{"".join(relationships)}</Relationships>'


def ooxml(
    kind: str = "docx",
    *,
    parts: dict[str, bytes | str] | None = None,
    main_type: str | None = None,
    extra_types: tuple[str, ...] = (),
    leave_out: tuple[str, ...] = (),
) -> bytes:
    """A minimal package of ``kind`` that Word, Excel or PowerPoint opens, with ``parts`` added or replaced."""
    main, default_type = OOXML[kind]
    entries: dict[str, bytes | str] = {
        "[Content_Types].xml": content_types(main, main_type or default_type, *extra_types),
        "_rels/.rels": relationships(f'<Relationship Id="rId1" Type="{OFFICE_DOCUMENT}" Target="{main}"/>'),
        main: '<?xml version="1.0" encoding="UTF-8"?><document/>',
    }
    entries.update(parts or {})
    return package(*((name, data) for name, data in entries.items() if name not in leave_out))


def odf(
    kind: str = "odt",
    *,
    mimetype: str | None = None,
    parts: dict[str, bytes | str] | None = None,
    leave_out: tuple[str, ...] = (),
    mimetype_compressed: bool = False,
) -> bytes:
    """A minimal OpenDocument package of ``kind`` with its ``mimetype`` first and stored."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if "mimetype" not in leave_out:
            compression = zipfile.ZIP_DEFLATED if mimetype_compressed else zipfile.ZIP_STORED
            archive.writestr("mimetype", mimetype if mimetype is not None else ODF[kind], compress_type=compression)
        entries: dict[str, bytes | str] = {
            "content.xml": '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
            'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"/>',
            "META-INF/manifest.xml": '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
            'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
            '<manifest:file-entry manifest:full-path="/" manifest:media-type="'
            'application/vnd.oasis.opendocument.text"/>'
            '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
            "</manifest:manifest>",
        }
        entries.update(parts or {})
        for name, data in entries.items():
            if name not in leave_out:
                archive.writestr(name, data)
    return buffer.getvalue()


def package(*entries: tuple[str, bytes | str]) -> bytes:
    """A zip of ``entries`` in this order, deflated (a name may repeat)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": wanted here
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()
