"""``make bench``: run every ISN benchmark against throwaway PostgreSQL and Redis and print one table.

    python -m tests.servers -m bench                 (what make bench runs: 1,000,000 items)
    python -m tests.servers -m bench --quick         (a short smoke run: 50,000 items)
    python -m tests.servers -m bench --items 200000  (or ISN_BENCH_ITEMS=200000)
    python -m tests.servers -m bench --only items    (one group: audit, items, routing, agency or matching)

Not part of ``make test``: figures depend on the machine; BENCHMARKS.md records what was measured.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import time
from contextlib import redirect_stdout
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from bench.agency_bench import AgencyFigures
    from bench.items_bench import ItemsFigures, Latencies
    from bench.matching_bench import MatchingFigures


def _create_database() -> None:
    """tests.servers starts an empty PostgreSQL; the bench needs the database DATABASE_URL names."""
    import psycopg

    url = urlsplit(os.environ["DATABASE_URL"])
    name = url.path.lstrip("/")
    admin = urlunsplit(url._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


def _setup() -> list[int]:
    import django
    from django.core.management import call_command

    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    django.setup()
    with redirect_stdout(io.StringIO()):
        call_command("migrate", verbosity=0)
        call_command("seed_demo")
    from agencies.models import Office

    return list(Office.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True)[:16])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="short rounds, 100,000 events, 50,000 items: a smoke run")
    parser.add_argument(
        "--items", type=int, default=None, help="items for the items benchmark (default 1,000,000, or $ISN_BENCH_ITEMS)"
    )
    parser.add_argument(
        "--only", choices=["audit", "items", "routing", "agency", "matching"], help="run one group of benchmarks"
    )
    args = parser.parse_args(argv)
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print(
            "bench: run through `make bench` (python -m tests.servers -m bench): it needs PostgreSQL", file=sys.stderr
        )
        return 2
    started = time.monotonic()
    _create_database()
    office_ids = _setup()

    from bench import items_bench

    print(f"ISN benchmarks on {platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}")
    if args.only in (None, "audit"):
        _audit_benchmarks(office_ids, quick=args.quick)
    if args.only in (None, "items"):
        items = items_bench.items_wanted(args.items, quick=args.quick)
        print(f"items: {items:,} items, inbox, guardian comparison, detail reads, web process memory ...", flush=True)
        _print_items(items_bench.run(items, quick=args.quick))
    if args.only in (None, "routing"):
        from bench import routing_bench

        print("routing: backlog, FLASH behind it, sixty-agency fan-out, worker memory ...", flush=True)
        routing_bench.report(routing_bench.run(quick=args.quick))
    if args.only in (None, "agency"):
        from bench import agency_bench

        items = items_bench.items_wanted(args.items, quick=args.quick)
        print(
            f"agency systems: change feed over {items:,} items, inbox beside it, posts with Idempotency-Key ...",
            flush=True,
        )
        _print_agency(agency_bench.run(items, quick=args.quick))
    if args.only in (None, "matching"):  # last: it leaves a rotation of the match key under way
        from bench import matching_bench

        items = items_bench.items_wanted(args.items, quick=args.quick)
        print(f"matching: identifier checks over {items:,} items, posts with entities, match key rotation ...")
        _print_matching(matching_bench.run(items, quick=args.quick))
    print(f"bench finished in {time.monotonic() - started:.0f} s")
    return 0


def _audit_benchmarks(office_ids: list[int], *, quick: bool) -> None:
    from bench import throughput, verify

    print("1/2 audited vs. unaudited reads, 16 keep-alive clients ...", flush=True)
    load = throughput.run(office_ids, rounds=2 if quick else 4, seconds=2.0 if quick else 5.0)
    print("2/2 audit_verify over generated sealed events ...", flush=True)
    chain = verify.run(100_000 if quick else 1_000_000)

    rows = [
        ("unaudited reads, 16 clients (req/s)", f"{_median(load.plain):,.0f}", _spread(load.plain), ""),
        ("audited reads, 16 clients (req/s)", f"{_median(load.audited):,.0f}", _spread(load.audited), ""),
        ("audited / unaudited", f"{load.ratio:.2f}", "", "target >= 0.80: " + _verdict(load.ratio >= 0.8)),
        (
            "events sealed while serving",
            f"{load.sealed_events:,}",
            f"{load.audited_events:,} recorded; {load.unsealed_after:,} unsealed at the end",
            "",
        ),
        (
            "audit_verify (events/s)",
            f"{chain.rate:,.0f}",
            f"{chain.verified:,} events in {chain.verify_seconds:.1f} s",
            "target >= 100,000: " + _verdict(chain.rate >= 100_000),
        ),
        ("load generated chain (COPY)", f"{chain.load_seconds:.1f} s", f"hashing {chain.generate_seconds:.1f} s", ""),
    ]
    print()
    print(f"gunicorn: {load.workers} workers x {load.threads} threads (gthread); rounds interleaved")
    _table(rows)
    print(f"\n{chain.summary}")


def _print_items(figures: ItemsFigures) -> None:
    from bench.items_bench import OFFICER, SPARSE_OFFICER

    g = figures.generated
    # The targets are set for one million items; a smaller run shows its figures without judging them.
    full = figures.items >= 1_000_000

    def verdict(target: str, ok: bool) -> str:
        return f"{target}: " + (_verdict(ok) if full else "judged at 1,000,000 items")

    rows = []
    if g is not None:
        rows.append(
            (
                "generate + load items (COPY)",
                f"{g.seconds:.0f} s",
                f"{g.items:,} items, {g.rate:,.0f}/s; {g.grants:,} country grants, {g.restricted:,} restricted, "
                f"{g.named:,} named, {g.ended:,} ended",
                "",
            )
        )
    rows += [
        ("generated items checked", f"{figures.checked}", "open for a recipient, refused to non-recipients", ""),
        (
            "guardian generic rows",
            f"{figures.guardian.rows:,}",
            f"{'loaded' if figures.guardian.loaded else 'present'} in {figures.guardian.seconds:.0f} s",
            "",
        ),
        (
            f"inbox API first page, {OFFICER} (ms)",
            _pcts(figures.api_inbox),
            f"{len(figures.api_inbox.ms)} requests, one keep-alive client; {figures.visible:,} items visible",
            verdict("target p95 < 50", figures.api_inbox.p95 < 50),
        ),
        (
            "items_for_listing()[:50] (ms)",
            _pcts(figures.listing),
            "what the inbox runs, in process",
            verdict("target p95 < 50", figures.listing.p95 < 50),
        ),
        ("items_visible_to()[:50] (ms)", _pcts(figures.visible_query), "", ""),
        ("guardian get_objects_for_user[:50] (ms)", _pcts(figures.guardian_query), "same rows, checked", ""),
        (
            "guardian / ours (p50)",
            f"{figures.guardian_ratio:.1f}x",
            "",
            verdict("target >= 10x", figures.guardian_ratio >= 10),
        ),
        (
            f"sparse inbox, {SPARSE_OFFICER}: ours; guardian (ms)",
            f"{_pcts(figures.sparse_ours)}; {_pcts(figures.sparse_guardian)}",
            f"{figures.sparse_visible:,} items visible; guardian / ours {figures.sparse_ratio:.1f}x",
            "",
        ),
        (
            "detail, plaintext, no audit (req/s)",
            f"{_median(figures.detail['plain']):,.0f}",
            _spread(figures.detail["plain"]),
            "",
        ),
        (
            "detail, decrypt + audit (req/s)",
            f"{_median(figures.detail['real']):,.0f}",
            _spread(figures.detail["real"]),
            "",
        ),
        (
            "decrypt + audit / plaintext",
            f"{figures.detail_ratio:.2f}",
            "",
            verdict("target >= 0.70", figures.detail_ratio >= 0.7),
        ),
    ]
    for worker in figures.memory:
        rows.append(
            (
                f"web worker {worker.pid} peak RSS (MB)",
                f"{worker.peak_mb:.0f}",
                f"last quarter vs first: {worker.growth_mb:+.1f} MB over {len(worker.samples)} samples",
                verdict("target < 200, not growing", worker.peak_mb < 200 and worker.growth_mb < 10),
            )
        )
    print()
    print(f"items: {figures.items:,}; gunicorn: {figures.workers} workers x {figures.threads} threads (gthread)")
    _table(rows)


def _print_agency(figures: AgencyFigures) -> None:
    from bench.agency_bench import FEED_PAGE, FEED_WALK, POST_CLIENTS
    from bench.items_bench import OFFICER

    g, feed = figures.generated, figures.feed
    full = figures.items >= 1_000_000

    def verdict(target: str, ok: bool) -> str:
        return f"{target}: " + (_verdict(ok) if full else "judged at 1,000,000 items")

    rows = []
    if g is not None:
        rows.append(("generate + load items (COPY)", f"{g.seconds:.0f} s", f"{g.items:,} items, {g.rate:,.0f}/s", ""))
    rows += [
        (
            "generate the change feed (INSERT ... SELECT)",
            f"{feed.seconds:.0f} s" if feed.generated else "present",
            f"{feed.changes:,} changes in all, {feed.agency_changes:,} to {OFFICER}'s agency; "
            f"{feed.checked} items checked against audience_of",
            "",
        ),
        (
            f"feed page of {FEED_PAGE} over HTTP, {OFFICER} (ms)",
            _pcts(figures.feed_pages),
            f"{len(figures.feed_pages.ms)} pages: {figures.walks} walks of {FEED_WALK:,} changes following the cursor",
            "",
        ),
        (
            f"inbox API first page, {OFFICER} (ms)",
            _pcts(figures.inbox),
            f"{len(figures.inbox.ms)} requests, interleaved with the walks; {figures.visible:,} items visible",
            "",
        ),
        (
            "feed page p95 / inbox first page p95",
            f"{figures.feed_vs_inbox:.2f}",
            "",
            verdict("target <= 1.00", figures.feed_vs_inbox <= 1.0),
        ),
        ("the page's statement in process (ms)", _pcts(figures.page_query), "what changes_page runs", ""),
        (
            f"posts with Idempotency-Key, {POST_CLIENTS} clients (items/s)",
            f"{_median(figures.posts['keyed']):,.1f}",
            _spread(figures.posts["keyed"], ".1f") + f"; {figures.keys_recorded:,} keys recorded",
            "",
        ),
        (
            f"posts without, {POST_CLIENTS} clients (items/s)",
            f"{_median(figures.posts['plain']):,.1f}",
            _spread(figures.posts["plain"], ".1f"),
            "",
        ),
        (
            "with / without",
            f"{figures.post_ratio:.2f}",
            "",
            "target >= 0.90: " + _verdict(figures.post_ratio >= 0.9),
        ),
    ]
    print()
    print(f"items: {figures.items:,}; gunicorn: {figures.workers} workers x {figures.threads} threads (gthread)")
    _table(rows)
    if figures.feed_vs_inbox > 1.0:
        print("\nthe page's plan (EXPLAIN ANALYZE):\n" + figures.page_plan)


def _print_matching(figures: MatchingFigures) -> None:
    from bench.matching_bench import CHECK_AGENCY, IDENTIFIERS_PER_CHECK, POST_CLIENTS, POST_ENTITIES

    full = figures.items >= 1_000_000

    def verdict(target: str, ok: bool) -> str:
        return f"{target}: " + (_verdict(ok) if full else "judged at 1,000,000 items")

    rows = []
    if figures.generated is not None:
        g = figures.generated
        rows.append(("generate + load items (COPY)", f"{g.seconds:.0f} s", f"{g.items:,} items, {g.rate:,.0f}/s", ""))
    rows += [
        (
            "entities and match tokens",
            f"{figures.entities:,}",
            f"{figures.entities / max(figures.items, 1):.1f} an item; {figures.tokens:,} tokens",
            "",
        ),
        (
            f"check of {IDENTIFIERS_PER_CHECK} identifiers over HTTP, {CHECK_AGENCY}'s key (ms)",
            _pcts(figures.checks),
            f"{len(figures.checks.ms)} checks; in one of them {figures.identifiers_related} identifiers were in "
            f"items it can read, {figures.identifiers_hit} hit items it cannot",
            "",
        ),
        ("inbox API first page, same key (ms)", _pcts(figures.inbox), f"{len(figures.inbox.ms)} requests", ""),
        (
            "check p95 / inbox first page p95",
            f"{figures.check_vs_inbox:.2f}",
            "",
            verdict("target <= 0.50", figures.check_vs_inbox <= 0.5),
        ),
        (
            f"posts with {POST_ENTITIES} entities, discoverable, {POST_CLIENTS} clients (items/s)",
            f"{_median(figures.posts['entities']):,.1f}",
            _spread(figures.posts["entities"], ".1f"),
            "",
        ),
        (
            f"posts without entities, {POST_CLIENTS} clients (items/s)",
            f"{_median(figures.posts['plain']):,.1f}",
            _spread(figures.posts["plain"], ".1f"),
            "",
        ),
        (
            "cost of a post with entities / without",
            f"{figures.post_cost:.2f}",
            "",
            "target <= 1.20: " + _verdict(figures.post_cost <= 1.2),
        ),
        (
            "rotate_match_key: tokens recomputed (tokens/s)",
            f"{figures.recompute_rate:,.0f}",
            f"{figures.recomputed:,} in {figures.recompute_seconds:.0f} s; {figures.recompute_left:,} left, "
            f"about {figures.recompute_left / max(figures.recompute_rate, 1) / 60:,.0f} min to finish",
            "",
        ),
    ]
    print()
    print(f"items: {figures.items:,}; gunicorn: {figures.workers} workers x {figures.threads} threads (gthread)")
    _table(rows)


def _pcts(latencies: Latencies) -> str:
    return f"{latencies.p50:.1f} / {latencies.p95:.1f}"


def _table(rows: list[tuple[str, str, str, str]]) -> None:
    width = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width[i]) for i, cell in enumerate(row)).rstrip())


def _median(values: list[float]) -> float:
    import statistics

    return statistics.median(values)


def _spread(values: list[float], spec: str = ".0f") -> str:
    return "rounds: " + ", ".join(f"{value:,{spec}}" for value in values)


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
