"""Items at scale (issue 4), side by side in one run: the inbox's first page (over HTTP and as the bare selector), our
inbox query against django-guardian's generic ``get_objects_for_user``, detail reads (decrypt + audit) against the
same endpoint serving plaintext without audit, and the resident memory of every web process throughout."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bench import items_data, items_guardian
from bench.throughput import CLIENTS, _sealer, gunicorn

ITEMS_ENV = "ISN_BENCH_ITEMS"
OFFICER = "vn.officer"  # Moc Bai BLO, Viet Nam Border Guard: a busy recipient country
SPARSE_OFFICER = "un.officer"  # UNODC: few items are released to it, so its inbox is the sparsest
PAGE = 50
DETAIL_IDS = 4_000
DETAIL_VARIANTS = ("plain", "real")


@dataclass
class Latencies:
    ms: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return statistics.median(self.ms)

    @property
    def p95(self) -> float:
        return statistics.quantiles(self.ms, n=20, method="inclusive")[-1]

    def time(self, call: Callable[[], object]) -> None:
        started = time.perf_counter()
        call()
        self.ms.append((time.perf_counter() - started) * 1000)


@dataclass
class WorkerMemory:
    pid: int
    samples: list[int] = field(default_factory=list)  # VmRSS, kB, in sampling order
    peak_kb: int = 0  # VmHWM: the kernel's own high-water mark of the resident set

    @property
    def peak_mb(self) -> float:
        return max([self.peak_kb, *self.samples]) / 1024

    @property
    def growth_mb(self) -> float:
        """Mean resident size over the last quarter of the run minus that over the first quarter."""
        if not self.samples:
            return 0.0
        quarter = max(1, len(self.samples) // 4)
        return (statistics.mean(self.samples[-quarter:]) - statistics.mean(self.samples[:quarter])) / 1024


@dataclass
class ItemsFigures:
    items: int
    generated: items_data.Generated | None
    checked: int
    guardian: items_guardian.GuardianData
    visible: int
    listing: Latencies
    visible_query: Latencies
    guardian_query: Latencies
    sparse_visible: int
    sparse_ours: Latencies
    sparse_guardian: Latencies
    api_inbox: Latencies
    detail: dict[str, list[float]]
    memory: list[WorkerMemory]
    workers: int
    threads: int

    @property
    def guardian_ratio(self) -> float:
        return self.guardian_query.p50 / self.listing.p50

    @property
    def sparse_ratio(self) -> float:
        return self.sparse_guardian.p50 / self.sparse_ours.p50

    @property
    def detail_ratio(self) -> float:
        return statistics.median(self.detail["real"]) / statistics.median(self.detail["plain"])


def items_wanted(argument: int | None, *, quick: bool) -> int:
    if argument:
        return argument
    if os.environ.get(ITEMS_ENV):
        return int(os.environ[ITEMS_ENV].replace("_", ""))
    return 50_000 if quick else 1_000_000


def ensure_items(items: int) -> items_data.Generated | None:
    """Generate items until there are ``items`` (None when there were enough already)."""
    from messaging.models import Item

    existing = Item.objects.count()
    if existing >= items:
        return None
    print(f"  generating {items - existing:,} items ...", flush=True)
    return items_data.generate(items - existing)


# --- in-process: the selector and guardian's query ----------------------------------------------------------------


def _queries(username: str) -> dict[str, Callable[[], object]]:
    from django.contrib.auth import get_user_model
    from guardian.shortcuts import get_objects_for_user

    from messaging.models import Item
    from messaging.selectors.items import items_for_listing, items_visible_to

    viewer = get_user_model().objects.get(username=username)
    return {
        # What the inbox runs (annotation, select_related, the viewer's wrapped keys prefetched: two queries).
        "listing": lambda: list(items_for_listing(viewer)[:PAGE]),
        # The same rows, shaped like guardian's answer, for a like-for-like comparison.
        "visible": lambda: list(items_visible_to(viewer)[:PAGE]),
        "guardian": lambda: list(
            get_objects_for_user(viewer, "messaging.view_item", klass=Item).order_by("-created_at", "-id")[:PAGE]
        ),
    }


def _same_answer(username: str, depth: int = 500) -> None:
    """Guardian's rows must be ours, or the comparison compares different work."""
    from django.contrib.auth import get_user_model
    from guardian.shortcuts import get_objects_for_user

    from messaging.models import Item
    from messaging.selectors.items import items_visible_to

    viewer = get_user_model().objects.get(username=username)
    ours = list(items_visible_to(viewer).values_list("pk", flat=True)[:depth])
    theirs = list(
        get_objects_for_user(viewer, "messaging.view_item", klass=Item)
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)[:depth]
    )
    if ours != theirs or len(ours) < PAGE:
        raise SystemExit(f"bench: guardian's generic rows do not give {username} the items ISN does")


def _time_queries(username: str, names: tuple[str, ...], repetitions: int) -> dict[str, Latencies]:
    queries = _queries(username)
    results = {name: Latencies() for name in names}
    for name in names:  # warm up: caches, the viewer's membership and permissions
        queries[name]()
    for number in range(repetitions):
        order = names if number % 2 == 0 else names[::-1]
        for name in order:
            results[name].time(queries[name])
    return results


# --- over HTTP: gunicorn, a signed-in officer, memory sampled from /proc ------------------------------------------


def _session_cookie(username: str) -> str:
    """A signed-in session for the officer, as the portal's sign-in leaves it (second factor included, if ISN asks
    for one), sent as a cookie: GET needs no CSRF token."""
    from django.apps import apps
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.get(username=username)
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    if apps.is_installed("django_otp.plugins.otp_static"):
        from django_otp import DEVICE_ID_SESSION_KEY
        from django_otp.plugins.otp_static.models import StaticDevice

        device, _ = StaticDevice.objects.get_or_create(user=user, name="bench", defaults={"confirmed": True})
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def _proc_status(pid: int) -> dict[str, int]:
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0])
    return values


def _gunicorn_workers(port: int) -> list[int]:
    """The worker processes of the gunicorn master this process started on ``port`` (read from /proc)."""
    marker = f"--bind=127.0.0.1:{port}".encode()
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                if marker not in cmdline.read():
                    continue
            with open(f"/proc/{entry}/stat") as stat:
                parents[int(entry)] = int(stat.read().rpartition(")")[2].split()[1])
    masters = [pid for pid, parent in parents.items() if parent == os.getpid()]
    return sorted(pid for pid, parent in parents.items() if parent in masters)


class MemorySampler(threading.Thread):
    def __init__(self, port: int, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.port, self.interval = port, interval
        self.stop = threading.Event()
        self.workers: dict[int, WorkerMemory] = {}

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            self.sample()

    def restart(self) -> None:
        """Forget the samples so far (start-up and warm-up), keeping the kernel's high-water marks."""
        for worker in self.workers.values():
            worker.samples.clear()

    def sample(self) -> None:
        for pid in _gunicorn_workers(self.port):
            with contextlib.suppress(OSError, KeyError):
                status = _proc_status(pid)
                worker = self.workers.setdefault(pid, WorkerMemory(pid))
                worker.samples.append(status["VmRSS"])
                worker.peak_kb = max(worker.peak_kb, status["VmHWM"])


def _get(connection: http.client.HTTPConnection, path: str, cookie: str) -> bytes:
    connection.request("GET", path, headers={"Cookie": cookie})
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"bench: {path} answered {response.status}: {body[:200]!r}")
    return body


def _inbox(port: int, cookie: str, requests: int) -> Latencies:
    """One keep-alive client, like a browser, asking for the first page again and again."""
    latencies = Latencies()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        page = json.loads(_get(connection, "/api/v1/items/", cookie))
        if len(page["results"]) != PAGE or not all(row["title"] for row in page["results"]):
            raise SystemExit("bench: the inbox's first page is not a full page of opened titles")
        for _ in range(requests):
            latencies.time(lambda: _get(connection, "/api/v1/items/", cookie))
    finally:
        connection.close()
    return latencies


def _detail_client(port: int, cookie: str, paths: list[str], seconds: float) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    done = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            _get(connection, paths[done % len(paths)], cookie)
            done += 1
    finally:
        connection.close()
    return done


def _detail_round(port: int, cookie: str, variant: str, ids: list[str], seconds: float) -> float:
    prefix = "/api/v1/items/" if variant == "real" else "/plain/items/"
    per_client = [[f"{prefix}{pk}/" for pk in ids[n::CLIENTS]] for n in range(CLIENTS)]
    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        total = sum(pool.map(lambda paths: _detail_client(port, cookie, paths, seconds), per_client))
    return total / (time.monotonic() - started)


def _detail_ids(username: str, count: int) -> list[str]:
    """Items the officer may open, from all over the year (not just the newest, which would all be cached)."""
    from django.contrib.auth import get_user_model

    from messaging.models import Item
    from messaging.selectors.items import items_visible_to

    viewer = get_user_model().objects.get(username=username)
    newest = Item.objects.order_by("-created_at").values_list("created_at", flat=True).first()
    rng = random.Random(11)
    ids: list[str] = []
    per_slice = 100
    while len(ids) < count:
        moment = newest - items_data.SPAN * rng.random()
        ids += [
            str(pk)
            for pk in items_visible_to(viewer).filter(created_at__lte=moment).values_list("pk", flat=True)[:per_slice]
        ]
    rng.shuffle(ids)
    return ids[:count]


@contextlib.contextmanager
def _serving(workers: int, threads: int) -> Iterator[tuple[int, MemorySampler]]:
    stop = threading.Event()
    sealed: list[int] = []
    # The Celery worker's part while the site is busy: seal new audit events into the chain.
    sealer = threading.Thread(target=_sealer, args=(stop, sealed))
    with gunicorn(workers, threads) as port:
        sampler = MemorySampler(port)
        sampler.sample()
        sampler.start()
        sealer.start()
        try:
            yield port, sampler
        finally:
            stop.set()
            sealer.join()
            sampler.stop.set()
            sampler.join()
            sampler.sample()


# --- the run ------------------------------------------------------------------------------------------------------


def run(items: int, *, quick: bool = False, workers: int = 2, threads: int = 8) -> ItemsFigures:
    from django.contrib.auth import get_user_model

    from messaging.models import Item
    from messaging.selectors.items import items_visible_to

    generated = ensure_items(items)
    checked = items_data.check_sample()
    print("  guardian's generic rows ...", flush=True)
    guardian = items_guardian.load()
    for username in (OFFICER, SPARSE_OFFICER):
        _same_answer(username)
    User = get_user_model()
    visible = items_visible_to(User.objects.get(username=OFFICER)).count()
    sparse_visible = items_visible_to(User.objects.get(username=SPARSE_OFFICER)).count()

    print("  inbox queries in process ...", flush=True)
    repetitions = 30 if quick else 100
    timed = _time_queries(OFFICER, ("listing", "visible", "guardian"), repetitions)
    sparse = _time_queries(SPARSE_OFFICER, ("visible", "guardian"), repetitions // 2)

    print("  inbox and detail over HTTP ...", flush=True)
    cookie = _session_cookie(OFFICER)
    ids = _detail_ids(OFFICER, DETAIL_IDS)
    rounds, seconds = (2, 2.0) if quick else (4, 5.0)
    detail: dict[str, list[float]] = {variant: [] for variant in DETAIL_VARIANTS}
    with _serving(workers, threads) as (port, sampler):
        for variant in DETAIL_VARIANTS:  # warm up: connections, imports, caches
            _detail_round(port, cookie, variant, ids, 1.5)
        _inbox(port, cookie, 10)
        sampler.restart()  # growth is judged from here: a process that is warm, not one starting up
        inbox = _inbox(port, cookie, 100 if quick else 300)
        for number in range(rounds):
            # Alternate which goes first, so a drift in the machine's state favours neither.
            for variant in DETAIL_VARIANTS if number % 2 == 0 else DETAIL_VARIANTS[::-1]:
                detail[variant].append(_detail_round(port, cookie, variant, ids, seconds))
        # The inbox again at the end, so memory is sampled over a last quarter doing both kinds of request.
        inbox.ms += _inbox(port, cookie, 50 if quick else 150).ms
    return ItemsFigures(
        items=Item.objects.count(),
        generated=generated,
        checked=checked,
        guardian=guardian,
        visible=visible,
        listing=timed["listing"],
        visible_query=timed["visible"],
        guardian_query=timed["guardian"],
        sparse_visible=sparse_visible,
        sparse_ours=sparse["visible"],
        sparse_guardian=sparse["guardian"],
        api_inbox=inbox,
        detail=detail,
        memory=sorted(sampler.workers.values(), key=lambda worker: worker.pid),
        workers=workers,
        threads=threads,
    )
