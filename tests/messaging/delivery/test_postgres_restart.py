"""PostgreSQL restarted under traffic (issue 17, done when): officers post and read through the API, a person signs in
to the portal, and the worker routes, while the database is stopped with ``pg_ctl stop -m fast`` (every session cut
off, open transactions rolled back) and started again a few seconds later.

What is checked: every answer during the restart is 2xx or a clean 503 (problem details in the API, the plain page in
the portal), never a 500 or a traceback; web (gunicorn), worker and beat are the same processes afterwards and work
again on their own; every post answered 503 is sent again with its Idempotency-Key and lands exactly once; nothing
is half-written (each item has its one audit event, its grants and its one routing row); every item gets all its
deliveries once; every audit event is sealed and ``audit_verify`` passes.

The machine's PostgreSQL is shared and never restarted: the test runs web, worker and beat on a cluster of its own
(``private_postgres``), filled with a copy of the test database once the network is built. Timings are printed (run
with -s to see them).
"""

from __future__ import annotations

import base64
import itertools
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
import requests
from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.db import connection
from django.utils import timezone

from agencies.api_keys import api_key_issue
from agencies.models import Role
from tests.factories import MembershipFactory, UserFactory
from tests.messaging.conftest import api_payload
from tests.messaging.network import build_network
from tests.messaging.workers import (
    ROOT,
    PostgresCluster,
    Worker,
    free_port,
    private_broker,
    private_postgres,
    start_worker,
    wait_for,
)
from tests.servers import _find

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

DOWN_SECONDS = 4
PASSWORD = "correct horse battery staple"  # tests.factories
SIGN_IN_AS = "kh.officer"


def _copy_test_database(cluster: PostgresCluster) -> None:
    """The test database as it stands (the network and its keys, committed) into the private cluster."""
    db = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": db.get("PASSWORD") or ""}
    dump = subprocess.run(
        [
            _find("pg_dump", "Debian: apt-get install postgresql-client"),
            *("--no-owner", "--no-privileges", "-h", db["HOST"] or "127.0.0.1", "-p", str(db["PORT"] or 5432)),
            *("-U", db["USER"], db["NAME"]),
        ],
        env=env,
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        admin.execute("CREATE DATABASE isn")
    subprocess.run(
        [_find("psql", "Debian: apt-get install postgresql-client"), "-q", "-v", "ON_ERROR_STOP=1", cluster.url()],
        input=dump,
        capture_output=True,
        check=True,
        timeout=120,
    )
    with psycopg.connect(cluster.url(), autocommit=True) as copy:
        # Sign-in attempts other tests left in the shared test database would lock this test's officer out.
        copy.execute("TRUNCATE axes_accessattempt, axes_accessattemptexpiration, axes_accessfailurelog, axes_accesslog")
        # The test settings hash passwords with MD5 for speed; web here runs the production hashers, which do not
        # accept it. The officer who signs in gets the production hash of the same password.
        copy.execute(
            "UPDATE auth_user SET password = %s WHERE username = %s",
            (Argon2PasswordHasher().encode(PASSWORD, Argon2PasswordHasher().salt()), SIGN_IN_AS),
        )


def _environment(database_url: str, broker_url: str, data_dir: Path) -> dict[str, str]:
    """What web, worker, beat and the management commands share: production-like (no debug pages, JSON logs)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ISN_") and k not in ("REDIS_URL",)}
    return environ | {
        "DATABASE_URL": database_url,
        "REDIS_URL": broker_url,
        "ISN_DATA_DIR": str(data_dir),
        "ISN_DEBUG": "false",
        "ISN_LOG_FORMAT": "json",
        "ISN_LOG_LEVEL": "WARNING",
        "ISN_MASTER_KEY": base64.b64encode(settings.ISN_MASTER_KEY).decode(),
        "ISN_EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
        "ISN_OUTBOX_RELAY_SECONDS": "1",
        # An audit id a rolled-back transaction took is declared a gap after this long (60 s in production).
        "ISN_AUDIT_GAP_GRACE_SECONDS": "5",
    }


def _spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    with log.open("w") as handle:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )


@dataclass
class Answer:
    what: str
    at: float
    status: int
    content_type: str
    body: str
    key: str = ""


@dataclass
class Traffic:
    base: str
    write_key: str
    read_key: str
    stop: threading.Event = field(default_factory=threading.Event)
    answers: list[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    posted: list[str] = field(default_factory=list)  # ids of the items answered 201

    def _record(self, what: str, response: requests.Response, key: str = "") -> Answer:
        answer = Answer(
            what, time.monotonic(), response.status_code, response.headers.get("Content-Type", ""), response.text, key
        )
        with self.lock:
            self.answers.append(answer)
        return answer

    def post(self, session: requests.Session, key: str) -> Answer:
        response = session.post(
            f"{self.base}/api/v1/items/",
            json=api_payload(countries=["VN", "KH"]),
            headers={"Authorization": f"Api-Key {self.write_key}", "Idempotency-Key": key},
            timeout=20,
        )
        answer = self._record("post", response, key)
        if answer.status in (200, 201):
            with self.lock:
                self.posted.append(response.json()["id"])
        return answer

    def poster(self, name: str) -> None:
        session = requests.Session()
        for n in itertools.count():
            if self.stop.is_set():
                return
            answer = self.post(session, f"pg-restart-{name}-{n}")
            time.sleep(0.1 if answer.status < 500 else 0.5)

    def reader(self) -> None:
        api, portal = requests.Session(), requests.Session()
        headers = {"Authorization": f"Api-Key {self.read_key}"}
        for n in itertools.count():
            if self.stop.is_set():
                return
            self._record("list", api.get(f"{self.base}/api/v1/items/?page_size=20", headers=headers, timeout=20))
            with self.lock:
                last = self.posted[-1] if self.posted else None
            if last:
                self._record("read", api.get(f"{self.base}/api/v1/items/{last}/", headers=headers, timeout=20))
            if n % 5 == 0:
                portal.cookies.clear()
                page = portal.get(f"{self.base}/accounts/login/", timeout=20)
                self._record("sign-in page", page)
                token = portal.cookies.get("csrftoken", "")
                signed = portal.post(
                    f"{self.base}/accounts/login/",
                    data={"username": SIGN_IN_AS, "password": PASSWORD, "csrfmiddlewaretoken": token},
                    headers={"Referer": f"{self.base}/accounts/login/"},
                    allow_redirects=False,
                    timeout=20,
                )
                self._record("sign-in", signed)
            time.sleep(0.1)


def _rows(cluster: PostgresCluster, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(cluster.url(), autocommit=True) as db:
        return db.execute(sql, params).fetchall()


def _one(cluster: PostgresCluster, sql: str, *params: object) -> object:
    return _rows(cluster, sql, *params)[0][0]


def _alive(*processes: subprocess.Popen[str] | Worker) -> bool:
    return all((p.process if isinstance(p, Worker) else p).poll() is None for p in processes)


def test_postgres_restarted_under_posts_reads_sign_ins_and_routing(tmp_path):
    net = build_network()
    vn_admin = UserFactory(username="vn.admin")
    MembershipFactory(user=vn_admin, agency=net.vn, role=Role.AGENCY_ADMIN)
    expires = timezone.now() + timedelta(days=30)
    write_key = api_key_issue(
        actor=vn_admin, agency=net.vn, name="vn-system", scopes=["read", "write"], expires_at=expires
    ).plaintext
    read_key = api_key_issue(
        actor=net.user("kh.admin"), agency=net.kh, name="kh-system", scopes=["read"], expires_at=expires
    ).plaintext
    data_dir = Path(tmp_path)

    began = time.monotonic()
    with private_postgres() as pg, private_broker(tmp_path) as broker:
        _copy_test_database(pg)
        print(f"\nnetwork built and copied to the private cluster in {time.monotonic() - began:.1f} s")
        env = _environment(pg.url(), broker.url, data_dir)
        port = free_port()
        web = _spawn(
            [
                *(sys.executable, "-m", "gunicorn", "isn.wsgi:application", "--bind", f"127.0.0.1:{port}"),
                *("--workers", "2", "--timeout", "30", "--no-control-socket"),
            ],
            env,
            data_dir / "web.log",
        )
        beat = _spawn(
            [sys.executable, "-m", "celery", "-A", "isn", "beat", "--schedule", str(data_dir / "beat-schedule")],
            env,
            data_dir / "beat.log",
        )
        worker = start_worker(broker.url, data_dir, name="pg-restart", env=env)

        def logs() -> str:
            tails = [
                f"--- {name}\n{(data_dir / f'{name}.log').read_text(errors='replace')[-3000:]}"
                for name in ("web", "beat")
            ]
            return "\n".join([*tails, f"--- worker\n{worker.output()}"])

        traffic = Traffic(base=f"http://127.0.0.1:{port}", write_key=write_key, read_key=read_key)
        threads: list[threading.Thread] = []
        try:
            wait_for(lambda: _ok(f"{traffic.base}/api/v1/items/", read_key), timeout=60, interval=0.25, what=logs())
            print(f"web, worker and beat answering {time.monotonic() - began:.1f} s in")
            threads = [
                threading.Thread(target=traffic.poster, args=(name,), daemon=True) for name in ("moc-bai", "desk")
            ] + [threading.Thread(target=traffic.reader, daemon=True)]
            for thread in threads:
                thread.start()
            # Routing works before the restart: the first items are delivered.
            wait_for(lambda: len(traffic.posted) >= 4, timeout=90, what=logs())
            first = traffic.posted[0]
            wait_for(
                lambda: _one(pg, "SELECT count(*) FROM messaging_delivery WHERE item_id = %s", first),
                timeout=90,  # the worker starting on a busy machine
                what=logs(),
            )
            time.sleep(1)
            recipients = _one(pg, "SELECT count(*) FROM messaging_delivery WHERE item_id = %s", first)

            stopped_at = time.monotonic()
            pg.stop()
            time.sleep(DOWN_SECONDS)
            pg.start()
            back_at = time.monotonic()
            print(f"PostgreSQL down for {back_at - stopped_at:.1f} s")
            time.sleep(6)  # traffic goes on after the restart
            traffic.stop.set()
            for thread in threads:
                thread.join(timeout=30)

            answers = list(traffic.answers)
            by_status: dict[int, int] = {}
            for answer in answers:
                by_status[answer.status] = by_status.get(answer.status, 0) + 1
            print(f"{len(answers)} answers: {dict(sorted(by_status.items()))}")

            # Clean answers only: 2xx or 3xx, or 503 with a problem (API) or the plain page (portal).
            for answer in answers:
                assert "Traceback" not in answer.body, answer
                assert answer.status < 500 or answer.status == 503, answer
                assert answer.status < 400 or answer.status == 503, answer
                if answer.what == "sign-in" and answer.status != 503:
                    # The password was accepted: on to the second factor (a refused one is a 200 with the form).
                    assert answer.status == 302, answer
                if answer.status == 503:
                    if answer.what.startswith("sign-in"):
                        assert answer.content_type.startswith("text/html"), answer
                        assert "ISN is briefly unavailable" in answer.body, answer
                    else:
                        assert answer.content_type == "application/problem+json", answer
                        assert '"code": "database_unavailable"' in answer.body, answer
            assert any(answer.what == "sign-in" and answer.status == 302 for answer in answers), "nobody signed in"
            refused = [answer for answer in answers if answer.status == 503]
            assert refused, "no request met the restart: the test proved nothing"
            assert {answer.what for answer in refused} & {"post"}, "no post met the restart"
            # Web reconnected on its own: everything asked a few seconds after the restart was answered.
            late = [answer for answer in answers if answer.at > back_at + 3]
            assert late
            assert all(answer.status < 400 for answer in late), [a for a in late if a.status >= 400]

            # A post refused with 503 is sent again with its Idempotency-Key: it lands once (or is answered with the
            # item it had made, were its commit to have gone through).
            retried_at = time.monotonic()
            session = requests.Session()
            for answer in [answer for answer in answers if answer.what == "post" and answer.status == 503]:
                again = traffic.post(session, answer.key)
                assert again.status in (200, 201), again
            print(f"refused posts sent again in {time.monotonic() - retried_at:.1f} s")
            keys = {answer.key for answer in answers if answer.what == "post"}
            items = {row[0] for row in _rows(pg, "SELECT id::text FROM messaging_item")}
            assert set(traffic.posted) <= items
            assert len(items) == len(keys)

            # Nothing half-written: each item has its one audit event, its two country grants and its one routing row.
            for item in items:
                assert (
                    _one(
                        pg,
                        "SELECT count(*) FROM audit_auditevent"
                        " WHERE action = 'messaging.item.create' AND target_id = %s",
                        item,
                    )
                    == 1
                )
                assert _one(pg, "SELECT count(*) FROM messaging_itemcountrygrant WHERE item_id = %s", item) == 2
                assert (
                    _one(
                        pg,
                        "SELECT count(*) FROM messaging_outboxmessage WHERE kind = 'item.route' AND item_id = %s",
                        item,
                    )
                    == 1
                )

            # Worker and beat reconnected on their own: every item routed, every event sealed.
            recovered_at = time.monotonic()
            wait_for(
                lambda: (
                    _one(pg, "SELECT count(*) FROM messaging_delivery") == recipients * len(items)
                    and not _one(pg, "SELECT count(*) FROM messaging_outboxmessage WHERE processed_at IS NULL")
                    and not _one(pg, "SELECT count(*) FROM audit_auditevent WHERE hash = ''")
                ),
                timeout=60,
                interval=0.5,
                what=logs(),
            )
            print(f"{len(items)} items routed and the audit chain sealed {time.monotonic() - recovered_at:.1f} s later")
            duplicates = _one(
                pg,
                "SELECT count(*) FROM (SELECT item_id, agency_id, office_id, user_id FROM messaging_delivery "
                "GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) AS twice",
            )
            assert duplicates == 0
            assert _alive(web, beat, worker), logs()
        finally:
            traffic.stop.set()
            worker.stop()
            for process in (web, beat):
                if process.poll() is None:
                    process.terminate()
                    process.wait(timeout=20)

        for command in (["audit_checkpoint"], ["audit_verify"]):
            result = subprocess.run(
                [sys.executable, "manage.py", *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
            )
            assert result.returncode == 0, (command, result.stdout, result.stderr)
    print(f"audit_verify passed {time.monotonic() - began:.1f} s in")


def _ok(url: str, key: str) -> bool:
    try:
        # Generous: each gunicorn process loads Django on its first request, seconds on a busy machine.
        return requests.get(url, headers={"Authorization": f"Api-Key {key}"}, timeout=30).status_code == 200
    except requests.RequestException:
        return False
