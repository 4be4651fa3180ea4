"""The messaging tests' network, built with the factories (usable from transactional and ordinary tests alike).

``build_network()``, the routing network:

- Viet Nam BGC: Moc Bai BLO (where items are posted; ``vn.officer``), a duty desk.
- Cambodia ADD: Bavet BLO, Moc Bai's counterpart (``kh.officer``, ``kh.supervisor``), a duty desk (``kh.desk``),
  and a national focal point (``kh.focal``); Cambodia GDCE (customs): only a duty desk (``kh.customs``).
- Thailand ONCB: Chiang Saen BLO subscribed to methamphetamine pills (``th.officer``), a duty desk (``th.desk``).
- Lao LCDC: no duty desk office; a supervisor (``la.supervisor``) and an auditor (never notified).

``build_sharing()`` adds the people and agencies that forwarding and consent need (see ``Sharing``), and
``run_outbox()`` does a worker's job in this process.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.utils import timezone

from agencies.models import AgencyKind, OfficeKind, Role
from agencies.services import office_link_counterpart
from messaging.delivery.routing import item_revoke_notify, item_route
from messaging.items.lifecycle import item_create
from messaging.models import Notification, OutboxKind, OutboxMessage, Subscription
from messaging.sharing.consents import consent_deliver
from messaging.sharing.forwards import forward_deliver
from tests.factories import AgencyFactory, MembershipFactory, OfficeFactory, UserFactory, country


@dataclass
class Network:
    vn: Any
    moc_bai: Any
    kh: Any
    bavet: Any
    kh_desk: Any
    kh_customs: Any
    kh_customs_desk: Any
    th: Any
    chiang_saen: Any
    th_desk: Any
    la: Any
    users: dict[str, Any]

    def user(self, name: str) -> Any:
        return self.users[name]


def _member(users: dict[str, Any], username: str, agency: Any, role: str, office: Any = None) -> None:
    user = UserFactory(username=username, email=f"{username}@isn-test.example.org")
    MembershipFactory(user=user, agency=agency, office=office, role=role)
    users[username] = user


def _desk(agency: Any) -> Any:
    return OfficeFactory(
        agency=agency, name=f"{agency.short_name} duty desk", kind=OfficeKind.DUTY_DESK, border_crossing=""
    )


def build_network() -> Network:
    users: dict[str, Any] = {}
    vn = AgencyFactory(country=country("VN"), name="Viet Nam Border Guard Command", short_name="BGC")
    moc_bai = OfficeFactory(agency=vn, name="Moc Bai BLO", border_crossing="Moc Bai - Bavet", province="Tay Ninh")
    _desk(vn)
    _member(users, "vn.officer", vn, Role.OFFICER, moc_bai)
    _member(users, "vn.focal", vn, Role.NATIONAL_FOCAL_POINT)

    kh = AgencyFactory(country=country("KH"), name="Anti-Drug Department", short_name="ADD")
    bavet = OfficeFactory(agency=kh, name="Bavet BLO", border_crossing="Bavet - Moc Bai", province="Svay Rieng")
    office_link_counterpart(actor=None, office=moc_bai, counterpart=bavet)
    kh_desk = _desk(kh)
    _member(users, "kh.officer", kh, Role.OFFICER, bavet)
    _member(users, "kh.supervisor", kh, Role.SUPERVISOR, bavet)
    _member(users, "kh.desk", kh, Role.OFFICER, kh_desk)
    _member(users, "kh.focal", kh, Role.NATIONAL_FOCAL_POINT, kh_desk)
    _member(users, "kh.admin", kh, Role.AGENCY_ADMIN)
    _member(users, "kh.auditor", kh, Role.NATIONAL_AUDITOR)

    kh_customs = AgencyFactory(
        country=country("KH"), name="General Department of Customs", short_name="GDCE", kind=AgencyKind.CUSTOMS
    )
    kh_customs_desk = _desk(kh_customs)
    _member(users, "kh.customs", kh_customs, Role.OFFICER, kh_customs_desk)

    th = AgencyFactory(country=country("TH"), name="Office of the Narcotics Control Board", short_name="ONCB")
    chiang_saen = OfficeFactory(agency=th, name="Chiang Saen BLO", border_crossing="Chiang Saen - Ton Pheung")
    th_desk = _desk(th)
    _member(users, "th.officer", th, Role.OFFICER, chiang_saen)
    _member(users, "th.desk", th, Role.OFFICER, th_desk)
    Subscription.objects.create(agency=th, office=chiang_saen, category="meth_pills")

    la = AgencyFactory(country=country("LA"), name="Lao Counter-Narcotics", short_name="LCDC")
    _member(users, "la.supervisor", la, Role.SUPERVISOR)
    _member(users, "la.auditor", la, Role.NATIONAL_AUDITOR)
    return Network(
        vn=vn,
        moc_bai=moc_bai,
        kh=kh,
        bavet=bavet,
        kh_desk=kh_desk,
        kh_customs=kh_customs,
        kh_customs_desk=kh_customs_desk,
        th=th,
        chiang_saen=chiang_saen,
        th_desk=th_desk,
        la=la,
        users=users,
    )


def post_item(actor: Any, **overrides: Any) -> Any:
    """An item posted by ``actor`` through the service, released to every country of the network by default."""
    fields: dict[str, Any] = {
        "title": "Meth pills shipment expected at Moc Bai",
        "body": "Two lorries, plates 70C-123.45 and 70C-678.90, crossing Thursday night.",
        "language": "en",
        "category": "meth_pills",
        "priority": "routine",
        "source_reliability": "B",
        "info_credibility": 2,
        "handling_code": "amber",
        "border_crossing": "Moc Bai - Bavet",
        "review_date": timezone.now().date() + timedelta(days=90),
        "countries": ["VN", "KH", "TH", "LA"],
    }
    fields.update(overrides)
    return item_create(actor=actor, **fields).item


# --- the sharing network: more people and agencies, and the outbox run in this process ---

CONSUMERS = {
    OutboxKind.ITEM_ROUTE: item_route,
    OutboxKind.ITEM_REVOKE: item_revoke_notify,
    OutboxKind.ITEM_FORWARD: forward_deliver,
    OutboxKind.CONSENT_DELIVER: consent_deliver,
}


@dataclass
class Sharing:
    """``net`` plus: a supervisor at Viet Nam's BGC (``vn.supervisor``) who decides on consent requests; two more
    Cambodian agencies, KH police (``kh.police``) and KH military (``kh.military``); a Thai police officer
    (``th.police``); a Lao officer (``la.officer``)."""

    net: Network
    kh_police: Any
    kh_military: Any
    th_police: Any

    def user(self, name: str) -> Any:
        return self.net.user(name)


def build_sharing() -> Sharing:
    net = build_network()
    _member(net.users, "vn.supervisor", net.vn, Role.SUPERVISOR)
    _member(net.users, "vn.auditor", net.vn, Role.NATIONAL_AUDITOR)
    kh_police = AgencyFactory(country=country("KH"), name="Cambodian National Police", short_name="CNP")
    _member(
        net.users, "kh.police", kh_police, Role.OFFICER, office=OfficeFactory(agency=kh_police, name="CNP Phnom Penh")
    )
    kh_military = AgencyFactory(country=country("KH"), name="Cambodian Military Police", short_name="CMP")
    _member(net.users, "kh.military", kh_military, Role.OFFICER)
    th_police = AgencyFactory(country=country("TH"), name="Royal Thai Police", short_name="RTP")
    _member(
        net.users, "th.police", th_police, Role.OFFICER, office=OfficeFactory(agency=th_police, name="RTP Chiang Rai")
    )
    _member(net.users, "la.officer", net.la, Role.OFFICER)
    return Sharing(net=net, kh_police=kh_police, kh_military=kh_military, th_police=th_police)


def run_outbox(kind: str | None = None) -> int:
    """Process every unprocessed outbox row (of ``kind``) with its consumer, as a worker would; returns how many."""
    kinds = [kind] if kind else list(CONSUMERS)
    seen: set[int] = set()
    while True:
        rows = list(
            OutboxMessage.objects.filter(kind__in=kinds, processed_at__isnull=True)
            .exclude(pk__in=seen)
            .order_by("pk")
            .values_list("pk", "kind")
        )
        if not rows:
            return len(seen)
        for pk, row_kind in rows:
            CONSUMERS[OutboxKind(row_kind)](outbox_id=pk)
            seen.add(pk)


def notified(kind: str, **subject: Any) -> set[str]:
    return set(Notification.objects.filter(kind=kind, **subject).values_list("user__username", flat=True))
