"""``GET /api/v1/changes/``: ids, kinds and times for the caller only, an opaque cursor, a clear answer to a bad or
expired one, nothing for an auditor, and changes read in the order their acts committed (transactional, for that)."""

from __future__ import annotations

import base64
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from audit.models import AuditEvent
from messaging.delivery.feed import Cursor, changes_page, changes_purge, feed_tell
from messaging.items.changes import item_change, item_withdraw
from messaging.models import Change, ChangeKind
from tests.messaging.network import build_network, post_item

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

URL = "/api/v1/changes/"


@pytest.fixture
def net():
    return build_network()


def _feed(api, user, **params):
    api.force_authenticate(user)
    response = api.get(URL, params)
    return response


def test_the_feed_names_items_as_they_come_and_go_without_content(api, net):
    start = _feed(api, net.user("kh.officer"), start="latest").json()
    assert start["results"] == []
    assert start["more"] is False
    item = post_item(net.user("vn.officer"), countries=["VN", "KH"], title="Meth lab near Bavet")
    item_change(actor=net.user("vn.officer"), item_id=item.pk, title="Meth lab east of Bavet")
    item_change(actor=net.user("vn.officer"), item_id=item.pk, countries=["VN"])

    response = _feed(api, net.user("kh.officer"), cursor=start["cursor"])
    assert response.status_code == 200
    page = response.json()
    assert [(c["kind"], c["item"]) for c in page["results"]] == [
        ("item.visible", str(item.pk)),
        ("item.changed", str(item.pk)),
        ("item.narrowed", str(item.pk)),
    ]
    assert set(page["results"][0]) == {"kind", "at", "item", "consent", "rfi", "hit_reference"}
    assert "Bavet" not in response.content.decode()
    # Read from where it left off, nothing more; the reading is recorded, naming no content.
    assert _feed(api, net.user("kh.officer"), cursor=page["cursor"]).json()["results"] == []
    event = AuditEvent.objects.filter(action="messaging.changes.list").latest("id")
    assert event.details == {"count": 3, "kinds": ["item.changed", "item.narrowed", "item.visible"]}


def test_other_callers_hear_only_of_their_own(api, net):
    restricted = post_item(net.user("vn.officer"), countries=["VN", "KH"], agencies=[net.kh_customs.pk])
    withdrawn = post_item(net.user("vn.officer"), countries=["VN", "TH"])
    item_withdraw(actor=net.user("vn.officer"), item_id=withdrawn.pk)

    def named(user):
        return {(c["kind"], c["item"]) for c in _feed(api, user).json()["results"]}

    assert named(net.user("kh.officer")) == set()  # ADD was never released either item
    assert named(net.user("kh.customs")) == {("item.visible", str(restricted.pk))}
    assert named(net.user("th.officer")) == {("item.visible", str(withdrawn.pk)), ("item.withdrawn", str(withdrawn.pk))}
    # The originator's colleague hears of both, and of the withdrawal it still sees.
    assert ("item.withdrawn", str(withdrawn.pk)) in named(net.user("vn.focal"))
    # An auditor reads no content, so hears of none, and is told so by an empty page rather than an error.
    assert _feed(api, net.user("kh.auditor")).json()["results"] == []


def test_a_page_never_passes_a_change_whose_transaction_is_still_running(net):
    """Changes are read in the order their acts commit: while one act holds its changes uncommitted, a later act's
    changes wait for it, so a reader never sees the later one and then misses the earlier one."""
    reader = net.user("kh.officer")
    first, second = (post_item(net.user("vn.officer"), countries=["VN", "KH"]) for _ in range(2))
    cursor = changes_page(actor=reader, cursor=None, limit=100).cursor
    holding, finish = threading.Event(), threading.Event()
    told: list[str] = []

    def act(item, hold: bool) -> None:
        try:
            with transaction.atomic():
                feed_tell(ChangeKind.ITEM_CHANGED, [net.kh.pk], subject=item, item_id=item.pk)
                if hold:
                    holding.set()
                    finish.wait(20)
            told.append(str(item.pk))
        finally:
            connection.close()

    slow = threading.Thread(target=act, args=(first, True))
    slow.start()
    assert holding.wait(20)
    quick = threading.Thread(target=act, args=(second, False))
    quick.start()
    quick.join(1)
    # The later act waits for the earlier one's commit; the reader sees neither yet.
    assert quick.is_alive()
    page = changes_page(actor=reader, cursor=cursor, limit=100)
    assert page.changes == []
    finish.set()
    slow.join(20)
    quick.join(20)
    assert told == [str(first.pk), str(second.pk)]
    page = changes_page(actor=reader, cursor=page.cursor, limit=100)
    assert [change.item_id for change in page.changes] == [first.pk, second.pk]


def test_a_bad_cursor_is_a_clear_400_and_an_expired_one_a_410(api, net):
    bad = _feed(api, net.user("kh.officer"), cursor="not-a-cursor")
    assert bad.status_code == 400
    assert bad["Content-Type"] == "application/problem+json"
    assert bad.json()["code"] == "invalid_cursor"

    old = Cursor(1, timezone.now() - timedelta(days=31)).encode()
    expired = _feed(api, net.user("kh.officer"), cursor=old)
    assert expired.status_code == 410
    assert expired.json()["code"] == "cursor_expired"
    assert "start=latest" in expired.json()["detail"]

    both = _feed(api, net.user("kh.officer"), cursor=Cursor(1, timezone.now()).encode(), start="latest")
    assert both.status_code == 400
    assert "start" in both.json()["errors"]["fields"]
    forged = base64.urlsafe_b64encode(b"2.-5.1796302601").decode()
    assert _feed(api, net.user("kh.officer"), cursor=forged).json()["code"] == "invalid_cursor"
    assert _feed(api, net.user("kh.officer"), limit=0).status_code == 400


def test_a_cursor_stays_good_for_thirty_days_and_changes_are_kept_longer(api, net, settings):
    item = post_item(net.user("vn.officer"), countries=["VN", "KH"])
    month_old = Cursor(0, timezone.now() - timedelta(days=29, hours=23)).encode()
    Change.objects.update(at=timezone.now() - timedelta(days=34))
    assert changes_purge() == 0
    page = _feed(api, net.user("kh.officer"), cursor=month_old).json()
    assert [c["item"] for c in page["results"]] == [str(item.pk)]
    kept = Change.objects.count()
    assert kept == 3  # the item became visible to each agency of Viet Nam (one) and Cambodia (two)
    Change.objects.update(at=timezone.now() - timedelta(days=settings.ISN_FEED_RETENTION_DAYS, minutes=1))
    assert changes_purge() == kept
    assert not Change.objects.exists()
