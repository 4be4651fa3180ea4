"""One answer to "who may read this item" (``messaging.core.release.Release``), asked by every channel.

Two kinds of holder reach fewer people than their agency: the office a forward names (its people only) and a person
named on an item (that person only). Each test below holds such items and walks a channel: reading, the inbox,
routing's and forwarding's notifications, the unread count, FLASH escalation, the change feed and the agencies'
webhooks. Nobody outside the holders is told of the item, and the SQL form of the rule (``items_visible_to``) and the
Python form (``Release.member_may_read``) give the same answer for every member of the network.

TAXII and push do not exist yet; when they come, they ask ``Release`` (or ``readers_among``) like the rest.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from agencies.models import Membership, Role
from audit.models import AuditEvent
from isn.errors import NotFound, PermissionDenied
from messaging.core.people import content_people
from messaging.core.release import release_of
from messaging.delivery.feed import changes_page
from messaging.delivery.flash import flash_escalate_due
from messaging.delivery.notifications import notifications_unread_count
from messaging.delivery.webhooks import webhook_configure
from messaging.items.changes import item_change
from messaging.items.lifecycle import item_read
from messaging.models import Forward, Notification, NotificationKind, OutboxKind, OutboxMessage
from messaging.models.delivery import Delivery
from messaging.selectors.items import items_visible_to
from messaging.sharing.forwards import item_forward
from tests.factories import MembershipFactory, OfficeFactory, UserFactory
from tests.messaging.network import Sharing, build_sharing, post_item, run_outbox
from tests.messaging.workers import webhook_receiver

pytestmark = pytest.mark.django_db

REASON = "For the customs team at Bavet"


class World:
    """The sharing network plus GDCE's Bavet office (``kh.customs.bavet`` and its supervisor), a GDCE supervisor
    without an office, a GDCE admin, and a second Thai police officer beside ``th.police``."""

    def __init__(self) -> None:
        self.s: Sharing = build_sharing()
        net = self.s.net
        self.gdce_bavet = OfficeFactory(agency=net.kh_customs, name="GDCE Bavet", border_crossing="Bavet - Moc Bai")
        for name, role, office, agency in (
            ("kh.customs.bavet", Role.OFFICER, self.gdce_bavet, net.kh_customs),
            ("kh.customs.bavet.chief", Role.SUPERVISOR, self.gdce_bavet, net.kh_customs),
            ("kh.customs.chief", Role.SUPERVISOR, None, net.kh_customs),
            ("kh.customs.admin", Role.AGENCY_ADMIN, None, net.kh_customs),
            ("th.police.2", Role.OFFICER, None, self.s.th_police),
        ):
            user = UserFactory(username=name, email=f"{name}@isn-test.example.org")
            MembershipFactory(user=user, agency=agency, office=office, role=role)
            net.users[name] = user

    def user(self, name: str) -> Any:
        return self.s.user(name)

    def forwarded_to_gdce_bavet(self, **fields: Any) -> Any:
        """VN's item released to Cambodia's ADD only, forwarded by ADD's Bavet officer to GDCE's Bavet office."""
        fields = {"countries": ["VN", "KH"], "agencies": [self.s.net.kh.pk], **fields}
        item = post_item(self.user("vn.officer"), **fields)
        run_outbox()
        item_forward(
            actor=self.user("kh.officer"),
            item_id=item.pk,
            to_agency=self.s.net.kh_customs.pk,
            to_office=self.gdce_bavet.pk,
            reason=REASON,
        )
        run_outbox()
        return item

    def named_in_thailand(self) -> Any:
        """VN's item released to VN and Thailand's ONCB, naming ``th.police`` of RTP."""
        item = post_item(
            self.user("vn.officer"), countries=["VN", "TH"], agencies=[self.s.net.th.pk], named_users=["th.police"]
        )
        run_outbox()
        return item


@pytest.fixture
def w() -> World:
    return World()


def reads(w: World, name: str, item: Any) -> bool:
    try:
        item_read(actor=w.user(name), item_id=item.pk)
    except NotFound:
        return False
    return True


def told(item: Any, kind: str | None = None, agency: Any = None) -> set[str]:
    notes = Notification.objects.filter(item=item)
    if kind is not None:
        notes = notes.filter(kind=kind)
    if agency is not None:
        notes = notes.filter(user__membership__agency=agency)
    return set(notes.values_list("user__username", flat=True))


GDCE_OUTSIDE_BAVET = {"kh.customs", "kh.customs.chief", "kh.customs.admin"}
GDCE_BAVET = {"kh.customs.bavet", "kh.customs.bavet.chief"}


# --- point 1: a named person widens nothing; a forward to an office opens it to that office only -----------------


def test_a_person_named_on_an_item_cannot_forward_it_to_their_own_agency(w):
    """The attack: VN posts TLP:AMBER+STRICT to VN and KH, restricted to GDCE, naming ``kh.officer`` of ADD;
    ``kh.officer`` forwards it to an office of ADD. Refused: ADD does not hold the item, and nothing is written."""
    s = w.s
    item = post_item(
        w.user("vn.officer"),
        handling_code="amber_strict",
        countries=["VN", "KH"],
        agencies=[s.net.kh_customs.pk],
        named_users=["kh.officer"],
    )
    assert reads(w, "kh.officer", item)

    with pytest.raises(PermissionDenied, match="shared with you by name"):
        item_forward(
            actor=w.user("kh.officer"),
            item_id=item.pk,
            to_agency=s.net.kh.pk,
            to_office=s.net.kh_desk.pk,
            reason=REASON,
        )

    assert not Forward.objects.filter(item=item).exists()
    assert not AuditEvent.objects.filter(action="messaging.item.forward").exists()
    for name in ("kh.desk", "kh.supervisor", "kh.focal"):
        assert not reads(w, name, item)


def test_a_forward_to_an_office_opens_the_item_to_that_office_only(w):
    item = w.forwarded_to_gdce_bavet()

    for name in GDCE_BAVET:
        assert reads(w, name, item), name
    for name in GDCE_OUTSIDE_BAVET:
        assert not reads(w, name, item), name
    assert {i.pk for i in items_visible_to(w.user("kh.customs.bavet"))} == {item.pk}
    assert not items_visible_to(w.user("kh.customs.chief")).exists()


def test_a_forward_to_an_agency_as_a_whole_opens_it_to_all_its_members(w):
    item = post_item(w.user("vn.officer"), countries=["VN", "KH"], agencies=[w.s.net.kh.pk])
    item_forward(actor=w.user("kh.officer"), item_id=item.pk, to_agency=w.s.net.kh_customs.pk, reason=REASON)
    for name in GDCE_BAVET | GDCE_OUTSIDE_BAVET:
        assert reads(w, name, item), name


# --- point 18: every channel asks the one rule -------------------------------------------------------------------


def test_the_sql_rule_and_the_python_rule_agree_for_every_member(w):
    items = [
        w.forwarded_to_gdce_bavet(),
        w.named_in_thailand(),
        post_item(w.user("vn.officer"), countries=["VN", "KH", "TH"], agencies=[w.s.net.kh.pk, w.s.th_police.pk]),
    ]
    members = content_people().select_related("agency")
    assert members.count() > 15
    for item in items:
        release = release_of(item)
        for member in members:
            in_sql = items_visible_to(member.user).filter(pk=item.pk).exists()
            in_python = release.member_may_read(
                user_id=member.user_id,
                agency_id=member.agency_id,
                office_id=member.office_id,
                country=member.country_id,
            )
            assert in_sql == in_python, (member.user.username, item.pk)


def test_forwarding_notifies_the_office_and_never_its_agency_or_its_system(w):
    from django.utils import timezone

    from agencies.api_keys import api_key_issue

    issued = api_key_issue(
        actor=w.user("kh.customs.admin"),
        agency=w.s.net.kh_customs,
        name="GDCE case system",
        scopes=["read"],
        expires_at=timezone.now() + timedelta(days=30),
    )
    with webhook_receiver(200) as receiver:
        webhook_configure(actor=w.user("kh.customs.admin"), url=receiver.url)
        item = w.forwarded_to_gdce_bavet()

    assert told(item, NotificationKind.FORWARDED) == GDCE_BAVET
    assert issued.key.user.username not in told(item)
    assert not told(item) & GDCE_OUTSIDE_BAVET
    calls = OutboxMessage.objects.filter(item=item, kind=OutboxKind.NOTIFY_WEBHOOK)
    assert not [m for m in calls if m.payload["agency_id"] == w.s.net.kh_customs.pk]
    for name in GDCE_OUTSIDE_BAVET:
        assert notifications_unread_count(w.user(name)) == 0
    assert notifications_unread_count(w.user("kh.customs.bavet")) == 1


def test_routing_tells_a_named_person_and_nobody_beside_them(w):
    item = w.named_in_thailand()
    assert "th.police" in told(item, NotificationKind.ROUTED)
    assert "th.police.2" not in told(item)
    assert notifications_unread_count(w.user("th.police.2")) == 0
    assert reads(w, "th.police", item)
    assert not reads(w, "th.police.2", item)


def feed_items(w: World, name: str) -> set[str]:
    page = changes_page(actor=w.user(name), cursor=None, limit=1000)
    return {str(change.item_id) for change in page.changes}


def test_the_change_feed_tells_the_forwarded_office_and_the_named_person_only(w):
    forwarded, named = w.forwarded_to_gdce_bavet(), w.named_in_thailand()

    for name in GDCE_BAVET:
        assert str(forwarded.pk) in feed_items(w, name), name
    for name in GDCE_OUTSIDE_BAVET:
        assert str(forwarded.pk) not in feed_items(w, name), name
    assert str(named.pk) in feed_items(w, "th.police")
    assert str(named.pk) not in feed_items(w, "th.police.2")


def test_losing_the_forward_is_told_to_the_office_that_held_it(w):
    item = w.forwarded_to_gdce_bavet(agencies=[w.s.net.kh.pk, w.s.kh_police.pk])
    item_change(actor=w.user("vn.officer"), item_id=item.pk, agencies=[w.s.kh_police.pk])  # ADD, the forwarder, goes
    run_outbox()

    assert not reads(w, "kh.customs.bavet", item)
    page = changes_page(actor=w.user("kh.customs.bavet"), cursor=None, limit=1000)
    assert [c.kind for c in page.changes if str(c.item_id) == str(item.pk)] == ["item.visible", "item.narrowed"]
    assert str(item.pk) not in feed_items(w, "kh.customs.chief")
    assert told(item, NotificationKind.REVOKED) >= GDCE_BAVET
    assert not Delivery.objects.filter(item=item, agency=w.s.net.kh_customs, revoked_at__isnull=True).exists()


# --- point 14: a FLASH item held only by forward is escalated to whoever holds it --------------------------------


def test_a_flash_item_held_only_by_a_forward_escalates_inside_the_office_that_holds_it(w, settings):
    settings.ISN_FLASH_ESCALATE_AFTER_SECONDS = 60
    item = w.forwarded_to_gdce_bavet(priority="flash")
    routed_at = Delivery.objects.filter(item=item, agency=w.s.net.kh_customs).get().routed_at

    flash_escalate_due(now=routed_at + timedelta(seconds=61))

    assert told(item, NotificationKind.ESCALATED, w.s.net.kh_customs) == {"kh.customs.bavet.chief"}
    step = AuditEvent.objects.filter(action="messaging.flash.escalate", details__agency_id=w.s.net.kh_customs.pk)
    assert step.get().details["notified_users"]


def test_a_flash_item_held_by_an_office_without_a_supervisor_escalates_to_its_people(w, settings):
    settings.ISN_FLASH_ESCALATE_AFTER_SECONDS = 60
    Membership.objects.filter(user=w.user("kh.customs.bavet.chief")).update(office=None)
    item = w.forwarded_to_gdce_bavet(priority="flash")
    routed_at = Delivery.objects.filter(item=item, agency=w.s.net.kh_customs).get().routed_at

    flash_escalate_due(now=routed_at + timedelta(seconds=61))

    assert told(item, NotificationKind.ESCALATED, w.s.net.kh_customs) == {"kh.customs.bavet"}


def test_a_consent_request_by_a_named_person_is_theirs_alone(w):
    """A person named on an item asks consent to share it: their colleagues, who may not read the item, see neither
    the request nor its justification; the originator and the person who asked do."""
    from messaging.selectors.sharing import consents_visible_to
    from messaging.sharing.consents import consent_read, consent_request_create

    item = post_item(
        w.user("vn.officer"), countries=["VN", "KH"], agencies=[w.s.net.kh_customs.pk], named_users=["kh.officer"]
    )
    consent = consent_request_create(
        actor=w.user("kh.officer"), item_id=item.pk, target_country="LA", justification="The lorries go on to Laos"
    ).consent

    assert consents_visible_to(w.user("kh.officer")).filter(pk=consent.pk).exists()
    assert consents_visible_to(w.user("vn.supervisor")).filter(pk=consent.pk).exists()
    for colleague in ("kh.supervisor", "kh.desk", "kh.focal"):
        assert not consents_visible_to(w.user(colleague)).filter(pk=consent.pk).exists(), colleague
        with pytest.raises(NotFound):
            consent_read(actor=w.user(colleague), consent_id=consent.pk)
    # Where the agency holds the item, its members see the agency's requests as before.
    held = post_item(w.user("vn.officer"), countries=["VN", "KH"], agencies=[w.s.net.kh.pk])
    asked = consent_request_create(
        actor=w.user("kh.officer"), item_id=held.pk, target_country="LA", justification="The lorries go on to Laos"
    ).consent
    assert consents_visible_to(w.user("kh.supervisor")).filter(pk=asked.pk).exists()


def test_the_feed_tells_a_named_persons_consent_request_to_them_not_their_agency(w):
    from messaging.sharing.consents import consent_request_create

    item = post_item(
        w.user("vn.officer"), countries=["VN", "KH"], agencies=[w.s.net.kh_customs.pk], named_users=["kh.officer"]
    )
    consent_request_create(
        actor=w.user("kh.officer"), item_id=item.pk, target_country="LA", justification="The lorries go on to Laos"
    )

    def kinds(name: str) -> list[str]:
        page = changes_page(actor=w.user(name), cursor=None, limit=1000)
        return [c.kind for c in page.changes if str(c.item_id) == str(item.pk)]

    assert "consent.requested" in kinds("kh.officer")
    assert kinds("kh.supervisor") == []
    assert "consent.requested" in kinds("vn.supervisor")
