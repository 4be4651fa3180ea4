"""Shared by the security tests: a network with a persona of every role in every member, and one item of Viet Nam's
released to Cambodia only (with an attachment), for tests that go through every endpoint as everyone."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from agencies.api_keys import api_key_issue, api_key_revoke
from agencies.keyring import forget_cached_keys
from agencies.models import Agency, AgencyKind, ApiKey, Office, Role
from audit.models import AuditEvent
from messaging.items.attachments import attachment_add
from messaging.items.lifecycle import item_create
from tests.auth import sign_in, totp_device
from tests.factories import AgencyFactory, MembershipFactory, OfficeFactory, UserFactory, country

STATES = ("KH", "CN", "LA", "MM", "TH", "VN")
ITEM_COUNTRIES = frozenset({"VN", "KH"})
CANARY_TITLE = "Matrix canary convoy Q7ZK"


@dataclass
class Persona:
    name: str
    client: Client
    kind: str  # "session", "key", "anonymous"
    country: str = ""
    agency_id: int | None = None
    role: str = ""
    scopes: tuple[str, ...] = ()
    usable: bool = True  # False: disabled, unverified, expired or revoked

    @property
    def session(self) -> bool:
        return self.kind == "session" and self.usable

    @property
    def key(self) -> bool:
        return self.kind == "key" and self.usable

    @property
    def member(self) -> bool:
        return (self.session or self.key) and bool(self.country)

    @property
    def auditor(self) -> bool:
        return self.member and self.role in (Role.NATIONAL_AUDITOR, Role.REGIONAL_AUDITOR)

    @property
    def content(self) -> bool:
        """May read and post items at all: a member who is no auditor."""
        return self.member and not self.auditor

    def may(self, method: str, *, admin_scope: bool = False) -> bool:
        """What an API key's scopes allow; a person's session is not limited by scopes. On the views of an agency's
        delivery settings (``admin_scope``), the admin scope allows every method."""
        if not self.key:
            return True
        if admin_scope and "admin" in self.scopes:
            return True
        if method in ("GET", "HEAD", "OPTIONS"):
            return bool({"read", "audit"} & set(self.scopes))
        return "write" in self.scopes


@dataclass
class Network:
    personas: list[Persona]
    item_id: str
    attachment_id: str
    office_id: int
    agency_id: int
    originator_agency_id: int
    api_key_id: int
    user_id: int
    audit_event_id: int
    extra: dict[str, Any] = field(default_factory=dict)


def _key_client(plaintext: str) -> Client:
    return Client(headers={"Authorization": f"Api-Key {plaintext}"})


def build_network() -> Network:
    forget_cached_keys()
    agencies: dict[str, Agency] = {}
    offices: dict[str, Office] = {}
    personas: list[Persona] = []
    members: dict[str, Any] = {}
    for code in (*STATES, "UN"):
        agency = AgencyFactory(
            country=country(code),
            name=f"{code} matrix agency",
            short_name=f"{code}-M",
            kind=AgencyKind.UNODC if code == "UN" else AgencyKind.POLICE,
        )
        agencies[code] = agency
        offices[code] = OfficeFactory(agency=agency, name=f"{code} matrix BLO")
        roles = (
            [Role.OFFICER, Role.AGENCY_ADMIN, Role.REGIONAL_AUDITOR]
            if code == "UN"
            else [Role.OFFICER, Role.SUPERVISOR, Role.AGENCY_ADMIN, Role.NATIONAL_AUDITOR]
        )
        for role in roles:
            name = f"{code.lower()}.{role}"
            user = UserFactory(username=name)
            office = offices[code] if role in (Role.OFFICER, Role.SUPERVISOR) else None
            MembershipFactory(user=user, agency=agency, office=office, role=role)
            members[name] = user
            personas.append(Persona(name, sign_in(Client(), user), "session", code, agency.pk, role))

    operator = UserFactory(username="isn.operator", is_staff=True, is_superuser=True)
    personas.append(Persona("platform_admin", sign_in(Client(), operator), "session"))
    personas.append(Persona("anonymous", Client(), "anonymous", usable=False))

    disabled = UserFactory(username="vn.disabled")
    MembershipFactory(user=disabled, agency=agencies["VN"], office=offices["VN"], role=Role.OFFICER)
    disabled_client = sign_in(Client(), disabled)
    disabled.is_active = False
    disabled.save(update_fields=["is_active"])
    personas.append(
        Persona("disabled_user", disabled_client, "session", "VN", agencies["VN"].pk, Role.OFFICER, (), False)
    )

    unverified = UserFactory(username="vn.unverified")
    MembershipFactory(user=unverified, agency=agencies["VN"], office=offices["VN"], role=Role.OFFICER)
    totp_device(unverified)
    password_only = Client()
    password_only.force_login(unverified)
    personas.append(
        Persona("password_only_session", password_only, "session", "VN", agencies["VN"].pk, Role.OFFICER, (), False)
    )

    soon = timezone.now() + timedelta(days=30)

    def issue(code: str, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
        issuer = "national_auditor" if scopes == ["audit"] else "agency_admin"  # a key reaches no further than them
        issued = api_key_issue(
            actor=members[f"{code.lower()}.{issuer}"],
            agency=agencies[code],
            name=name,
            scopes=scopes,
            expires_at=soon,
        )
        return issued.key, issued.plaintext

    for code, name, scopes in [
        ("VN", "vn_key_read", ["read"]),
        ("VN", "vn_key_read_write", ["read", "write"]),
        ("KH", "kh_key_read_write", ["read", "write"]),
        ("TH", "th_key_read_write", ["read", "write"]),
        ("VN", "vn_key_audit", ["audit"]),
        ("VN", "vn_key_admin", ["admin"]),
    ]:
        _key, plaintext = issue(code, name, scopes)
        role = Role.NATIONAL_AUDITOR if scopes == ["audit"] else Role.OFFICER
        personas.append(Persona(name, _key_client(plaintext), "key", code, agencies[code].pk, role, tuple(scopes)))
    expired, expired_plaintext = issue("VN", "expired", ["read", "write"])
    ApiKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    personas.append(Persona("expired_key", _key_client(expired_plaintext), "key", "VN", usable=False))
    revoked, revoked_plaintext = issue("VN", "revoked", ["read", "write"])
    api_key_revoke(actor=members["vn.agency_admin"], key=revoked)
    personas.append(Persona("revoked_key", _key_client(revoked_plaintext), "key", "VN", usable=False))

    content = item_create(
        actor=members["vn.officer"],
        title=CANARY_TITLE,
        body="Two lorries crossing Thursday night.",
        language="en",
        category="meth_pills",
        priority="priority",
        source_reliability="B",
        info_credibility=2,
        handling_code="amber",
        review_date=timezone.now().date() + timedelta(days=90),
        countries=sorted(ITEM_COUNTRIES),
    )
    attachment = attachment_add(
        actor=members["vn.officer"], item_id=content.item.pk, filename="note.txt", content=b"plain note"
    )
    return Network(
        personas=personas,
        item_id=str(content.item.pk),
        attachment_id=str(attachment.id),
        office_id=offices["KH"].pk,
        agency_id=agencies["KH"].pk,
        originator_agency_id=agencies["VN"].pk,
        api_key_id=ApiKey.objects.get(name="vn_key_read").pk,
        user_id=members["vn.officer"].pk,
        audit_event_id=AuditEvent.objects.order_by("-id").values_list("id", flat=True).first(),
    )


@pytest.fixture
def network(db, monkeypatch) -> Iterator[Network]:
    from rest_framework.settings import api_settings

    # Hundreds of requests from one address in a second: the throttles are tested elsewhere.
    for scope in ("api_key", "person", "anonymous"):
        monkeypatch.setitem(api_settings.DEFAULT_THROTTLE_RATES, scope, "100000/minute")
    yield build_network()
    forget_cached_keys()
