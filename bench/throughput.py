"""Audited vs. unaudited request throughput at 16 concurrent keep-alive clients, interleaved in one run."""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 16
VARIANTS = ("plain", "audited")


@dataclass
class Throughput:
    plain: list[float]
    audited: list[float]
    audited_events: int
    sealed_events: int
    unsealed_after: int
    workers: int
    threads: int

    @property
    def ratio(self) -> float:
        return statistics.median(self.audited) / statistics.median(self.plain)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def gunicorn(workers: int, threads: int) -> Iterator[int]:
    port = _free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "isn.wsgi:application",
            f"--bind=127.0.0.1:{port}",
            f"--workers={workers}",
            "--worker-class=gthread",  # keeps client connections alive, as a proxy in front would
            f"--threads={threads}",
            "--keep-alive=30",
            "--log-level=warning",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            if server.poll() is not None:
                raise SystemExit(f"bench: gunicorn exited at start (code {server.returncode})")
            time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def _client(port: int, path: str, seconds: float) -> int:
    """Requests completed by one keep-alive connection in ``seconds``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    done = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"bench: {path} answered {response.status}")
            done += 1
    finally:
        connection.close()
    return done


def _round(port: int, variant: str, office_ids: list[int], seconds: float) -> float:
    paths = [f"/{variant}/offices/{office_ids[n % len(office_ids)]}/" for n in range(CLIENTS)]
    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        total = sum(pool.map(lambda p: _client(port, p, seconds), paths))
    return total / (time.monotonic() - started)


def _sealer(stop: threading.Event, sealed: list[int]) -> None:
    """What the Celery worker does while the site is busy: seal new events into the chain every half second."""
    from django.db import connection

    from audit.chain import seal_pending

    try:
        while not stop.wait(0.5):
            sealed.append(seal_pending().sealed)
    finally:
        connection.close()


def run(
    office_ids: list[int], *, rounds: int = 4, seconds: float = 5.0, workers: int = 2, threads: int = 8
) -> Throughput:
    from audit.models import AuditEvent

    results: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    events_before = AuditEvent.objects.count()
    stop = threading.Event()
    sealed: list[int] = []
    sealer = threading.Thread(target=_sealer, args=(stop, sealed))
    with gunicorn(workers, threads) as port:
        for variant in VARIANTS:  # warm up: connections, imports, caches
            _round(port, variant, office_ids, 1.5)
        sealer.start()
        try:
            for number in range(rounds):
                # Alternate which goes first, so a drift in the machine's state favours neither.
                order = VARIANTS if number % 2 == 0 else VARIANTS[::-1]
                for variant in order:
                    results[variant].append(_round(port, variant, office_ids, seconds))
        finally:
            stop.set()
            sealer.join()
    return Throughput(
        plain=results["plain"],
        audited=results["audited"],
        audited_events=AuditEvent.objects.count() - events_before,
        sealed_events=sum(sealed),
        unsealed_after=AuditEvent.objects.filter(hash="").count(),
        workers=workers,
        threads=threads,
    )
