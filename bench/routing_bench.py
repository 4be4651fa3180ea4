"""Routing through Celery with one local worker: post-to-delivery latency (ROUTINE under a backlog of 10,000 ROUTINE
deliveries, FLASH posted behind that backlog), sustained ingest with fan-out to sixty agencies, worker memory.

Latency is ``min(Delivery.routed_at) - Item.created_at`` per item, both stamped on this host. Items are posted
through ``messaging.items.lifecycle.item_create`` in this process (published to Redis on commit, exactly as a request
does); the worker is ``celery -A isn worker --queues urgent,default --concurrency 2`` as in the Makefile.

Sustained ingest is measured twice, with three posting processes while the worker routes: paced at the target
rate (the target is met when every item offered is accepted and routing keeps up with them), then flat out (how
many items per second the box accepts, and how long routing then needs to catch up).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FANOUT_AGENCIES = 60
BACKLOG_AGENCIES = 10
POSTER = "vn.officer"
POSTERS = 3
TARGET_RATE = 50.0  # items per second, accepted and routed (issue 5)
KEEPS_UP_SECONDS = 2.0  # routing keeps up when what is left at the end of a paced run takes at most this long


@dataclass
class Ingest:
    """Posting for a while with the worker routing at the same time; ``offered`` is None when posting flat out."""

    offered: float | None
    seconds: float
    posted: int
    routed_during: int
    drain_seconds: float
    deliveries: int
    latencies: list[float]

    @property
    def accepted_rate(self) -> float:
        return self.posted / self.seconds

    @property
    def routed_rate(self) -> float:
        """Items accepted and routed per second, over the posting and the catching up."""
        return self.posted / (self.seconds + self.drain_seconds)

    @property
    def keeps_up(self) -> bool:
        return self.drain_seconds <= KEEPS_UP_SECONDS


@dataclass
class RoutingFigures:
    backlog_items: int
    backlog_deliveries: int
    backlog_drain_seconds: float
    routine: list[float]
    flash: list[float]
    fanout_recipients: int
    posters: int
    paced: Ingest
    flat_out: Ingest
    rss_mb: list[float]
    rss_warm: int  # the first sample taken once the worker had routed something (its pool processes loaded)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (the prefork pool), in MiB."""
    total = 0
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for each in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


@contextlib.contextmanager
def _worker(samples: list[float]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "isn",
            "worker",
            "--queues",
            "urgent,default",
            "--concurrency",
            "2",
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env={**os.environ, "ISN_EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend"},
    )
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            samples.append(_rss_mb(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield process
    finally:
        stop.set()
        process.terminate()
        process.wait(timeout=60)


def _purge() -> None:
    from isn.celery import app

    with app.connection_for_write() as conn:
        for queue in ("urgent", "default"):
            with contextlib.suppress(Exception):
                conn.default_channel.queue_purge(queue)


def _agencies() -> tuple[Any, list[Any]]:
    """Bench agencies, so that sixty agencies besides the poster's receive an item released to every country."""
    from django.contrib.auth import get_user_model

    from agencies.models import Agency, AgencyKind, Country
    from agencies.selectors import membership_for

    poster = get_user_model().objects.get(username=POSTER)
    own = membership_for(poster).agency  # type: ignore[union-attr]
    codes = list(Country.objects.order_by("code").values_list("code", flat=True))
    existing = Agency.objects.filter(is_active=True).exclude(pk=own.pk).count()
    for number in range(max(0, FANOUT_AGENCIES - existing)):
        # Cambodia first: the backlog restricts to ten Cambodian bench agencies.
        code = "KH" if number < BACKLOG_AGENCIES else codes[number % len(codes)]
        Agency.objects.get_or_create(
            country_id=code,
            short_name=f"BENCH{number}",
            defaults={"name": f"Bench agency {number}", "kind": AgencyKind.POLICE},
        )
    bench_kh = list(Agency.objects.filter(country_id="KH", short_name__startswith="BENCH").order_by("pk"))
    return poster, bench_kh[:BACKLOG_AGENCIES]


def _post(poster: Any, **fields: Any) -> Any:
    from django.utils import timezone

    from messaging.items.lifecycle import item_create

    values: dict[str, Any] = {
        "title": "Bench item",
        "body": "Routing benchmark.",
        "language": "en",
        "category": "meth_pills",
        "priority": "routine",
        "source_reliability": "B",
        "info_credibility": 2,
        "handling_code": "amber",
        "review_date": timezone.now().date() + timedelta(days=30),
        "countries": ["VN", "KH"],
    }
    values.update(fields)
    return item_create(actor=poster, **values).item.pk


def _keep_posting(job: tuple[int, list[str], float, float, float]) -> list[Any]:
    from django.contrib.auth import get_user_model
    from django.db import connections
    from kombu import pools

    from isn.celery import app

    # A forked child: fresh broker connections, then post until the deadline, every ``interval`` seconds from
    # ``start`` (never faster; as fast as it can when it falls behind), or flat out when the interval is 0.
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None
    user_id, countries, start, interval, deadline = job
    poster = get_user_model().objects.get(pk=user_id)
    posted = []
    due = start
    try:
        while due < deadline and (now := time.monotonic()) < deadline:
            if due > now:
                time.sleep(due - now)
            posted.append(_post(poster, countries=countries))
            due += interval
    finally:
        connections.close_all()
    return posted


def _ingest(poster: Any, countries: list[str], seconds: float, offered: float | None) -> Ingest:
    """Post for ``seconds`` from three processes (paced to ``offered`` items/s in all, or flat out) while the worker
    routes; then wait until every item is routed."""
    from django.db import connections

    from messaging.models.delivery import Delivery

    connections.close_all()  # the children must not share this process's database connection
    interval = POSTERS / offered if offered else 0.0
    start = time.monotonic() + 0.5
    deadline = start + seconds
    # Staggered, so that the paced posters together post evenly.
    jobs = [(poster.pk, countries, start + index * interval / POSTERS, interval, deadline) for index in range(POSTERS)]
    with ProcessPoolExecutor(POSTERS, mp_context=multiprocessing.get_context("fork")) as pool:
        batches = list(pool.map(_keep_posting, jobs))
    post_seconds = time.monotonic() - start
    posted = [item_id for batch in batches for item_id in batch]
    routed_during = Delivery.objects.filter(item_id__in=posted).values("item_id").distinct().count()
    drain_started = time.monotonic()
    _wait_routed(posted, timeout=900)
    return Ingest(
        offered=offered,
        seconds=post_seconds,
        posted=len(posted),
        routed_during=routed_during,
        drain_seconds=time.monotonic() - drain_started,
        deliveries=Delivery.objects.filter(item_id__in=posted).count(),
        latencies=_latencies(posted),
    )


def _wait_idle(timeout: float) -> None:
    """Until the worker has nothing left to do (e-mails included), so that one run does not slow the next."""
    from messaging.models import OutboxMessage

    deadline = time.monotonic() + timeout
    while OutboxMessage.objects.filter(processed_at__isnull=True).exists() and time.monotonic() < deadline:
        time.sleep(0.25)


def _latencies(item_ids: list[Any]) -> list[float]:
    from django.db.models import Min

    from messaging.models import Item
    from messaging.models.delivery import Delivery

    created = dict(Item.objects.filter(pk__in=item_ids).values_list("pk", "created_at"))
    routed = dict(
        Delivery.objects.filter(item_id__in=item_ids)
        .values("item_id")
        .annotate(first=Min("routed_at"))
        .values_list("item_id", "first")
    )
    return [(routed[pk] - created[pk]).total_seconds() for pk in item_ids if pk in routed]


def _wait_routed(item_ids: list[Any], timeout: float) -> None:
    from messaging.models.delivery import Delivery

    deadline = time.monotonic() + timeout
    while Delivery.objects.filter(item_id__in=item_ids).values("item_id").distinct().count() < len(item_ids):
        if time.monotonic() > deadline:
            raise SystemExit("bench: routing did not finish in time")
        time.sleep(0.25)


def run(*, quick: bool = False) -> RoutingFigures:
    from agencies.models import Agency
    from messaging.models.delivery import Delivery

    poster, backlog_agencies = _agencies()
    own_agency = poster.membership.agency_id
    _purge()
    rss: list[float] = []

    # 1. A backlog of ROUTINE routing (ten recipients each), queued while no worker runs.
    backlog_items = 100 if quick else 1000
    restrict = [own_agency, *[agency.pk for agency in backlog_agencies]]
    backlog = [_post(poster, agencies=restrict) for _ in range(backlog_items)]
    routine_probes = [_post(poster, agencies=restrict) for _ in range(20)]
    with _worker(rss) as worker:
        # 2. FLASH items posted behind it, once the worker is draining the backlog.
        deadline = time.monotonic() + 60
        while not Delivery.objects.filter(item_id__in=backlog).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)  # both pool processes at work
        rss_warm = len(rss)
        flash_probes = []
        for _ in range(5 if quick else 20):
            flash_probes.append(_post(poster, priority="flash"))
            time.sleep(0.3)
        started = time.monotonic()
        _wait_routed(backlog + routine_probes + flash_probes, timeout=600)
        drain = time.monotonic() - started + 0.3 * len(flash_probes)
        backlog_deliveries = Delivery.objects.filter(item_id__in=backlog).count()

        # 3. Sustained ingest, released to every country: sixty recipient agencies per item. Posters are processes,
        # as web workers are: threads of one process would measure the GIL.
        recipients = Agency.objects.filter(is_active=True).exclude(pk=own_agency).count()
        seconds = 5.0 if quick else 15.0
        countries = sorted(set(Agency.objects.values_list("country_id", flat=True)))
        _wait_idle(120)
        paced = _ingest(poster, countries, seconds, TARGET_RATE)
        _wait_idle(300)
        flat_out = _ingest(poster, countries, seconds, None)
        _wait_idle(300)
        assert worker.poll() is None, "the worker died"
    return RoutingFigures(
        backlog_items=backlog_items,
        backlog_deliveries=backlog_deliveries,
        backlog_drain_seconds=drain,
        routine=_latencies(routine_probes),
        flash=_latencies(flash_probes),
        fanout_recipients=recipients,
        posters=POSTERS,
        paced=paced,
        flat_out=flat_out,
        rss_mb=rss,
        rss_warm=rss_warm,
    )


def report(figures: RoutingFigures) -> None:
    paced, flat_out = figures.paced, figures.flat_out
    met = paced.accepted_rate >= TARGET_RATE * 0.99 and paced.keeps_up
    flash_p95 = _pct(figures.flash, 0.95)
    rss = figures.rss_mb
    warm = rss[min(len(rss) - 1, figures.rss_warm)] if rss else 0.0
    rows = [
        (
            "backlog",
            f"{figures.backlog_deliveries:,} deliveries",
            f"{figures.backlog_items:,} ROUTINE items x {BACKLOG_AGENCIES} agencies; drained in "
            f"{figures.backlog_drain_seconds:.0f} s ({figures.backlog_deliveries / figures.backlog_drain_seconds:,.0f}"
            " deliveries/s)",
            "",
        ),
        (
            "ROUTINE post-to-delivery behind it",
            f"p50 {_pct(figures.routine, 0.5):.1f} s",
            f"p95 {_pct(figures.routine, 0.95):.1f} s ({len(figures.routine)} items queued last)",
            "",
        ),
        (
            "FLASH post-to-delivery behind it",
            f"p50 {_pct(figures.flash, 0.5) * 1000:.0f} ms",
            f"p95 {flash_p95 * 1000:.0f} ms, max {max(figures.flash) * 1000:.0f} ms ({len(figures.flash)} items)",
            "target p95 < 500 ms: " + ("met" if flash_p95 < 0.5 else "NOT met"),
        ),
        (
            f"sustained ingest, fan-out {figures.fanout_recipients}, offered {TARGET_RATE:.0f}/s",
            f"{paced.accepted_rate:,.1f} items/s accepted",
            f"{paced.posted:,} items by {figures.posters} processes in {paced.seconds:.1f} s; "
            f"{paced.routed_during:,} routed meanwhile, the rest in {paced.drain_seconds:.1f} s more "
            f"({'keeps up' if paced.keeps_up else 'falls behind'}); post-to-delivery p50 "
            f"{_pct(paced.latencies, 0.5):.1f} s, p95 {_pct(paced.latencies, 0.95):.1f} s",
            f"target >= {TARGET_RATE:.0f}/s accepted and routed: " + ("met" if met else "NOT met"),
        ),
        (
            f"flat-out posting, fan-out {figures.fanout_recipients}",
            f"{flat_out.accepted_rate:,.1f} items/s accepted",
            f"{flat_out.posted:,} items in {flat_out.seconds:.1f} s; {flat_out.routed_during:,} routed meanwhile, "
            f"the rest in {flat_out.drain_seconds:.1f} s more: {flat_out.routed_rate:,.1f} items/s accepted and routed",
            "",
        ),
        (
            "routing throughput under fan-out",
            f"{flat_out.deliveries / (flat_out.seconds + flat_out.drain_seconds):,.0f} deliveries/s",
            f"{flat_out.deliveries:,} deliveries (flat-out run, posting and catching up)",
            "",
        ),
        (
            "worker RSS (main + 2 children)",
            f"{warm:.0f} -> {rss[-1]:.0f} MiB" if rss else "n/a",
            f"max {max(rss):.0f} MiB, median {statistics.median(rss):.0f} MiB over {len(rss)} samples" if rss else "",
            "flat" if rss and rss[-1] <= warm * 1.2 else "grew",
        ),
    ]
    width = [max(len(row[i]) for row in rows) for i in range(4)]
    print()
    print("routing: one worker (--concurrency 2, queues urgent,default), posts through item_create in this process")
    for row in rows:
        print("  ".join(cell.ljust(width[i]) for i, cell in enumerate(row)).rstrip())
