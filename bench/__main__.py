"""``make bench``: run every ISN benchmark against throwaway PostgreSQL and Redis and print one table.

    python -m tests.servers -m bench          (what make bench runs)
    python -m tests.servers -m bench --quick  (a short smoke run)

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
from urllib.parse import urlsplit, urlunsplit


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
    parser.add_argument("--quick", action="store_true", help="short rounds and 100,000 events: a smoke run")
    args = parser.parse_args(argv)
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print(
            "bench: run through `make bench` (python -m tests.servers -m bench): it needs PostgreSQL", file=sys.stderr
        )
        return 2
    started = time.monotonic()
    _create_database()
    office_ids = _setup()

    from bench import throughput, verify

    print(f"ISN benchmarks on {platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print("1/2 audited vs. unaudited reads, 16 keep-alive clients ...", flush=True)
    load = throughput.run(office_ids, rounds=2 if args.quick else 4, seconds=2.0 if args.quick else 5.0)
    print("2/2 audit_verify over generated sealed events ...", flush=True)
    chain = verify.run(100_000 if args.quick else 1_000_000)

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
    width = [max(len(row[i]) for row in rows) for i in range(4)]
    print()
    print(f"gunicorn: {load.workers} workers x {load.threads} threads (gthread); rounds interleaved")
    for row in rows:
        print("  ".join(cell.ljust(width[i]) for i, cell in enumerate(row)).rstrip())
    print(f"\n{chain.summary}")
    print(f"bench finished in {time.monotonic() - started:.0f} s")
    return 0


def _median(values: list[float]) -> float:
    import statistics

    return statistics.median(values)


def _spread(values: list[float]) -> str:
    return "rounds: " + ", ".join(f"{value:,.0f}" for value in values)


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
