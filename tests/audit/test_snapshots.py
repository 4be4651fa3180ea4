"""A backup is checked against its manifest before anything is restored from it."""

from __future__ import annotations

import hashlib
import json

import pytest

from audit.snapshots import DUMP, FORMAT, MANIFEST, BackupError, manifest_check


def _backup(folder, files: dict[str, bytes]):
    folder.mkdir()
    for name, content in files.items():
        (folder / name).write_bytes(content)
    manifest = {
        "format": FORMAT,
        "files": {name: {"sha256": hashlib.sha256(c).hexdigest(), "size": len(c)} for name, c in files.items()},
    }
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return folder


def test_an_intact_backup_passes(tmp_path):
    folder = _backup(tmp_path / "b", {DUMP: b"PGDMP..."})
    assert manifest_check(folder)["format"] == FORMAT


def test_a_damaged_file_is_refused(tmp_path):
    folder = _backup(tmp_path / "b", {DUMP: b"PGDMP..."})
    (folder / DUMP).write_bytes(b"PGDMP.!.")
    with pytest.raises(BackupError, match=r"database\.dump does not match its checksum"):
        manifest_check(folder)


def test_a_missing_file_is_refused(tmp_path):
    folder = _backup(tmp_path / "b", {DUMP: b"PGDMP..."})
    (folder / DUMP).unlink()
    with pytest.raises(BackupError, match=r"database\.dump is missing"):
        manifest_check(folder)


def test_a_folder_without_a_manifest_is_not_a_backup(tmp_path):
    (tmp_path / "partial").mkdir()
    with pytest.raises(BackupError, match="not a complete backup"):
        manifest_check(tmp_path / "partial")
