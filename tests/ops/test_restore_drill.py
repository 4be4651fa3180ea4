"""The restore drill: populate, export a checkpoint, back up, withdraw and narrow, lose the database, restore.

Everything runs as an operator would run it, in processes of their own (``manage.py`` and ``tests.ops.drill``),
against a scratch database on the test PostgreSQL server and a data folder of its own (its development master key,
audit signing key and revocation ledger stay there across the "disaster"; the backup holds none of them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import dj_database_url
import psycopg
import pytest
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _server() -> dict:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        pytest.skip("the restore drill needs PostgreSQL (run under tests.servers or set DATABASE_URL)")
    return dj_database_url.parse(url)


def _admin(server: dict) -> psycopg.Connection:
    return psycopg.connect(
        dbname="postgres",
        host=server["HOST"] or None,
        port=server["PORT"] or None,
        user=server["USER"] or None,
        password=server["PASSWORD"] or None,
        autocommit=True,
    )


def _create(server: dict, name: str) -> None:
    with _admin(server) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _drop(server: dict, name: str) -> None:
    with _admin(server) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def drill(tmp_path):
    server = _server()
    name = f"isn_drill_{uuid.uuid4().hex[:12]}"
    url = "postgres://{user}{password}@{host}:{port}/{name}".format(
        user=server["USER"] or "",
        password=f":{server['PASSWORD']}" if server["PASSWORD"] else "",
        host=server["HOST"] or "127.0.0.1",
        port=server["PORT"] or 5432,
        name=name,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISN_") and k not in ("REDIS_URL",)}
    # No Redis: the drill's processes use the development file broker in their own data folder, so no worker of
    # another test ever receives their tasks.
    env |= {"DATABASE_URL": url, "ISN_DATA_DIR": str(tmp_path / "data"), "DJANGO_SETTINGS_MODULE": "isn.settings"}
    _create(server, name)

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        if check:
            assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
        return done

    def disaster() -> None:
        _drop(server, name)
        _create(server, name)

    run.disaster = disaster  # type: ignore[attr-defined]
    run.data = tmp_path / "data"  # type: ignore[attr-defined]
    try:
        yield run
    finally:
        _drop(server, name)


def test_restore_brings_back_the_items_but_not_what_was_shredded_after_the_backup(drill, tmp_path):
    state = tmp_path / "state.json"
    checkpoint = tmp_path / "checkpoint.json"
    backup = tmp_path / "backups" / "isn-1"
    drill("manage.py", "migrate", "--noinput")
    # Populating ends with a checkpoint exported as a member would keep it (audit_checkpoint --export).
    drill("-m", "tests.ops.drill", "populate", str(state), str(checkpoint))
    kept_checkpoint = json.loads(checkpoint.read_text())

    made = drill("manage.py", "backup", "--to", str(backup))
    assert "backup written" in made.stdout
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["audit"]["last_event_id"] > kept_checkpoint["last_event_id"]
    assert "database.dump" in manifest["files"]
    names = {path.name for path in backup.rglob("*")}
    assert not names & {"master_key", "audit_signing_key", "secret_key", "revocations.log"}, "no key in a backup"

    drill("-m", "tests.ops.drill", "revoke", str(state))
    ledger = [json.loads(line) for line in (drill.data / "revocations.log").read_text().splitlines()]
    assert {"messaging.item.withdraw", "messaging.item.release_narrow"} <= {line["action"] for line in ledger}
    highest_before = max(line["audit_head"] for line in ledger)

    drill.disaster()
    # A ledger cut back to before the backup (its last lines dropped) is refused before anything is loaded.
    ledger_file = drill.data / "revocations.log"
    full = ledger_file.read_bytes()
    ledger_file.write_bytes(b"".join(full.splitlines(keepends=True)[: manifest["ledger"]["seq"] - 1]))
    refused = drill("manage.py", "restore", "--from", str(backup), check=False)
    assert refused.returncode != 0
    assert "does not extend the one the backup saw" in refused.stderr
    ledger_file.write_bytes(full)
    # A number a member saw in an export after the last checkpoint: nothing up to it may be handed out again.
    seen_elsewhere = highest_before + 25
    restored = drill(
        "manage.py",
        "restore",
        "--from",
        str(backup),
        "--checkpoint",
        str(checkpoint),
        "--last-known-event",
        str(seen_elsewhere),
    )
    assert f"backup taken at event #{manifest['audit']['last_event_id']}" in restored.stdout
    assert "2 of 2 later ledger entries re-applied" in restored.stdout
    assert f"events #{manifest['audit']['last_event_id'] + 1}-#{seen_elsewhere} were lost" in restored.stdout

    again = drill("manage.py", "restore", "--from", str(backup), check=False)
    assert again.returncode != 0
    assert "not empty" in again.stderr

    drill("-m", "tests.ops.drill", "check", str(state))
    after = json.loads(state.read_text())
    withdrawn, narrowed, kept = after["items"]
    seen = after["seen"]
    # Opened with the same master key and the keys the backup held: title, body and attachment.
    expected = {item["id"]: [item["title"], item["body"], item["attachment"]] for item in (withdrawn, narrowed, kept)}
    assert seen[kept["id"]] == dict.fromkeys(("VN", "KH", "TH"), expected[kept["id"]])
    assert seen[narrowed["id"]]["VN"] == seen[narrowed["id"]]["TH"] == expected[narrowed["id"]]
    assert seen[withdrawn["id"]]["VN"] == expected[withdrawn["id"]]
    # What was shredded after the backup stays shredded: no key, no grant, no read.
    assert not isinstance(seen[narrowed["id"]]["KH"], list)
    assert not isinstance(seen[withdrawn["id"]]["KH"], list)
    assert not isinstance(seen[withdrawn["id"]]["TH"], list)
    assert after["keys"][narrowed["id"]] == ["TH", "VN"]
    assert after["keys"][withdrawn["id"]] == ["VN"]
    assert after["status"][withdrawn["id"]] == "withdrawn"

    verified = drill("manage.py", "audit_verify", "--checkpoint", str(checkpoint))
    assert "audit chain intact" in verified.stdout
    assert f"restored from the backup taken at event #{manifest['audit']['last_event_id']}" in verified.stdout
    restore_id = int(verified.stdout.split("restored from the backup")[0].rsplit("event #", 1)[1].split(":")[0])
    # No event number handed out before the disaster is used again.
    assert restore_id > seen_elsewhere > highest_before
