"""Hit/no-hit discovery (issue 15), side by side in one run at a million items with three to six entities each:

- a check of ten identifiers (``POST /api/v1/matches/``) against the inbox's first page, interleaved, by one agency
  system's key; the identifiers are drawn from the generator's own pools, so most of them match items somewhere;
- posting an item with five entities (and its own check: it is discoverable) against posting one without;
- ``rotate_match_key``'s recomputation: tokens rewritten per second over a fixed time, under the real services.
"""

from __future__ import annotations

import http.client
import json
import random
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from bench import items_data
from bench.agency_bench import api_key_authorization
from bench.items_bench import PAGE, Latencies, ensure_items

IDENTIFIERS_PER_CHECK = 10
CHECK_TYPES = ("phone", "vehicle", "person", "email", "identity_document")
POST_CLIENTS = 4
POST_ENTITIES = 5
POST_VARIANTS = ("entities", "plain")  # a discoverable item with five entities, checked as it is posted; none
CHECK_AGENCY = "KH/CNP-ADD"  # the demo API key that checks: Cambodia's counter-narcotics police
POST_AGENCY = "VN/BGC"  # the demo API key that posts
RECOMPUTE_SECONDS = 20.0


@dataclass
class MatchingFigures:
    items: int
    generated: items_data.Generated | None
    entities: int
    tokens: int
    checks: Latencies  # ten identifiers, over HTTP
    inbox: Latencies  # the inbox's first page, same key, interleaved
    identifiers_related: int  # of the identifiers checked, how many matched items the caller can read
    identifiers_hit: int  # ... and how many matched items it cannot (hits)
    posts: dict[str, list[float]]  # variant -> items/s per round
    recomputed: int
    recompute_left: int
    recompute_seconds: float
    workers: int
    threads: int

    @property
    def check_vs_inbox(self) -> float:
        return self.checks.p95 / self.inbox.p95

    @property
    def post_cost(self) -> float:
        """How much more an item with entities costs to post than one without (time per item, medians)."""
        return statistics.median(self.posts["plain"]) / statistics.median(self.posts["entities"])

    @property
    def recompute_rate(self) -> float:
        return self.recomputed / self.recompute_seconds if self.recompute_seconds else 0.0


def _checks(count: int, *, seed: int = 23) -> list[bytes]:
    """Request bodies of ten identifiers each, typed as an officer would, from the generator's pools."""
    rng = random.Random(seed)
    phones = items_data.phone_pools(items_data.SEED)
    bodies = []
    for _ in range(count):
        identifiers = []
        for _ in range(IDENTIFIERS_PER_CHECK):
            entity_type = rng.choice(CHECK_TYPES)
            country = rng.choice(items_data._ISSUERS)
            identifiers.append({"type": entity_type, **items_data.entity_fields(entity_type, rng, phones, country)})
        bodies.append(json.dumps({"identifiers": identifiers}).encode())
    return bodies


def _request(connection: http.client.HTTPConnection, method: str, path: str, headers: dict, body: bytes | None) -> dict:
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    answer = response.read()
    if response.status not in (200, 201):
        raise SystemExit(f"bench: {method} {path} answered {response.status}: {answer[:300]!r}")
    return json.loads(answer)


def _post_body(with_entities: bool, rng: random.Random, phones: dict[str, list[str]]) -> bytes:
    from django.utils import timezone

    item = {
        "title": "Bench item posted by an agency system",
        "body": "Posting benchmark: a case system hands an item to ISN over the API. " * 8,
        "language": "en",
        "category": "meth_pills",
        "priority": "routine",
        "source_reliability": "B",
        "info_credibility": 2,
        "handling_code": "amber",
        "review_date": (timezone.now().date() + timedelta(days=60)).isoformat(),
        "countries": ["VN", "KH"],
        "discoverable": with_entities,
    }
    if with_entities:
        types = ("phone", "vehicle", "person", "email", "identity_document")
        item["entities"] = [
            {"type": entity_type, **items_data.entity_fields(entity_type, rng, phones, "VN")} for entity_type in types
        ]
    return json.dumps(item).encode()


def _post_client(port: int, bodies: list[bytes], seconds: float) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": api_key_authorization(POST_AGENCY), "Content-Type": "application/json"}
    done = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            _request(connection, "POST", "/api/v1/items/", headers, bodies[done % len(bodies)])
            done += 1
    finally:
        connection.close()
    return done


def _post_round(port: int, variant: str, seconds: float, round_number: int) -> float:
    phones = items_data.phone_pools(items_data.SEED)
    rng = random.Random(round_number)
    bodies = [[_post_body(variant == "entities", rng, phones) for _ in range(64)] for _ in range(POST_CLIENTS)]
    started = time.monotonic()
    with ThreadPoolExecutor(POST_CLIENTS) as pool:
        total = sum(pool.map(lambda own: _post_client(port, own, seconds), bodies))
    return total / (time.monotonic() - started)


def _recompute(seconds: float) -> tuple[int, int, float]:
    """Rotate the match key and let the recomputation run for ``seconds``: tokens rewritten, tokens left, time taken.

    Run last: the rotation stays under way (the old version keeps matching until its tokens are all rewritten), and
    the benchmark's database is thrown away afterwards."""
    from agencies.keyring import match_key_rotate, match_tokens_recompute

    new = match_key_rotate(actor=None)
    started = time.monotonic()
    result = match_tokens_recompute(actor=None, old_version=new.version - 1, time_budget=seconds)
    return result.recomputed, result.remaining, time.monotonic() - started


def run(items: int, *, quick: bool = False, workers: int = 2, threads: int = 8) -> MatchingFigures:
    from bench.items_bench import _serving
    from messaging.models import Item, ItemEntity, MatchToken

    generated = ensure_items(items)
    entities, tokens = ItemEntity.objects.count(), MatchToken.objects.count()
    repetitions = 60 if quick else 300
    bodies = _checks(repetitions)
    checks, inbox = Latencies(), Latencies()
    related = hit = 0
    rounds, seconds = (2, 2.0) if quick else (8, 3.0)
    posts: dict[str, list[float]] = {variant: [] for variant in POST_VARIANTS}
    with _serving(workers, threads) as (port, _sampler):
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        check_headers = {"Authorization": api_key_authorization(CHECK_AGENCY), "Content-Type": "application/json"}
        inbox_headers = {"Authorization": api_key_authorization(CHECK_AGENCY)}
        try:
            first = _request(client, "GET", "/api/v1/items/", inbox_headers, None)
            if len(first["results"]) != PAGE:
                raise SystemExit("bench: the checking agency's inbox first page is not a full page")
            _request(client, "POST", "/api/v1/matches/", check_headers, bodies[0])  # warm up
            for number, body in enumerate(bodies):
                pair = [
                    lambda body=body: checks.time(
                        lambda: _request(client, "POST", "/api/v1/matches/", check_headers, body)
                    ),
                    lambda: inbox.time(lambda: _request(client, "GET", "/api/v1/items/", inbox_headers, None)),
                ]
                for step in pair if number % 2 == 0 else pair[::-1]:
                    step()
            for result in _request(client, "POST", "/api/v1/matches/", check_headers, bodies[1])["results"]:
                related += bool(result["related"])
                hit += bool(result["hits"])
        finally:
            client.close()
        for variant in POST_VARIANTS:  # warm up
            _post_round(port, variant, 1.5, 0)
        for number in range(rounds):
            for variant in POST_VARIANTS if number % 2 == 0 else POST_VARIANTS[::-1]:
                posts[variant].append(_post_round(port, variant, seconds, number + 1))
    recomputed, recompute_left, recompute_seconds = _recompute(5.0 if quick else RECOMPUTE_SECONDS)
    return MatchingFigures(
        items=Item.objects.count(),
        generated=generated,
        entities=entities,
        tokens=tokens,
        checks=checks,
        inbox=inbox,
        identifiers_related=related,
        identifiers_hit=hit,
        posts=posts,
        recomputed=recomputed,
        recompute_left=recompute_left,
        recompute_seconds=recompute_seconds,
        workers=workers,
        threads=threads,
    )
