"""The embedded default serves a portal, a worker and beat at once: SQLite must never answer "database is locked".

What ``make run`` starts, on a fresh data folder: the portal (runserver), a Celery worker (two processes) and beat,
on SQLite and the file-system broker, with the demo network seeded. For a minute, agencies' systems post, read and
forward items through the API with the demo keys, and signed-in members change their portal language and (the
auditors) load the flags page, all at once, while the worker routes, notifies and seals the audit chain and beat
queues its tasks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from agencies import demo

ROOT = Path(__file__).resolve().parents[2]
SECONDS = 60
POSTERS = ["VN/BGC", "KH/CNP-ADD", "TH/ONCB", "LA/CND"]
READERS = ["MM/MPF-DED", "CN/YNBP"]
MEMBERS = ["vn.officer", "kh.officer", "vn.auditor", "kh.auditor"]
RECOVERY_CODE = "48151623"
LOCK_ERRORS = re.compile(r"database is locked|database table is locked|OperationalError")
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')

# One process (each start of Django costs seconds): what `make run` does first, then a recovery-code device for each
# member, so the test can pass the second factor without an authenticator app.
PREPARE = f"""
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
call_command("migrate", interactive=False, verbosity=0)
call_command("seed_demo", verbosity=0)
for username in {MEMBERS!r}:
    device = StaticDevice.objects.create(user=get_user_model().objects.get(username=username), name="test")
    StaticToken.objects.create(device=device, token={RECOVERY_CODE!r})
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Tally:
    """Answers by status, and every 5xx with what was asked, shared by the client threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: Counter[str] = Counter()
        self.server_errors: list[str] = []

    def count(self, what: str, response: httpx.Response) -> httpx.Response:
        with self.lock:
            self.statuses[f"{what} {response.status_code}"] += 1
            if response.status_code >= 500:
                self.server_errors.append(f"{what} {response.status_code} {response.text[:300]!r}")
        return response


def _api_key_header(agency: str) -> dict[str, str]:
    prefix, secret = demo.api_key_parts(agency)
    return {"Authorization": f"Api-Key isn_{prefix}_{secret}"}


def _post_items(base: str, agency: str, until: float, tally: Tally) -> None:
    """Post items released at home to the own agency only, read each back, and forward it to another agency."""
    country, short_name = agency.split("/")
    review = (date.today() + timedelta(days=30)).isoformat()
    with httpx.Client(base_url=base, headers=_api_key_header(agency), timeout=60) as client:
        listed = tally.count("list agencies", client.get("/api/v1/agencies/", params={"country": country}))
        if listed.status_code != 200:
            return
        at_home = {found["short_name"]: found["id"] for found in listed.json()["results"]}
        own = at_home.pop(short_name)
        while time.monotonic() < until:
            body = {
                "title": f"Load test {uuid.uuid4().hex[:8]}",
                "body": "Two vehicles crossing at dawn.",
                "language": "en",
                "category": "meth_pills",
                "source_reliability": "B",
                "info_credibility": 2,
                "handling_code": "green",
                "review_date": review,
                "countries": sorted({country, "VN", "KH"}),
                "agencies": [own],
                "discoverable": False,
            }
            created = tally.count("post item", client.post("/api/v1/items/", json=body))
            if created.status_code != 201:
                continue
            item = f"/api/v1/items/{created.json()['id']}/"
            tally.count("read item", client.get(item))
            for other in at_home.values():
                forward = {"to_agency": other, "reason": "Their unit works this route."}
                tally.count("forward item", client.post(f"{item}forward/", json=forward))


def _read_items(base: str, agency: str, until: float, tally: Tally) -> None:
    with httpx.Client(base_url=base, headers=_api_key_header(agency), timeout=60) as client:
        while time.monotonic() < until:
            tally.count("list items", client.get("/api/v1/items/", params={"page_size": 20}))
            tally.count("count items", client.get("/api/v1/items/count/"))


def _form_token(response: httpx.Response) -> str:
    found = CSRF.search(response.text)
    assert found, f"no CSRF token on {response.request.url} ({response.status_code})"
    return found.group(1)


def _member(base: str, username: str, until: float, tally: Tally) -> None:
    languages = ["th", "vi", "km", "en"]
    with httpx.Client(base_url=base, timeout=60) as client:
        page = tally.count("sign-in page", client.get("/accounts/login/"))
        signed_in = client.post(
            "/accounts/login/",
            data={"username": username, "password": demo.DEMO_PASSWORD, "csrfmiddlewaretoken": _form_token(page)},
        )
        if tally.count("sign in", signed_in).status_code != 302:
            return  # counted: the assertions below name it
        page = tally.count("second factor page", client.get(signed_in.headers["location"]))
        verified = client.post(page.url, data={"code": RECOVERY_CODE, "csrfmiddlewaretoken": _form_token(page)})
        if tally.count("second factor", verified).status_code != 302:
            return
        turn = 0
        while time.monotonic() < until:
            page = tally.count("account page", client.get("/account/"))
            if page.status_code == 200:
                language = languages[turn % len(languages)]
                saved = client.post("/account/", data={"language": language, "csrfmiddlewaretoken": _form_token(page)})
                tally.count("save language", saved)
            if username.endswith(".auditor"):
                tally.count("flags page", client.get("/audit/flags/"))
            turn += 1


def _start(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_serving(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, f"the portal exited at start:\n{log.read_text(errors='replace')[-3000:]}"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/healthz", timeout=2).status_code < 500:
                return
        time.sleep(0.25)
    raise AssertionError("the portal did not start within 60 s")


@pytest.mark.slow
def test_portal_worker_and_beat_share_sqlite_without_lock_errors(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="httpx")  # a line per request would bury a failure's message
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISN_") and k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {"ISN_DATA_DIR": str(tmp_path / "data"), "ISN_API_RATE_PER_KEY": "100000/minute", "PYTHONUNBUFFERED": "1"}
    run = {"cwd": ROOT, "env": env, "capture_output": True, "text": True, "timeout": 180}
    prepared = subprocess.run([sys.executable, "manage.py", "shell", "-c", PREPARE], **run)
    assert prepared.returncode == 0, prepared.stderr

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    celery = [sys.executable, "-m", "celery", "-A", "isn"]
    logs = {name: tmp_path / f"{name}.log" for name in ("portal", "worker", "beat")}
    processes = {
        "worker": _start(
            [*celery, "worker", "--queues", "urgent,default", "--concurrency", "2", "--loglevel", "INFO"],
            logs["worker"],
            env,
        ),
        "beat": _start([*celery, "beat", "--loglevel", "INFO"], logs["beat"], env),
        "portal": _start(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"], logs["portal"], env
        ),
    }
    tally = Tally()
    try:
        _wait_until_serving(base, processes["portal"], logs["portal"])
        until = time.monotonic() + SECONDS
        clients = [
            *(threading.Thread(target=_post_items, args=(base, agency, until, tally)) for agency in POSTERS),
            *(threading.Thread(target=_read_items, args=(base, agency, until, tally)) for agency in READERS),
            *(threading.Thread(target=_member, args=(base, username, until, tally)) for username in MEMBERS),
        ]
        for client in clients:
            client.start()
        for client in clients:
            client.join(timeout=SECONDS + 120)
        for name, process in processes.items():
            assert process.poll() is None, f"the {name} exited during the run"
    finally:
        for process in processes.values():
            _stop(process)

    summary = ", ".join(f"{what}: {n}" for what, n in sorted(tally.statuses.items()))
    assert tally.server_errors == [], f"{len(tally.server_errors)} server errors ({summary}):\n" + "\n".join(
        tally.server_errors[:10]
    )
    for name, log in logs.items():
        errors = [line for line in log.read_text(errors="replace").splitlines() if LOCK_ERRORS.search(line)]
        assert errors == [], f"the {name} logged {len(errors)} database errors, e.g.:\n" + "\n".join(errors[:10])
    # The load was real: items went in and were read, languages were saved, flags were loaded, and the worker kept
    # sealing the audit chain through it.
    for what in (
        "post item 201",
        "read item 200",
        "forward item 201",
        "list items 200",
        "save language 302",
        "flags page 200",
    ):
        assert tally.statuses[what] >= 5, f"too few {what!r} ({summary})"
    with sqlite3.connect(tmp_path / "data" / "isn.sqlite3") as connection:
        sealed = connection.execute("SELECT count(*) FROM audit_auditevent WHERE hash != ''").fetchone()[0]
    assert sealed > 100, f"the worker sealed only {sealed} audit events"
