"""Attachments: type judged from content, size limit, safe names, sealed storage, recorded downloads."""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from audit.models import AuditEvent
from isn.errors import InvalidInput
from messaging.items.attachments import attachment_add, attachment_download, safe_filename, sniff
from messaging.items.changes import item_change
from messaging.models import Attachment
from tests.messaging.items.office import ooxml

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48 + b"This program cannot be run"


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.exe", EXE)
    return buffer.getvalue()


@pytest.fixture
def item(post, vn_officer):
    return post(vn_officer).item


def test_pdf_is_stored_sealed_with_its_digest_and_recorded(item, vn_officer):
    summary = attachment_add(actor=vn_officer, item_id=item.pk, filename="route plan.pdf", content=PDF)
    stored = Attachment.objects.get()
    assert (summary.filename, stored.content_type, stored.size) == ("route plan.pdf", "application/pdf", len(PDF))
    assert stored.sha256 == hashlib.sha256(PDF).hexdigest()
    assert PDF not in bytes(stored.content_sealed)
    assert b"route plan" not in bytes(stored.filename_sealed)
    event = AuditEvent.objects.get(action="messaging.attachment.add")
    assert event.details == {"attachment_id": str(stored.pk), "content_type": "application/pdf", "size": len(PDF)}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (PDF, "application/pdf"),
        (_png(), "image/png"),
        (ooxml("docx"), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("Biển số xe, ngày giờ\n".encode(), "text/plain; charset=utf-8"),
        (EXE, None),
        (_zip(), None),
        (b"\x00\x01\x02binary", None),
        (b"\xff\xfe not utf-8", None),
    ],
)
def test_type_is_judged_from_content(content, expected):
    sniffed = sniff(content)
    assert (sniffed.content_type if sniffed else None) == expected


def test_executable_renamed_pdf_is_refused(item, vn_officer):
    with pytest.raises(InvalidInput, match="not accepted"):
        attachment_add(actor=vn_officer, item_id=item.pk, filename="invoice.pdf", content=EXE)
    assert not Attachment.objects.exists()
    assert not AuditEvent.objects.filter(action="messaging.attachment.add").exists()


def test_oversize_is_refused(item, vn_officer, settings):
    settings.ISN_ATTACHMENT_MAX_BYTES = 64
    with pytest.raises(InvalidInput, match="larger than the limit"):
        attachment_add(actor=vn_officer, item_id=item.pk, filename="big.txt", content=b"a" * 65)
    assert not Attachment.objects.exists()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("C:\\Users\\officer\\notes.txt", "notes.txt"),
        ("evil\r\nname.txt", "evil name.txt"),
        ("photo\u202egpj.exe.txt", "photo gpj.exe.txt"),
        ("...hidden.txt", "hidden.txt"),
        ("", "attachment.txt"),
        ("report.pdf", "report.pdf.txt"),  # text content under a PDF name gets the extension of what it is
        ("a" * 300 + ".txt", "a" * 196 + ".txt"),
    ],
)
def test_filenames_are_made_safe(name, expected):
    assert safe_filename(name, sniff(b"plain text")) == expected


def test_only_the_originator_attaches(item, kh_officer, th_officer, api):
    api.force_authenticate(kh_officer)
    upload = SimpleUploadedFile("x.pdf", PDF)
    assert api.post(f"/api/v1/items/{item.pk}/attachments/", {"file": upload}, format="multipart").status_code == 403
    api.force_authenticate(th_officer)
    upload = SimpleUploadedFile("x.pdf", PDF)
    assert api.post(f"/api/v1/items/{item.pk}/attachments/", {"file": upload}, format="multipart").status_code == 404
    assert not Attachment.objects.exists()


def test_upload_and_download_through_the_api(item, vn_officer, kh_officer, api):
    api.force_authenticate(vn_officer)
    upload = SimpleUploadedFile("Tuyến đường.pdf", PDF, content_type="text/html")  # the declared type is ignored
    response = api.post(f"/api/v1/items/{item.pk}/attachments/", {"file": upload}, format="multipart")
    assert response.status_code == 201, response.json()
    attachment_id = response.json()["id"]
    assert response.json()["content_type"] == "application/pdf"

    api.force_authenticate(kh_officer)
    detail = api.get(f"/api/v1/items/{item.pk}/").json()
    assert [a["filename"] for a in detail["attachments"]] == ["Tuyến đường.pdf"]
    download = api.get(f"/api/v1/items/{item.pk}/attachments/{attachment_id}/")
    assert download.status_code == 200
    assert download.content == PDF
    assert download["Content-Type"] == "application/pdf"
    assert download["X-Content-Type-Options"] == "nosniff"
    assert download["Cache-Control"] == "no-store"
    assert download["Content-Disposition"].startswith("attachment;")
    assert "filename*=utf-8''Tuy%E1%BA%BFn%20%C4%91%C6%B0%E1%BB%9Dng.pdf" in download["Content-Disposition"]
    event = AuditEvent.objects.get(action="messaging.attachment.download")
    assert (event.actor_label, event.target_id, event.details) == (
        "kh.officer",
        str(item.pk),
        {"attachment_id": attachment_id},
    )
    # The originator's access view shows the download.
    api.force_authenticate(vn_officer)
    rows = api.get(f"/api/v1/items/{item.pk}/access/").json()["results"]
    assert ("messaging.attachment.download", "kh.officer", attachment_id) in [
        (row["action"], row["actor"], row["attachment_id"]) for row in rows
    ]


def test_api_refuses_oversize_and_disallowed_uploads(item, vn_officer, api, settings):
    api.force_authenticate(vn_officer)
    exe = api.post(
        f"/api/v1/items/{item.pk}/attachments/", {"file": SimpleUploadedFile("a.pdf", EXE)}, format="multipart"
    )
    assert (exe.status_code, exe.json()["code"]) == (400, "invalid")
    settings.ISN_ATTACHMENT_MAX_BYTES = 100
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 100 + 64 * 1024
    big = api.post(
        f"/api/v1/items/{item.pk}/attachments/",
        {"file": SimpleUploadedFile("a.txt", b"a" * (100 * 1024))},
        format="multipart",
    )
    assert (big.status_code, big.json()["code"]) == (413, "too_large")
    assert big["Content-Type"] == "application/problem+json"
    assert "larger than the limit" in big.json()["detail"]
    missing = api.post(f"/api/v1/items/{item.pk}/attachments/", {}, format="multipart")
    assert missing.status_code == 400
    assert not Attachment.objects.exists()


def test_unknown_or_malformed_attachment_id_is_404(item, vn_officer, api):
    api.force_authenticate(vn_officer)
    for attachment_id in ("00000000-0000-0000-0000-000000000000", "nope"):
        response = api.get(f"/api/v1/items/{item.pk}/attachments/{attachment_id}/")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


def test_attachment_swapped_between_items_does_not_open(post, vn_officer, kh_officer):
    first = post(vn_officer).item
    second = post(vn_officer).item
    a = attachment_add(actor=vn_officer, item_id=first.pk, filename="a.pdf", content=PDF)
    b = attachment_add(actor=vn_officer, item_id=second.pk, filename="b.txt", content=b"other text")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE messaging_attachment SET content_sealed = (SELECT content_sealed FROM messaging_attachment "
            "WHERE id = %s) WHERE id = %s",
            [a.id, b.id],
        )
    from messaging.core.sealing import ContentUnavailable

    with pytest.raises(ContentUnavailable):
        attachment_download(actor=kh_officer, item_id=second.pk, attachment_id=b.id)
    event = AuditEvent.objects.get(action="messaging.item.decrypt_failed")
    assert event.details["reason"] == "attachment_does_not_open"
    assert not AuditEvent.objects.filter(action="messaging.attachment.download").exists()


def test_correction_reseals_attachments_under_the_new_version(item, vn_officer, kh_officer):
    summary = attachment_add(actor=vn_officer, item_id=item.pk, filename="a.pdf", content=PDF)
    item_change(actor=vn_officer, item_id=item.pk, title="Corrected title")
    file = attachment_download(actor=kh_officer, item_id=item.pk, attachment_id=summary.id)
    assert (file.content, file.filename) == (PDF, "a.pdf")
