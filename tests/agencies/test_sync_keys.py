"""Sync keys: an agency admin declares a key's daily volume, and only a national auditor of its country approves."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from agencies.api_keys import api_key_issue, api_key_revoke
from agencies.models import ApiKeyScope, Role, SyncDeclaration, SyncDeclarationStatus
from agencies.services import membership_change
from agencies.sync_keys import MAX_DAILY_READS, sync_declaration_approve, sync_declaration_refuse, sync_key_declare
from audit.chain import seal_pending
from audit.models import AuditEvent
from audit.verify import verify_chain
from isn.errors import Conflict, InvalidInput, PermissionDenied
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

SYNC_CODES = ("agencies.sync_key.declare", "agencies.sync_key.approve", "agencies.sync_key.refuse")


def issue(actor, agency, *, name="case system", scopes=("read",)):
    return api_key_issue(
        actor=actor, agency=agency, name=name, scopes=list(scopes), expires_at=timezone.now() + timedelta(days=30)
    ).key


@pytest.fixture
def key(vn_admin, vn_agency):
    return issue(vn_admin, vn_agency)


@pytest.fixture
def kh_admin(kh_agency):
    return MembershipFactory(user=UserFactory(username="kh.admin"), agency=kh_agency, role=Role.AGENCY_ADMIN).user


def sync_events():
    return list(AuditEvent.objects.filter(action__in=SYNC_CODES).order_by("id"))


def statuses(key):
    return sorted((row.daily_reads, row.status) for row in key.sync_declarations.all())


def test_an_agency_admin_declares_a_key_which_awaits_approval(vn_admin, key):
    declaration = sync_key_declare(actor=vn_admin, key=key, daily_reads=5000)
    stored = SyncDeclaration.objects.get()
    assert (stored.pk, stored.daily_reads, stored.status) == (declaration.pk, 5000, SyncDeclarationStatus.PENDING)
    assert (stored.declared_by, stored.decided_by, stored.decided_at) == (vn_admin, None, None)
    [event] = sync_events()
    assert (event.action, event.actor_label, event.target_type, event.target_id, event.target_country) == (
        "agencies.sync_key.declare",
        "vn.admin",
        "agencies.syncdeclaration",
        str(declaration.pk),
        "VN",
    )
    assert event.details == {
        "api_key_id": key.pk,
        "prefix": key.prefix,
        "daily_reads": 5000,
        "in_force_daily_reads": None,
        "replaced_pending_ids": [],
    }


@pytest.mark.parametrize("who", ["vn_officer", "vn_auditor", "kh_admin", "platform_admin", "system", "the_key"])
def test_only_an_admin_of_the_keys_agency_declares(request, key, who):
    if who == "system":
        actor = None
    elif who == "the_key":  # a key's own account is a member of the agency, but a system, not its admin
        actor = key.user
    else:
        actor = request.getfixturevalue(who)
    with pytest.raises(PermissionDenied):
        sync_key_declare(actor=actor, key=key, daily_reads=100)
    assert not SyncDeclaration.objects.exists()
    assert sync_events() == []


@pytest.mark.parametrize("daily_reads", [0, -5, MAX_DAILY_READS + 1, 10**12, "100", 1.5, True, None])
def test_a_bad_volume_is_refused_and_changes_nothing(vn_admin, key, daily_reads):
    with pytest.raises(InvalidInput) as refused:
        sync_key_declare(actor=vn_admin, key=key, daily_reads=daily_reads)
    assert "reads a day" in refused.value.message
    assert not SyncDeclaration.objects.exists()
    assert sync_events() == []


def test_a_revoked_key_cannot_be_declared(vn_admin, key):
    api_key_revoke(actor=vn_admin, key=key)
    with pytest.raises(Conflict):
        sync_key_declare(actor=vn_admin, key=key, daily_reads=100)
    assert not SyncDeclaration.objects.exists()


def test_a_national_auditor_of_the_keys_country_approves(vn_admin, vn_auditor, key):
    declaration = sync_key_declare(actor=vn_admin, key=key, daily_reads=5000)
    approved = sync_declaration_approve(actor=vn_auditor, declaration=declaration)
    stored = SyncDeclaration.objects.get()
    assert (stored.status, stored.decided_by, stored.decided_at) == (
        SyncDeclarationStatus.APPROVED,
        vn_auditor,
        approved.decided_at,
    )
    event = sync_events()[-1]
    assert (event.action, event.actor_label, event.actor_country, event.target_id, event.target_country) == (
        "agencies.sync_key.approve",
        "vn.auditor",
        "VN",
        str(declaration.pk),
        "VN",
    )
    assert event.details["daily_reads"] == 5000
    assert event.details["declared_by"] == vn_admin.pk


@pytest.mark.parametrize(
    "who", ["un_auditor", "kh_auditor", "vn_admin", "vn_officer", "platform_admin", "system", "audit_key"]
)
def test_only_a_national_auditor_of_the_same_country_approves_or_refuses(request, vn_admin, vn_agency, key, who):
    declaration = sync_key_declare(actor=vn_admin, key=key, daily_reads=5000)
    if who == "system":
        actor = None
    elif who == "audit_key":  # an audit key's account is a national auditor of Viet Nam, but a system, not a person
        auditor = request.getfixturevalue("vn_auditor")
        actor = issue(auditor, vn_agency, name="audit mirror", scopes=(ApiKeyScope.AUDIT,)).user
        assert actor.membership.role == Role.NATIONAL_AUDITOR
    else:
        actor = request.getfixturevalue(who)
    with pytest.raises(PermissionDenied):
        sync_declaration_approve(actor=actor, declaration=declaration)
    with pytest.raises(PermissionDenied):
        sync_declaration_refuse(actor=actor, declaration=declaration, reason="no")
    stored = SyncDeclaration.objects.get()
    assert (stored.status, stored.decided_by, stored.decided_at) == (SyncDeclarationStatus.PENDING, None, None)
    assert [event.action for event in sync_events()] == ["agencies.sync_key.declare"]


def test_the_declaring_admin_cannot_approve_even_as_an_auditor_later(vn_admin, key):
    declaration = sync_key_declare(actor=vn_admin, key=key, daily_reads=5000)
    membership_change(actor=None, membership=vn_admin.membership, role=Role.NATIONAL_AUDITOR, office=None)
    now_auditor = get_user_model().objects.get(pk=vn_admin.pk)
    with pytest.raises(PermissionDenied, match="declared"):
        sync_declaration_approve(actor=now_auditor, declaration=declaration)
    assert SyncDeclaration.objects.get().status == SyncDeclarationStatus.PENDING


def test_a_new_declaration_replaces_a_pending_one_and_waits_while_the_approved_one_stays(vn_admin, vn_auditor, key):
    first = sync_key_declare(actor=vn_admin, key=key, daily_reads=1000)
    sync_declaration_approve(actor=vn_auditor, declaration=first)
    stale = sync_key_declare(actor=vn_admin, key=key, daily_reads=2000)
    newer = sync_key_declare(actor=vn_admin, key=key, daily_reads=3000)
    assert statuses(key) == [(1000, "approved"), (2000, "replaced"), (3000, "pending")]
    assert sync_events()[-1].details["in_force_daily_reads"] == 1000
    assert sync_events()[-1].details["replaced_pending_ids"] == [stale.pk]
    with pytest.raises(Conflict):  # an auditor cannot approve what the admin has since replaced
        sync_declaration_approve(actor=vn_auditor, declaration=stale)

    sync_declaration_approve(actor=vn_auditor, declaration=newer)
    assert statuses(key) == [(1000, "replaced"), (2000, "replaced"), (3000, "approved")]
    old = SyncDeclaration.objects.get(pk=first.pk)
    assert old.replaced_at == SyncDeclaration.objects.get(pk=newer.pk).decided_at
    assert sync_events()[-1].details["replaced_daily_reads"] == 1000


def test_a_refusal_needs_a_reason_and_leaves_the_approved_volume_in_force(vn_admin, vn_auditor, key):
    sync_declaration_approve(actor=vn_auditor, declaration=sync_key_declare(actor=vn_admin, key=key, daily_reads=1000))
    asked = sync_key_declare(actor=vn_admin, key=key, daily_reads=900_000)
    for reason in ("", "   ", "x" * 501):
        with pytest.raises(InvalidInput):
            sync_declaration_refuse(actor=vn_auditor, declaration=asked, reason=reason)
    assert statuses(key) == [(1000, "approved"), (900_000, "pending")]

    refused = sync_declaration_refuse(actor=vn_auditor, declaration=asked, reason="  Nine hundred thousand a day?  ")
    assert (refused.status, refused.refusal_reason, refused.decided_by) == (
        "refused",
        "Nine hundred thousand a day?",
        vn_auditor,
    )
    assert statuses(key) == [(1000, "approved"), (900_000, "refused")]
    event = sync_events()[-1]
    assert (event.action, event.actor_label, event.target_id) == (
        "agencies.sync_key.refuse",
        "vn.auditor",
        str(asked.pk),
    )
    with pytest.raises(Conflict):
        sync_declaration_approve(actor=vn_auditor, declaration=asked)


def test_a_key_revoked_while_waiting_cannot_be_approved(vn_admin, vn_auditor, key):
    declaration = sync_key_declare(actor=vn_admin, key=key, daily_reads=100)
    api_key_revoke(actor=vn_admin, key=key)
    with pytest.raises(Conflict):
        sync_declaration_approve(actor=vn_auditor, declaration=declaration)
    assert SyncDeclaration.objects.get().status == SyncDeclarationStatus.PENDING


def test_declaration_and_decision_are_sealed_into_the_audit_chain(vn_admin, vn_auditor, key):
    sync_declaration_approve(actor=vn_auditor, declaration=sync_key_declare(actor=vn_admin, key=key, daily_reads=10))
    seal_pending()
    events = sync_events()
    assert [event.action for event in events] == ["agencies.sync_key.declare", "agencies.sync_key.approve"]
    assert all(event.hash and event.sealed_at for event in events)
    assert verify_chain().error is None
