"""The ingest hot path (issue 5): PostgreSQL's one-statement routing gives the ORM's answers, and posting, routing and
e-mailing cost a number of queries that does not grow with the number of agencies reached."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from agencies.api_keys import api_key_issue
from agencies.models import AgencyKind, ApiKey, Role
from messaging.core.outbox import outbox_take
from messaging.core.release import release_of
from messaging.delivery import routing
from messaging.delivery.notifications import notification_emails_send, notify_people
from messaging.delivery.routing import item_route, people_for, recipients_for
from messaging.models import (
    ItemKey,
    ItemRead,
    Notification,
    NotificationKind,
    OutboxKind,
    OutboxMessage,
    Subscription,
)
from messaging.models.delivery import Delivery
from messaging.selectors.items import item_release
from tests.factories import AgencyFactory, MembershipFactory, OfficeFactory, UserFactory, country
from tests.messaging.network import Network, build_network, post_item

pytestmark = pytest.mark.django_db


@pytest.fixture
def net() -> Network:
    network = build_network()
    th = network.th
    # Subscriptions that must not count: an inactive office, an auditor, a person of another agency, an inactive
    # member; and some that must: a person's, case-insensitive border crossing and province.
    closed = OfficeFactory(agency=th, name="Closed BLO", border_crossing="Old bridge", is_active=False)
    Subscription.objects.create(agency=th, office=closed)
    Subscription.objects.create(agency=th, user=network.user("th.desk"), border_crossing="moc bai - BAVET")
    Subscription.objects.create(agency=network.kh_customs, office=network.kh_customs_desk, province="tay NINH")
    Subscription.objects.create(agency=network.la, user=network.user("la.auditor"))
    Subscription.objects.create(agency=network.la, user=network.user("kh.officer"))
    gone = UserFactory(username="th.gone", email="th.gone@isn-test.example.org")
    MembershipFactory(user=gone, agency=th, office=network.chiang_saen, role=Role.OFFICER, is_active=False)
    Subscription.objects.create(agency=th, user=gone)
    Subscription.objects.create(agency=network.kh, user=network.user("kh.focal"), priority="flash", is_active=True)
    # An inactive agency of a released country, and one without anyone in it.
    AgencyFactory(country=country("KH"), short_name="SHUT", name="Closed agency", is_active=False)
    AgencyFactory(country=country("TH"), short_name="EMPTY", name="Empty agency", kind=AgencyKind.CUSTOMS)
    # Agency systems: keys that read are told; an audit key, a write-only key and an expired key are not.
    soon = timezone.now() + timedelta(days=30)
    for agency, name, scopes in [
        (network.kh, "add-reader", ["read"]),
        (network.kh, "add-auditor", ["audit"]),
        (network.kh_customs, "gdce-reader-writer", ["read", "write"]),
        (network.la, "lcdc-writer", ["write"]),
        (th, "oncb-expired", ["read"]),
    ]:
        api_key_issue(actor=None, agency=agency, name=name, scopes=scopes, expires_at=soon)
    ApiKey.objects.filter(name="oncb-expired").update(expires_at=timezone.now() - timedelta(seconds=1))
    return network


@pytest.fixture
def orm_only(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Routing's other-database path (SQLite in development), run here on PostgreSQL."""

    def use_orm() -> None:
        monkeypatch.setattr(routing, "_postgresql", lambda: False)

    return use_orm


ITEMS = [
    {},
    {"priority": "flash"},
    {"category": "timber", "border_crossing": ""},
    {"agencies": "kh_customs"},
    {"agencies": "kh_customs", "named_users": ["kh.desk", "th.officer", "vn.focal"]},
    {"countries": ["VN", "TH"]},
]


def _post(net: Network, fields: dict[str, Any]) -> Any:
    fields = dict(fields)
    if fields.get("agencies") == "kh_customs":
        fields["agencies"] = [net.kh_customs.pk]
    return post_item(net.user("vn.officer"), **fields)


@pytest.mark.parametrize("fields", ITEMS)
def test_postgresql_statements_and_the_orm_choose_the_same_recipients_and_people(net, orm_only, fields):
    item = _post(net, fields)
    release = release_of(item)
    recipients = recipients_for(item, release)
    people = people_for(recipients)
    assert recipients, "every case reaches someone"

    orm_only()
    assert release_of(item) == release
    assert recipients_for(item, release) == recipients  # the same recipients, reasons and order
    assert people_for(recipients) == people
    keys = dict(ApiKey.objects.values_list("name", "user_id"))
    told = {pk for users in people.values() for pk in users}
    assert not told & {keys["add-auditor"], keys["lcdc-writer"], keys["oncb-expired"]}
    assert (keys["gdce-reader-writer"] in told) == ("KH" in release.countries)


def test_both_paths_make_the_same_deliveries_and_notifications(net, orm_only):
    first, second = _post(net, ITEMS[4]), _post(net, ITEMS[4])
    item_route(outbox_id=OutboxMessage.objects.get(item=first, kind=OutboxKind.ITEM_ROUTE).pk)
    orm_only()
    item_route(outbox_id=OutboxMessage.objects.get(item=second, kind=OutboxKind.ITEM_ROUTE).pk)

    def made(item: Any) -> tuple[set[tuple[Any, ...]], set[int]]:
        deliveries = set(Delivery.objects.filter(item=item).values_list("agency_id", "office_id", "user_id", "reason"))
        return deliveries, set(Notification.objects.filter(item=item).values_list("user_id", flat=True))

    assert made(first) == made(second)
    assert made(first)[0]


def test_the_release_shown_to_the_poster_is_the_one_stored(net):
    from messaging.items.lifecycle import item_create

    posted = item_create(
        actor=net.user("vn.officer"),
        title="Precursor drums at the river port",
        body="Forty drums, labelled as paint thinner.",
        language="en",
        category="precursors",
        source_reliability="A",
        info_credibility=1,
        handling_code="green",
        review_date=timezone.now().date() + timedelta(days=30),
        countries=["TH", "VN", "KH"],
        agencies=[net.kh_customs.pk],
        named_users=["th.officer", "kh.desk"],
    )
    assert posted.release == item_release(posted.item)  # built from what was written, not read back
    assert posted.release["agencies"] == [{"id": net.kh_customs.pk, "short_name": "GDCE", "country_id": "KH"}]
    assert set(ItemKey.objects.filter(item=posted.item).values_list("country_id", flat=True)) == {"KH", "TH", "VN"}
    assert ItemRead.objects.filter(item=posted.item, user=net.user("vn.officer")).exists()


def test_routing_queries_do_not_grow_with_the_agencies_reached(net, django_assert_max_num_queries):
    for number in range(40):
        agency = AgencyFactory(country=country("TH"), short_name=f"X{number}", name=f"Extra agency {number}")
        member = UserFactory(username=f"x{number}.supervisor", email=f"x{number}@isn-test.example.org")
        MembershipFactory(user=member, agency=agency, role=Role.SUPERVISOR)
    post_item(net.user("vn.officer"))  # the countries' first keys are made on first use
    with django_assert_max_num_queries(9):
        item = post_item(net.user("vn.officer"))
    row = OutboxMessage.objects.get(item=item, kind=OutboxKind.ITEM_ROUTE)
    with django_assert_max_num_queries(13):  # 13th: who of the people found may read it (``readers_among``)
        result = item_route(outbox_id=row.pk)
    assert result.agencies > 40
    email = OutboxMessage.objects.get(item=item, kind=OutboxKind.NOTIFY_EMAIL)
    systems = Notification.objects.filter(item=item, user__api_key__isnull=False).count()
    assert systems == 2  # ADD's and GDCE's reading keys: told in the portal, never mailed
    with django_assert_max_num_queries(12):
        assert notification_emails_send(outbox_id=email.pk) == result.notified - systems


def test_notify_people_tells_each_person_once_per_subject_and_kind(net):
    item = post_item(net.user("vn.officer"))
    kh_officer, th_officer = net.user("kh.officer"), net.user("th.officer")
    assert notify_people(kind=NotificationKind.ROUTED, user_ids=[th_officer.pk, kh_officer.pk], item=item) == sorted(
        [kh_officer.pk, th_officer.pk]
    )
    assert notify_people(kind=NotificationKind.ROUTED, user_ids=[kh_officer.pk, kh_officer.pk], item=item) == []
    assert notify_people(kind=NotificationKind.REVOKED, user_ids=[kh_officer.pk], item=item) == [kh_officer.pk]
    assert OutboxMessage.objects.filter(item=item, kind=OutboxKind.NOTIFY_EMAIL).count() == 2


def test_taking_an_outbox_row_marks_it_processed_only_if_the_work_commits(net):
    item = post_item(net.user("vn.officer"))
    row = OutboxMessage.objects.get(item=item, kind=OutboxKind.ITEM_ROUTE)
    with transaction.atomic():
        assert outbox_take(row.pk, OutboxKind.ITEM_ROUTE) == item.pk
        transaction.set_rollback(True)  # the work failed
    row.refresh_from_db()
    assert (row.processed_at, row.attempts) == (None, 0)
    with transaction.atomic():
        assert outbox_take(row.pk, OutboxKind.ITEM_ROUTE) == item.pk
        assert outbox_take(row.pk, OutboxKind.ITEM_ROUTE) is None  # a repeated message finds it processed
    assert outbox_take(row.pk, OutboxKind.NOTIFY_EMAIL) is None  # and a row is taken only by its own kind
    row.refresh_from_db()
    assert row.processed_at is not None
    assert row.attempts == 1
