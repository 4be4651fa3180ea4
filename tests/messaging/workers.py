"""Real processes for routing tests: a private Redis, a Celery worker on the test database, an SMTP sink and a webhook
receiver, all on loopback ports. Mock nothing we can run: only the SMTP server and the agency's system are stand-ins.

The worker is a subprocess, so it sees only committed data: tests that use it run with
``django_db(transaction=True, serialized_rollback=True)``.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import os
import pwd
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import connection
from django.test import override_settings
from kombu import pools as kombu_pools

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], Any], *, timeout: float, interval: float = 0.1, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# --- Redis --------------------------------------------------------------------------------------------------------


class RedisServer:
    """A throwaway redis-server this test owns: it can stop it and start it again on the same port."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed (apt-get install redis-server)"
        self.process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def accepting() -> bool:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
            return False

        wait_for(accepting, timeout=10, what="redis-server")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@contextlib.contextmanager
def private_broker(folder: Path) -> Iterator[RedisServer]:
    """Point this process's Celery app at a Redis of its own (so no other test's messages reach our worker), and its
    cache too: one Redis for broker and cache, as the README configures a deployment (stopping it stops both)."""
    from isn.broker import breaker
    from isn.celery import app
    from isn.throttling import throttle_cache

    server = RedisServer(folder)
    server.start()
    previous = app.conf.broker_url

    def repoint(url: str) -> None:
        app.conf.broker_url = url
        # Close and forget every pooled connection and producer: kombu keys its pools by URL and would hand the
        # old ones back.
        kombu_pools.reset()
        app._pool = None
        app.amqp._producer_pool = None
        breaker.reset()

    cache = settings.CACHES["default"]
    shared_cache = {
        "default": {
            **cache,
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": server.url,
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
    repoint(server.url)
    throttle_cache.reset()
    try:
        with override_settings(CACHES=shared_cache):
            yield server
    finally:
        repoint(previous)
        throttle_cache.reset()
        server.stop()


# --- PostgreSQL ---------------------------------------------------------------------------------------------------


class PostgresCluster:
    """A throwaway PostgreSQL cluster this test owns (never the shared one on 5432): it can stop and start it again on
    the same port, as an operator's restart would. As root, it runs as the postgres system user, as PostgreSQL asks."""

    def __init__(self) -> None:
        from tests.servers import _find

        self.pg_ctl = _find("pg_ctl", "Debian: apt-get install postgresql")
        self.initdb = _find("initdb", "Debian: apt-get install postgresql")
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="isn-fault-pg-"))
        self.data = self.folder / "data"
        self.run_as: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
            self.run_as = ["runuser", "-u", "postgres", "--"]

    def url(self, database: str = "isn") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _ctl(self, *args: str) -> None:
        subprocess.run([*self.run_as, self.pg_ctl, "-D", str(self.data), *args], check=True, capture_output=True)

    def init(self) -> None:
        subprocess.run(
            [
                *(*self.run_as, self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync"),
                *("-E", "UTF8", "--no-locale"),
            ],
            check=True,
            capture_output=True,
        )
        self.start()

    def stop(self) -> None:
        """``pg_ctl stop -m fast``: every session cut off, open transactions rolled back."""
        self._ctl("-m", "fast", "-w", "stop")

    def start(self) -> None:
        # Durable as a real server (fsync on): a restart must lose nothing that was committed.
        options = f"-h 127.0.0.1 -p {self.port} -k {self.folder} -c max_connections=100"
        self._ctl("-o", options, "-l", str(self.folder / "postgres.log"), "-w", "start")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._ctl("-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def private_postgres() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    cluster.init()
    try:
        yield cluster
    finally:
        cluster.destroy()


# --- a Celery worker on the test database ----------------------------------------------------------------------------


def _test_database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@dataclass
class Worker:
    process: subprocess.Popen[str]
    log: Path

    def kill(self) -> None:
        """SIGKILL: no cleanup, no acknowledgement, an open transaction left to the database to roll back."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def start_worker(
    broker_url: str,
    data_dir: Path,
    *,
    beat: bool = False,
    queues: str = "urgent,default",
    name: str = "routing",
    env: dict[str, str] | None = None,
) -> Worker:
    """A real ``celery worker`` (solo pool) reading the test database; with ``beat``, beat runs inside it."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ISN_") and k not in ("REDIS_URL",)}
    environ |= {
        "DATABASE_URL": _test_database_url(),
        "REDIS_URL": broker_url,
        "ISN_DATA_DIR": str(data_dir),
        # The same master key as this process: the worker opens webhook secrets sealed here.
        "ISN_MASTER_KEY": base64.b64encode(settings.ISN_MASTER_KEY).decode(),
        "ISN_EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
        "ISN_OUTBOX_RELAY_SECONDS": "1",
        "ISN_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    log = data_dir / f"worker-{name}-{time.monotonic_ns()}.log"
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "isn",
        "worker",
        "--pool",
        "solo",
        "--queues",
        queues,
        "--hostname",
        f"{name}@isn-test",
        "--without-mingle",
        "--without-gossip",
        "--loglevel",
        "WARNING",
    ]
    if beat:
        command += ["--beat", "--schedule", str(data_dir / f"beat-{name}")]
    handle = log.open("w")
    process = subprocess.Popen(
        command, cwd=ROOT, env=environ, stdout=handle, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    handle.close()
    return Worker(process=process, log=log)


# --- an SMTP sink ---------------------------------------------------------------------------------------------------


@dataclass
class SmtpSink:
    port: int
    messages: list[tuple[list[str], Message]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def to(self, address: str) -> list[Message]:
        with self.lock:
            return [message for recipients, message in self.messages if address in recipients]


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for Django's backend: EHLO, MAIL, RCPT, DATA, QUIT."""

    def _reply(self, line: str) -> None:
        self.wfile.write(line.encode("ascii") + b"\r\n")

    def handle(self) -> None:
        sink: SmtpSink = self.server.sink  # type: ignore[attr-defined]
        self._reply("220 isn-test-sink ESMTP")
        recipients: list[str] = []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                self._reply("250 isn-test-sink")
            elif verb == b"RCPT":
                recipients.append(line.decode().split(":", 1)[1].strip().strip("<>"))
                self._reply("250 OK")
            elif verb == b"DATA":
                self._reply("354 end with .")
                body = bytearray()
                while (chunk := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                    body += chunk[1:] if chunk.startswith(b"..") else chunk
                with sink.lock:
                    sink.messages.append((recipients, message_from_bytes(bytes(body))))
                recipients = []
                self._reply("250 queued")
            elif verb == b"QUIT":
                self._reply("221 bye")
                return
            else:  # MAIL, RSET, NOOP
                self._reply("250 OK")


@contextlib.contextmanager
def smtp_sink() -> Iterator[SmtpSink]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpHandler)
    server.daemon_threads = True
    sink = SmtpSink(port=server.server_address[1])
    server.sink = sink  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()


# --- a webhook receiver ---------------------------------------------------------------------------------------------


@dataclass
class Receiver:
    url: str
    status: int = 200
    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return list(self.calls)


@contextlib.contextmanager
def webhook_receiver(status: int = 200) -> Iterator[Receiver]:
    """An agency's system on 127.0.0.1: records each POST and answers ``receiver.status``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with receiver.lock:
                receiver.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(receiver.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/isn-hook", status=status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
