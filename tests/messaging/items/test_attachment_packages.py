"""Office attachments are checked as packages: the parts they must have, nothing active inside, zip safety."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import AuditEvent
from isn.errors import InvalidInput
from messaging.items import packages
from messaging.items.attachments import attachment_add
from messaging.models import Attachment
from tests.messaging.items.office import EXE, OLE, odf, ooxml, package, relationships

pytestmark = pytest.mark.django_db

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
HYPERLINK = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink"
IMAGE = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/image"
TEMPLATE = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/attachedTemplate"
SVG = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"><rect width="1" height="1"/></svg>'
W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def _word(body: str) -> str:
    return f"<w:document {W}><w:body><w:p>{body}</w:p></w:body></w:document>"


def _complex_field(*instructions: str) -> str:
    """A Word field whose instruction is split over runs, as Word writes (and attackers split it)."""
    runs = "".join(f"<w:r><w:instrText>{text}</w:instrText></w:r>" for text in instructions)
    return f'<w:r><w:fldChar w:fldCharType="begin"/></w:r>{runs}<w:r><w:fldChar w:fldCharType="separate"/></w:r>' + (
        '<w:r><w:t>1</w:t></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r>'
    )


def _sheet(formula: str) -> str:
    return (
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1">'
        f'<c r="A1"><f>{formula}</f></c></row></sheetData></worksheet>'
    )


def _attack() -> bytes:
    """Issue 14's sample: looks like a DOCX to a magic-number check, carries a program, a web page and macros."""
    return package(
        ("word/document.xml", "<document/>"),
        ("payload.exe", EXE),
        ("index.html", "<script>alert(1)</script>"),
        ("word/vbaProject.bin", OLE),
    )


def _bomb() -> bytes:
    return ooxml(parts={"word/document.xml": b"<document>" + b" " * (8 * 2**20) + b"</document>"})


def _plain_zip() -> bytes:
    return package(("notes.txt", "plain text"), ("photo.jpg", b"\xff\xd8\xff\xe0"))


def _tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("notes.txt")
        info.size = 4
        archive.addfile(info, io.BytesIO(b"text"))
    return buffer.getvalue()


ACCEPTED = [
    pytest.param(ooxml("docx"), DOCX, "report.docx", id="docx"),
    pytest.param(
        ooxml("xlsx"), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "sheet.xlsx", id="xlsx"
    ),
    pytest.param(
        ooxml("pptx"),
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "slides.pptx",
        id="pptx",
    ),
    pytest.param(odf("odt"), "application/vnd.oasis.opendocument.text", "report.odt", id="odt"),
    pytest.param(odf("ods"), "application/vnd.oasis.opendocument.spreadsheet", "sheet.ods", id="ods"),
    pytest.param(odf("odp"), "application/vnd.oasis.opendocument.presentation", "slides.odp", id="odp"),
    pytest.param(
        ooxml(
            parts={
                # What Word and Excel write for a chart, printer settings, an icon and a link to a web page.
                "word/embeddings/Microsoft_Excel_Worksheet.xlsx": ooxml("xlsx"),
                "xl/printerSettings/printerSettings1.bin": b"HP LaserJet\x00\x00\x01\x04",
                "word/media/image1.svg": SVG,
                "word/media/image1.png": b"\x89PNG\r\n\x1a\n",
                "word/_rels/document.xml.rels": relationships(
                    f'<Relationship Id="rId9" Type="{HYPERLINK}" Target="https://example.org/" TargetMode="External"/>'
                ),
            }
        ),
        DOCX,
        "chart.docx",
        id="docx-with-chart-printer-settings-icon-and-hyperlink",
    ),
    pytest.param(
        ooxml(
            parts={
                "word/document.xml": _word(
                    _complex_field(" PAGE ") + '<w:fldSimple w:instr=" HYPERLINK &quot;https://hidden.example&quot; "/>'
                )
            }
        ),
        DOCX,
        "fields.docx",
        id="docx-with-page-and-hyperlink-fields",
    ),
    pytest.param(
        ooxml("xlsx", parts={"xl/worksheets/sheet1.xml": _sheet('SUM(B1:B9)&amp;"|\'"')}),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "sums.xlsx",
        id="xlsx-with-formulas",
    ),
]

REFUSED = [
    pytest.param(_attack(), "payload.exe", id="issue-14-attack"),
    pytest.param(
        ooxml(parts={"word/document.xml": _word(_complex_field(' DDEAUTO c:\\windows\\system32\\cmd.exe "/k calc" '))}),
        "DDE",
        id="word-ddeauto-field",
    ),
    pytest.param(
        ooxml(parts={"word/document.xml": _word(_complex_field(" D", "de", 'AUTO cmd.exe "/c calc" '))}),
        "DDE",
        id="word-dde-field-split-over-runs",
    ),
    pytest.param(
        ooxml(parts={"word/header1.xml": _word('<w:fldSimple w:instr="DDE &quot;cmd&quot; &quot;/c calc&quot;"/>')}),
        "DDE",
        id="word-dde-simple-field-in-header",
    ),
    pytest.param(ooxml("xlsx", parts={"xl/worksheets/sheet1.xml": _sheet("cmd|' /C calc'!A0")}), "DDE", id="excel-dde"),
    pytest.param(
        ooxml("xlsx", parts={"xl/externalLinks/externalLink1.xml": "<externalLink/>"}),
        "outside itself",
        id="excel-link-to-another-workbook",
    ),
    pytest.param(
        ooxml("xlsx", parts={"xl/connections.xml": "<connections/>"}), "outside itself", id="excel-data-connection"
    ),
    pytest.param(
        odf(
            "ods",
            parts={
                "content.xml": "<office:document-content"
                ' xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
                ' xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"><office:body><table:dde-links>'
                "<table:dde-link/></table:dde-links></office:body></office:document-content>"
            },
        ),
        "DDE",
        id="opendocument-dde-link",
    ),
    pytest.param(
        ooxml(main_type="application/vnd.ms-word.document.macroEnabled.main+xml"), "macros", id="macro-enabled-type"
    ),
    pytest.param(ooxml(parts={"word/vbaProject.bin": OLE}), "macros", id="vba-project"),
    pytest.param(
        ooxml(
            extra_types=('<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/>',),
            parts={"word/vbaData.xml": "<vbaData/>"},
        ),
        "macros",
        id="vba-content-type",
    ),
    pytest.param(
        ooxml(
            "xlsx",
            extra_types=(
                '<Override PartName="/xl/macrosheets/sheet1.xml" '
                'ContentType="application/vnd.ms-excel.macrosheet+xml"/>',
            ),
            parts={"xl/macrosheets/sheet1.xml": "<xm:macrosheet/>"},
        ),
        "macros",
        id="excel-4-macro-sheet",
    ),
    pytest.param(ooxml(parts={"word/activeX/activeX1.bin": OLE}), "embedded object", id="activex"),
    pytest.param(ooxml(parts={"word/embeddings/oleObject1.bin": OLE}), "embedded object", id="ole-object"),
    pytest.param(ooxml(parts={"word/media/image2.png": OLE}), "embedded object", id="ole-object-named-as-picture"),
    pytest.param(ooxml(parts={"word/media/image2.emf": EXE}), "could run", id="program-named-as-picture"),
    pytest.param(ooxml(parts={"word/run.ps1": "Start-Process calc"}), "could run", id="script"),
    pytest.param(ooxml(parts={"word/afchunk.htm": "<p>hi</p>"}), "could run", id="html-chunk"),
    pytest.param(
        ooxml(parts={"word/media/image1.svg": SVG.replace("<rect", '<rect onclick="alert(1)"')}),
        "scripts",
        id="svg-with-handler",
    ),
    pytest.param(
        ooxml(parts={"word/media/image1.svg": SVG.replace("</svg>", "<script>alert(1)</script></svg>")}),
        "scripts",
        id="svg-with-script",
    ),
    pytest.param(ooxml(parts={"word/embeddings/Book1.xlsm": ooxml("xlsx")}), "macros", id="macro-workbook-embedded"),
    pytest.param(ooxml(parts={"word/embeddings/package.zip": _plain_zip()}), "archive", id="zip-embedded"),
    pytest.param(
        ooxml(parts={"word/media/image1.svg": SVG.replace("<rect", '<image href="https://203.0.113.5/p.png"/><rect')}),
        "outside links",
        id="svg-fetching-a-picture",
    ),
    pytest.param(
        ooxml(parts={"word/embeddings/a.xlsx": ooxml("xlsx", parts={"xl/embeddings/b.docx": ooxml()})}),
        "xl/embeddings/b.docx",
        id="embedded-two-levels-deep",
    ),
    pytest.param(odf(parts={"Object 1": OLE}), "embedded object", id="odf-ole-object"),
    pytest.param(
        ooxml(parts={"word/embeddings/Book1.xlsx": ooxml("xlsx", parts={"xl/vbaProject.bin": OLE})}),
        "macros",
        id="embedded-workbook-with-macros",
    ),
    pytest.param(
        ooxml(
            parts={
                "word/_rels/settings.xml.rels": relationships(
                    f'<Relationship Id="rId1" Type="{TEMPLATE}" Target="http://203.0.113.5/t.dotm" '
                    'TargetMode="External"/>'
                )
            }
        ),
        "outside itself",
        id="remote-template",
    ),
    pytest.param(
        ooxml(
            parts={
                "word/_rels/document.xml.rels": relationships(
                    f'<Relationship Id="rId1" Type="{IMAGE}" Target="https://203.0.113.5/pixel.png" '
                    'TargetMode="External"/>'
                )
            }
        ),
        "outside itself",
        id="tracking-picture",
    ),
    pytest.param(
        ooxml(parts={"[Content_Types].xml": '<!DOCTYPE t [<!ENTITY a "aaaa">]><Types>&a;</Types>'}),
        "DTD",
        id="content-types-with-dtd",
    ),
    pytest.param(ooxml(leave_out=("[Content_Types].xml",)), "[Content_Types].xml", id="no-content-types"),
    pytest.param(
        ooxml(leave_out=("word/document.xml",), parts={"word/styles.xml": "<styles/>"}),
        "word/document.xml",
        id="no-main-part",
    ),
    pytest.param(
        ooxml(main_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"),
        "declared as",
        id="main-part-of-another-kind",
    ),
    pytest.param(odf(mimetype="application/vnd.oasis.opendocument.text-template"), "mimetype", id="odf-template"),
    # A magic-number check no longer sees an OpenDocument file without its stored mimetype: refused as a zip.
    pytest.param(odf(mimetype_compressed=True), "Archives", id="odf-mimetype-compressed"),
    pytest.param(
        package(("mimetype", "application/vnd.oasis.opendocument.text"), ("content.xml", "<x/>")),
        "Archives",
        id="odf-mimetype-deflated-no-manifest",
    ),
    pytest.param(odf(leave_out=("META-INF/manifest.xml",)), "META-INF/manifest.xml", id="odf-no-manifest"),
    pytest.param(odf(leave_out=("content.xml",)), "content.xml", id="odf-no-content"),
    pytest.param(odf(parts={"Basic/Standard/Module1.xml": "<script:module/>"}), "macros", id="odf-basic-macro"),
    pytest.param(odf(parts={"Scripts/python/run.py": "import os"}), "macros", id="odf-python-script"),
    pytest.param(
        odf(
            parts={
                "META-INF/manifest.xml": '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:'
                'xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="content.xml">'
                "<manifest:encryption-data/></manifest:file-entry></manifest:manifest>"
            }
        ),
        "password",
        id="odf-encrypted",
    ),
    pytest.param(_bomb(), "zip bomb", id="bomb-by-ratio"),
    pytest.param(ooxml(parts={"../../../etc/cron.d/isn": "* * * * * root sh"}), "outside the document", id="dotdot"),
    pytest.param(ooxml(parts={"/etc/passwd.xml": "<x/>"}), "outside the document", id="absolute"),
    pytest.param(ooxml(parts={"word\\..\\..\\evil.xml": "<x/>"}), "outside the document", id="backslash-dotdot"),
    pytest.param(ooxml(parts={"C:/Windows/evil.xml": "<x/>"}), "outside the document", id="drive"),
    pytest.param(
        package(
            ("word/document.xml", "<document/>"), ("[Content_Types].xml", "<Types/>"), ("word/document.xml", "<x/>")
        ),
        "twice",
        id="duplicate-entry",
    ),
    pytest.param(_plain_zip(), "Archives", id="plain-zip-named-docx"),
    pytest.param(_tar(), "Archives", id="tar-named-docx"),
    pytest.param(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\x00" * 20, "Archives", id="gzip-named-docx"),
    pytest.param(b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 24, "Archives", id="7z-named-docx"),
    pytest.param(b"Rar!\x1a\x07\x01\x00" + b"\x00" * 24, "Archives", id="rar-named-docx"),
    pytest.param(b"PK\x03\x04" + b"\x00" * 26 + b"word/document.xml" + b"\x00" * 40, "damaged", id="truncated"),
]


@pytest.fixture
def item(post, vn_officer):
    return post(vn_officer).item


@pytest.mark.parametrize(("content", "content_type", "filename"), ACCEPTED)
def test_valid_office_documents_are_accepted(item, vn_officer, content, content_type, filename):
    summary = attachment_add(actor=vn_officer, item_id=item.pk, filename=filename, content=content)
    assert (summary.filename, summary.content_type) == (filename, content_type)
    assert Attachment.objects.get().content_type == content_type
    event = AuditEvent.objects.get(action="messaging.attachment.add")
    assert event.details["content_type"] == content_type


@pytest.mark.parametrize(("content", "reason"), REFUSED)
def test_hostile_or_broken_packages_are_refused_and_nothing_is_stored(item, vn_officer, content, reason):
    with pytest.raises(InvalidInput) as refused:
        attachment_add(actor=vn_officer, item_id=item.pk, filename="report.docx", content=content)
    assert reason in refused.value.message
    assert not Attachment.objects.exists()
    assert not AuditEvent.objects.filter(action="messaging.attachment.add").exists()


def test_package_unpacking_to_more_than_the_limit_is_refused(item, vn_officer, monkeypatch):
    monkeypatch.setattr(packages, "MAX_UNPACKED_BYTES", 4096)
    content = ooxml(parts={"word/media/image1.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20})
    with pytest.raises(InvalidInput, match="unpacks to more than"):
        attachment_add(actor=vn_officer, item_id=item.pk, filename="big.docx", content=content)
    assert not Attachment.objects.exists()


def test_package_with_too_many_parts_is_refused(item, vn_officer, monkeypatch):
    monkeypatch.setattr(packages, "MAX_ENTRIES", 10)
    content = ooxml(parts={f"customXml/item{n}.xml": "<x/>" for n in range(10)})
    with pytest.raises(InvalidInput, match="more than 10 parts"):
        attachment_add(actor=vn_officer, item_id=item.pk, filename="many.docx", content=content)
    assert not Attachment.objects.exists()


def test_part_longer_than_its_declared_size_is_refused(item, vn_officer):
    content = bytearray(ooxml(parts={"word/media/a.xml": "<x>" + "y" * 100 + "</x>"}))
    info = zipfile.ZipFile(io.BytesIO(bytes(content))).getinfo("word/media/a.xml")
    # Lower the uncompressed size the central directory declares: an unpacker trusting it would be misled.
    central = bytes(content).rindex(info.filename.encode()) - 46  # the name follows a 46-byte directory record
    content[central + 24 : central + 28] = (10).to_bytes(4, "little")
    with pytest.raises(InvalidInput, match="damaged"):
        attachment_add(actor=vn_officer, item_id=item.pk, filename="lying.docx", content=bytes(content))


def test_encrypted_entry_is_refused(item, vn_officer):
    content = bytearray(ooxml(parts={"word/secret.xml": "<x/>"}))
    central = bytes(content).rindex(b"word/secret.xml") - 46
    content[central + 8] |= 0x1  # the "encrypted" flag of the central directory record
    with pytest.raises(InvalidInput, match="password-protected"):
        attachment_add(actor=vn_officer, item_id=item.pk, filename="secret.docx", content=bytes(content))


def test_api_refuses_the_issue_14_attack_with_a_reason_and_stores_nothing(item, vn_officer, api):
    api.force_authenticate(vn_officer)
    response = api.post(
        f"/api/v1/items/{item.pk}/attachments/",
        {"file": SimpleUploadedFile("Báo cáo.docx", _attack(), content_type=DOCX)},
        format="multipart",
    )
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert response["Content-Type"] == "application/problem+json"
    assert "payload.exe" in response.json()["detail"]
    assert not Attachment.objects.exists()
    assert not AuditEvent.objects.filter(action="messaging.attachment.add").exists()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(ooxml(main_type="application/vnd.ms-word.document.macroEnabled.main+xml"), "macros", id="docm"),
        pytest.param(odf(mimetype="application/vnd.oasis.opendocument.text-template"), "mimetype", id="odf-mimetype"),
        pytest.param(_bomb(), "zip bomb", id="bomb"),
        pytest.param(ooxml(parts={"../evil.xml": "<x/>"}), "outside the document", id="traversal"),
        pytest.param(_plain_zip(), "Archives", id="plain-zip"),
    ],
)
def test_api_refuses_hostile_packages(item, vn_officer, api, content, reason):
    api.force_authenticate(vn_officer)
    response = api.post(
        f"/api/v1/items/{item.pk}/attachments/",
        {"file": SimpleUploadedFile("report.docx", content)},
        format="multipart",
    )
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert reason in response.json()["detail"]
    assert not Attachment.objects.exists()


@pytest.mark.parametrize(("content", "content_type", "filename"), ACCEPTED[:4])
def test_api_accepts_valid_office_documents(item, vn_officer, api, content, content_type, filename):
    api.force_authenticate(vn_officer)
    response = api.post(
        f"/api/v1/items/{item.pk}/attachments/",
        {"file": SimpleUploadedFile(filename, content)},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    assert (response.json()["content_type"], response.json()["filename"]) == (content_type, filename)
