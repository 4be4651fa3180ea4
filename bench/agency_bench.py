"""Agency systems (issue 13), side by side in one run: the change feed read by an agency's system (pages of 500,
following the cursor) interleaved with the inbox's first page, over HTTP at a million items; and posting through the
API with an ``Idempotency-Key`` against posting without one.

The feed is generated from the generated items: an ``item.visible`` change for every agency (and named person) that
may read each item, as ``item_create`` writes them, in the items' time order.
"""

from __future__ import annotations

import http.client
import json
import random
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from bench import items_data
from bench.items_bench import OFFICER, PAGE, Latencies, _get, _serving, _session_cookie, ensure_items

FEED_PAGE = 500
FEED_WALK = 10_000  # changes read by one walk: twenty pages, each asked for with the cursor the last one gave
FEED_BATCHES = 24  # the generated changes are written in this many slices of the year, each in one statement
POST_CLIENTS = 4
POST_VARIANTS = ("keyed", "plain")  # with an Idempotency-Key, without one
POST_AGENCY = "VN/BGC"  # the demo API key posting: Viet Nam Border Guard, the officer's own agency

# One row per agency or named person that may read the item, as item_create's statement writes them: the originating
# agency; while the item is active, every agency of each released country it is not narrowed in, every agency it is
# narrowed to, and every named person. Ids follow the items' time order, as if each had been posted in turn.
_FEED_SQL = """
    INSERT INTO messaging_change (id, at, kind, agency_id, user_id, item_id)
    SELECT %(first)s + row_number() OVER (ORDER BY at, item_id, agency_id, user_id) - 1,
           at, 'item.visible', agency_id, user_id, item_id
    FROM (
        SELECT i.created_at AS at, i.id AS item_id, i.originator_agency_id AS agency_id, NULL::integer AS user_id
        FROM messaging_item i
        WHERE i.created_at >= %(since)s AND i.created_at < %(until)s
        UNION ALL
        SELECT i.created_at, i.id, a.id, NULL
        FROM messaging_item i
        JOIN messaging_itemcountrygrant g ON g.item_id = i.id
        JOIN agencies_agency a ON a.country_id = g.country_id AND a.id <> i.originator_agency_id
        WHERE i.created_at >= %(since)s AND i.created_at < %(until)s AND i.status = 'active'
            AND NOT EXISTS (SELECT 1 FROM messaging_itemagencygrant r
                            WHERE r.item_id = i.id AND r.country_id = g.country_id)
        UNION ALL
        SELECT i.created_at, i.id, r.agency_id, NULL
        FROM messaging_item i
        JOIN messaging_itemagencygrant r ON r.item_id = i.id AND r.agency_id <> i.originator_agency_id
        WHERE i.created_at >= %(since)s AND i.created_at < %(until)s AND i.status = 'active'
        UNION ALL
        SELECT i.created_at, i.id, NULL, p.user_id
        FROM messaging_item i
        JOIN messaging_itemuserobjectpermission p ON p.content_object_id = i.id
        WHERE i.created_at >= %(since)s AND i.created_at < %(until)s AND i.status = 'active'
    ) AS audience
    WHERE NOT EXISTS (SELECT 1 FROM bench_told t WHERE t.item_id = audience.item_id)
"""


@dataclass
class FeedData:
    changes: int  # in the table
    generated: int  # written by this run (0: present already)
    seconds: float
    agency_changes: int  # addressed to the officer's agency
    checked: int  # generated items whose changes were checked against audience_of


@dataclass
class AgencyFigures:
    items: int
    generated: items_data.Generated | None
    feed: FeedData
    visible: int
    walks: int
    feed_pages: Latencies  # one page of 500 over HTTP, following the cursor
    inbox: Latencies  # the inbox's first page over HTTP, interleaved with the walks
    page_query: Latencies  # the page's statement alone, in process
    page_plan: str
    posts: dict[str, list[float]]  # variant -> posts/s per round
    keys_recorded: int
    workers: int
    threads: int

    @property
    def feed_vs_inbox(self) -> float:
        return self.feed_pages.p95 / self.inbox.p95

    @property
    def post_ratio(self) -> float:
        return statistics.median(self.posts["keyed"]) / statistics.median(self.posts["plain"])


# --- the feed's rows ------------------------------------------------------------------------------------------------


def generate_feed() -> FeedData:
    """Write the changes the generated items would have left (once: items that told anyone already are skipped)."""
    from messaging.models import Change

    started = time.perf_counter()
    generated = _write_feed()
    agency_id = _officer_agency_id()
    return FeedData(
        changes=Change.objects.count(),
        generated=generated,
        seconds=time.perf_counter() - started,
        agency_changes=Change.objects.filter(agency_id=agency_id).count(),
        checked=check_feed_sample() if generated else 0,
    )


def _write_feed() -> int:
    from django.db import connection, transaction

    from messaging.models import Change, Item

    oldest = Item.objects.order_by("created_at").values_list("created_at", flat=True).first()
    newest = Item.objects.order_by("-created_at").values_list("created_at", flat=True).first()
    if oldest is None or newest is None:
        raise SystemExit("bench: no items to tell the feed of")
    step = (newest - oldest) / FEED_BATCHES + timedelta(microseconds=1)
    written = 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        superuser = cursor.fetchone()[0]
        # Items posted through item_create (the demo's, the routing benchmark's) told their audience already.
        cursor.execute("CREATE TEMPORARY TABLE bench_told AS SELECT DISTINCT item_id FROM messaging_change")
        cursor.execute("ANALYZE bench_told")
        cursor.execute(
            "SELECT count(*) FROM messaging_item i WHERE NOT EXISTS (SELECT 1 FROM bench_told t WHERE t.item_id = i.id)"
        )
        untold = cursor.fetchone()[0]
        if not untold:
            cursor.execute("DROP TABLE bench_told")
            return 0
        print(f"  generating the change feed for {untold:,} items ...", flush=True)
        if superuser:
            # As items_data does: the rows refer to agencies and people by construction; checked in bulk below.
            cursor.execute("SET session_replication_role = replica")
        try:
            first = (Change.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
            for batch in range(FEED_BATCHES):
                since, until = oldest + step * batch, oldest + step * (batch + 1)
                with transaction.atomic():
                    cursor.execute("SET LOCAL work_mem = '256MB'")  # each slice's sort in memory
                    cursor.execute(_FEED_SQL, {"first": first, "since": since, "until": until})
                    first += cursor.rowcount
                    written += cursor.rowcount
                if (batch + 1) % 6 == 0:
                    print(f"  changes: {written:,} after {batch + 1} of {FEED_BATCHES} slices", flush=True)
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")
            cursor.execute("DROP TABLE IF EXISTS bench_told")
        # The sequence goes on after the generated ids, so changes written from now on come after them.
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('messaging_change', 'id'), (SELECT max(id) FROM messaging_change))"
        )
        cursor.execute(
            "SELECT count(*) FROM messaging_change c WHERE (c.agency_id IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM agencies_agency a WHERE a.id = c.agency_id)) OR (c.user_id IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM auth_user u WHERE u.id = c.user_id))"
        )
        broken = cursor.fetchone()[0]
        if broken:
            raise SystemExit(f"bench: {broken:,} generated changes name no agency or person")
        cursor.execute("VACUUM (ANALYZE) messaging_change")  # what autovacuum would have done meanwhile
    return written


def check_feed_sample(size: int = 12, *, seed: int = 13) -> int:
    """For changes picked at random, the item they name told exactly the agencies and people ``audience_of`` (the
    rule every writer of the feed follows) says may read it. An item's changes are consecutive ids."""
    from messaging.delivery.feed import audience_of
    from messaging.models import Change, ChangeKind, Item

    rng = random.Random(seed)
    newest = Change.objects.order_by("-id").values_list("id", flat=True).first() or 0
    checked = 0
    for _ in range(size):
        picked = Change.objects.filter(id__gte=rng.randint(1, newest)).order_by("id").first()
        if picked is None or picked.item_id is None:
            continue
        rows = Change.objects.filter(id__range=(picked.id - 200, picked.id + 200), item_id=picked.item_id)
        if any(row.kind != ChangeKind.ITEM_VISIBLE for row in rows):
            continue
        told_agencies = {row.agency_id for row in rows if row.agency_id is not None}
        told_people = {row.user_id for row in rows if row.user_id is not None}
        audience = audience_of(Item.objects.get(pk=picked.item_id))
        if told_agencies != audience.agencies or told_people != audience.persons:
            raise SystemExit(f"bench: the generated changes for item {picked.item_id} are not its audience")
        checked += 1
    if checked < size // 2:
        raise SystemExit(f"bench: only {checked} of {size} sampled changes could be checked")
    return checked


def _officer_agency_id() -> int:
    from agencies.models import Membership

    return Membership.objects.get(user__username=OFFICER).agency_id


# --- reading the feed ------------------------------------------------------------------------------------------------


def _walk_starts(count: int, *, seed: int = 17) -> list[int]:
    """Positions to read from: just before a change of the officer's agency from anywhere in the year, with at
    least a whole walk after it (an agency's system coming back after a while, catching up)."""
    from messaging.models import Change

    ids = list(Change.objects.filter(agency_id=_officer_agency_id()).order_by("id").values_list("id", flat=True))
    if len(ids) <= FEED_WALK:
        raise SystemExit(f"bench: {OFFICER}'s agency has {len(ids):,} changes, fewer than one walk of {FEED_WALK:,}")
    rng = random.Random(seed)
    return [ids[rng.randrange(len(ids) - FEED_WALK)] - 1 for _ in range(count)]


def _cursor_at(change_id: int) -> str:
    from django.utils import timezone

    from messaging.delivery.feed import Cursor

    return Cursor(change_id, timezone.now()).encode()


def _walk(connection: http.client.HTTPConnection, cookie: str, start: int, latencies: Latencies) -> None:
    """FEED_WALK changes from ``start``, a page at a time, each page asked for with the cursor the last one gave."""
    cursor = _cursor_at(start)
    for _ in range(FEED_WALK // FEED_PAGE):
        path = f"/api/v1/changes/?limit={FEED_PAGE}&cursor={cursor}"
        began = time.perf_counter()
        page = json.loads(_get(connection, path, cookie))
        latencies.ms.append((time.perf_counter() - began) * 1000)
        if len(page["results"]) != FEED_PAGE or not page["more"] or page["cursor"] == cursor:
            raise SystemExit("bench: a feed page in the middle of a walk was not a full page with more after it")
        cursor = page["cursor"]


def _page_query(starts: list[int], repetitions: int) -> tuple[Latencies, str]:
    """The page's statement alone (what changes_page runs), and its plan for one page, run for real."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from messaging.core.sql import fetch_all
    from messaging.delivery.feed import _PAGE_SQL

    officer = get_user_model().objects.get(username=OFFICER)
    office = officer.membership.office_id  # the feed addresses an office-only forward to that office
    params = {"agency": _officer_agency_id(), "office": office, "user": officer.pk, "limit": FEED_PAGE + 1}
    latencies = Latencies()
    for number in range(repetitions):
        after = starts[number % len(starts)] + (number // len(starts)) * FEED_PAGE
        latencies.time(lambda after=after: fetch_all(_PAGE_SQL, {**params, "after": after}))
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + _PAGE_SQL, {**params, "after": starts[0]})
        plan = "\n".join(row[0] for row in cursor.fetchall())
    return latencies, plan


# --- posting -------------------------------------------------------------------------------------------------------


def api_key_authorization(agency: str) -> str:
    """The Authorization header of a demo agency's API key (``"VN/BGC"``)."""
    from agencies import demo

    prefix, secret = demo.api_key_parts(agency)
    return f"Api-Key isn_{prefix}_{secret}"


def _post_body() -> bytes:
    from django.utils import timezone

    return json.dumps(
        {
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
            "discoverable": False,
        }
    ).encode()


def _post_client(port: int, authorization: str, body: bytes, keyed: bool, seconds: float) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": authorization, "Content-Type": "application/json"}
    done = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if keyed:
                headers["Idempotency-Key"] = str(uuid.uuid4())
            connection.request("POST", "/api/v1/items/", body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            if response.status != 201 or response.getheader("Idempotent-Replayed"):
                raise RuntimeError(f"bench: a post answered {response.status}: {answer[:200]!r}")
            done += 1
    finally:
        connection.close()
    return done


def _post_round(port: int, variant: str, seconds: float) -> float:
    authorization, body = api_key_authorization(POST_AGENCY), _post_body()
    started = time.monotonic()
    with ThreadPoolExecutor(POST_CLIENTS) as pool:
        total = sum(
            pool.map(
                lambda _: _post_client(port, authorization, body, variant == "keyed", seconds), range(POST_CLIENTS)
            )
        )
    return total / (time.monotonic() - started)


# --- the run ------------------------------------------------------------------------------------------------------


def run(items: int, *, quick: bool = False, workers: int = 2, threads: int = 8) -> AgencyFigures:
    from django.contrib.auth import get_user_model

    from messaging.models import IdempotencyKey, Item
    from messaging.selectors.items import items_visible_to

    generated = ensure_items(items)
    feed = generate_feed()
    visible = items_visible_to(get_user_model().objects.get(username=OFFICER)).count()
    walks = 6 if quick else 20
    starts = _walk_starts(walks)

    print("  the feed's page query in process ...", flush=True)
    page_query, plan = _page_query(starts, 30 if quick else 100)

    print("  feed pages and the inbox over HTTP, interleaved; posts with and without Idempotency-Key ...", flush=True)
    cookie = _session_cookie(OFFICER)
    pages, inbox = Latencies(), Latencies()
    # Many short rounds: on a shared machine a neighbour's burst then spoils a round of either variant, not the median.
    rounds, seconds = (2, 2.0) if quick else (8, 3.0)
    posts: dict[str, list[float]] = {variant: [] for variant in POST_VARIANTS}
    with _serving(workers, threads) as (port, _sampler):
        feed_client = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        inbox_client = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            # Warm up: connections, imports, caches; the inbox's first page checked as items_bench checks it.
            _walk(feed_client, cookie, starts[-1], Latencies())
            first = json.loads(_get(inbox_client, "/api/v1/items/", cookie))
            if len(first["results"]) != PAGE or not all(row["title"] for row in first["results"]):
                raise SystemExit("bench: the inbox's first page is not a full page of opened titles")
            for number, start in enumerate(starts):
                # As many inbox requests as feed pages, the two alternating which goes first.
                reads = [
                    lambda start=start: _walk(feed_client, cookie, start, pages),
                    lambda: [inbox.time(lambda: _get(inbox_client, "/api/v1/items/", cookie)) for _ in range(20)],
                ]
                for read in reads if number % 2 == 0 else reads[::-1]:
                    read()
        finally:
            feed_client.close()
            inbox_client.close()
        # Posting last: the posted items are the newest, and would otherwise fill the inbox's first page.
        for variant in POST_VARIANTS:  # warm up
            _post_round(port, variant, 1.5)
        keys_before = IdempotencyKey.objects.count()
        for number in range(rounds):
            # Alternate which goes first (keyed, plain, plain, keyed, ...), so a drift in the machine's state
            # favours neither.
            for variant in POST_VARIANTS if number % 2 == 0 else POST_VARIANTS[::-1]:
                posts[variant].append(_post_round(port, variant, seconds))
        keys_recorded = IdempotencyKey.objects.count() - keys_before
    return AgencyFigures(
        items=Item.objects.count(),
        generated=generated,
        feed=feed,
        visible=visible,
        walks=walks,
        feed_pages=pages,
        inbox=inbox,
        page_query=page_query,
        page_plan=plan,
        posts=posts,
        keys_recorded=keys_recorded,
        workers=workers,
        threads=threads,
    )
