"""Helpers for the forwarding and consent tests: the routing network plus a few more people and agencies, and a way
to run the outbox's work in this process (the real-worker test runs it through Celery instead)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agencies.models import Role
from messaging.forwarding import consent_deliver, forward_deliver
from messaging.models import Notification, OutboxKind, OutboxMessage
from messaging.routing import item_revoke_notify, item_route
from tests.factories import AgencyFactory, MembershipFactory, OfficeFactory, UserFactory, country
from tests.messaging.network import Network, build_network

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


def _member(net: Network, username: str, agency: Any, role: str = Role.OFFICER, office: Any = None) -> None:
    user = UserFactory(username=username, email=f"{username}@isn-test.example.org")
    MembershipFactory(user=user, agency=agency, role=role, office=office)
    net.users[username] = user


def build_sharing() -> Sharing:
    net = build_network()
    _member(net, "vn.supervisor", net.vn, Role.SUPERVISOR)
    _member(net, "vn.auditor", net.vn, Role.NATIONAL_AUDITOR)
    kh_police = AgencyFactory(country=country("KH"), name="Cambodian National Police", short_name="CNP")
    _member(net, "kh.police", kh_police, office=OfficeFactory(agency=kh_police, name="CNP Phnom Penh"))
    kh_military = AgencyFactory(country=country("KH"), name="Cambodian Military Police", short_name="CMP")
    _member(net, "kh.military", kh_military)
    th_police = AgencyFactory(country=country("TH"), name="Royal Thai Police", short_name="RTP")
    _member(net, "th.police", th_police, office=OfficeFactory(agency=th_police, name="RTP Chiang Rai"))
    _member(net, "la.officer", net.la)
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
