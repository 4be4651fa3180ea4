"""Issue 14, point 3: through ISN no single person, the platform's operator included, gives anyone access to a country's
items. One test per rule, each reproducing the attack and showing it refused, with the audit events that are due.
SECURITY.md ("Two-person rules") names each of them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from agencies.memberships import (
    agency_admin_propose,
    first_admin_propose,
    membership_proposal_approve,
    membership_proposal_cancel,
    membership_proposal_decline,
    second_factor_reset_propose,
)
from agencies.models import Membership, MembershipProposal, ProposalKind, ProposalStatus, Role
from agencies.services import membership_change, membership_create, membership_set_active
from audit.models import AuditEvent
from isn.errors import Conflict, PermissionDenied
from messaging.core.people import content_membership
from messaging.items.lifecycle import item_create
from tests.auth import sign_in, totp_device
from tests.factories import AgencyFactory, MembershipFactory, UserFactory, country
from tests.messaging.conftest import item_fields

pytestmark = pytest.mark.django_db


def _member(username, agency, role, office=None):
    return MembershipFactory(user=UserFactory(username=username), agency=agency, office=office, role=role).user


@pytest.fixture
def vn_focal(vn_agency):
    """Viet Nam's national focal point, at another Vietnamese agency: a second person of the country."""
    other = AgencyFactory(country=country("VN"), name="Standing Office on Drugs", short_name="SODC")
    return _member("vn.focal", other, Role.NATIONAL_FOCAL_POINT)


@pytest.fixture
def vn_admin2(vn_agency):
    return _member("vn.admin2", vn_agency, Role.AGENCY_ADMIN)


@pytest.fixture
def kh_focal(kh_agency):
    return _member("kh.focal", kh_agency, Role.NATIONAL_FOCAL_POINT)


@pytest.fixture
def kh_admin(kh_agency):
    return _member("kh.admin", kh_agency, Role.AGENCY_ADMIN)


def _events(*actions):
    return list(AuditEvent.objects.filter(action__in=actions).order_by("id"))


# Rule 1: content-bearing memberships are granted by that agency's admin, never by the platform's operator.


def test_the_operator_cannot_grant_themselves_or_anyone_a_membership(platform_admin, vn_agency, moc_bai, api):
    newcomer = UserFactory(username="newcomer")
    for user in (platform_admin, newcomer):
        with pytest.raises(PermissionDenied):
            membership_create(actor=platform_admin, user=user, agency=vn_agency, role=Role.OFFICER, office=moc_bai)
    api.force_authenticate(platform_admin)
    response = api.post("/api/v1/memberships/", {"username": "newcomer", "role": "officer"}, format="json")
    assert response.status_code == 403
    assert not Membership.objects.filter(user__in=[platform_admin, newcomer]).exists()
    assert not _events("agencies.membership.create")


def test_the_admin_shows_memberships_read_only_even_to_the_operator(client, platform_admin, vn_officer, vn_agency):
    sign_in(client, platform_admin)
    membership = Membership.objects.get(user=vn_officer)
    assert client.get("/admin/agencies/membership/").status_code == 200
    assert client.get("/admin/agencies/membership/add/").status_code == 403
    data = {"user": platform_admin.pk, "agency": vn_agency.pk, "role": Role.NATIONAL_FOCAL_POINT, "is_active": "on"}
    assert client.post("/admin/agencies/membership/add/", data).status_code == 403
    assert client.post(f"/admin/agencies/membership/{membership.pk}/change/", data).status_code == 403
    assert client.post(f"/admin/agencies/membership/{membership.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Membership.objects.get(pk=membership.pk).user_id == vn_officer.pk
    assert not Membership.objects.filter(user=platform_admin).exists()
    assert not _events("admin.agencies.membership.add", "admin.agencies.membership.change")


def test_only_an_admin_of_the_agency_grants_its_memberships(vn_admin, kh_agency, vn_agency, moc_bai, api):
    with pytest.raises(PermissionDenied):  # an admin of another country's agency
        membership_create(actor=vn_admin, user=UserFactory(), agency=kh_agency, role=Role.OFFICER)
    api.force_authenticate(vn_admin)
    UserFactory(username="new.officer")
    response = api.post(
        "/api/v1/memberships/", {"username": "new.officer", "role": "officer", "office": moc_bai.pk}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["agency"] == vn_agency.pk
    (event,) = _events("agencies.membership.create")
    assert (event.actor_user_id, event.target_country, event.details["role"]) == (vn_admin.pk, "VN", "officer")


def test_the_operator_cannot_move_an_agency_to_another_country_in_the_admin(client, platform_admin, vn_agency):
    # Its members would read the other country's items: a membership granted by the back door.
    sign_in(client, platform_admin)
    data = {"country": "KH", "name": vn_agency.name, "short_name": vn_agency.short_name, "kind": vn_agency.kind}
    response = client.post(f"/admin/agencies/agency/{vn_agency.pk}/change/", {**data, "is_active": "on"})
    assert response.status_code == 302
    vn_agency.refresh_from_db()
    assert vn_agency.country_id == "VN"
    assert "country" not in AuditEvent.objects.get(action="admin.agencies.agency.change").details["fields"]


# Rule 2: platform staff hold no content role.


def test_staff_can_be_given_no_content_role_by_anyone(vn_admin, vn_agency, vn_officer, api):
    staff = UserFactory(username="helpdesk", is_staff=True)
    for actor in (vn_admin, None):
        with pytest.raises(PermissionDenied):
            membership_create(actor=actor, user=staff, agency=vn_agency, role=Role.SUPERVISOR)
    api.force_authenticate(vn_admin)
    assert (
        api.post("/api/v1/memberships/", {"username": "helpdesk", "role": "officer"}, format="json").status_code == 403
    )
    assert not Membership.objects.filter(user=staff).exists()


def test_a_membership_written_into_the_database_gives_staff_nothing(platform_admin, vn_agency, vn_officer, api):
    item = item_create(actor=vn_officer, **item_fields()).item
    MembershipFactory(user=platform_admin, agency=vn_agency, role=Role.AGENCY_ADMIN)  # straight into the table
    assert content_membership(platform_admin) is None
    api.force_authenticate(platform_admin)
    assert api.get("/api/v1/items/").status_code == 403
    assert api.get(f"/api/v1/items/{item.pk}/").status_code in (403, 404)
    assert api.get("/api/v1/memberships/").status_code == 403  # nor does it make them the agency's admin
    with pytest.raises(PermissionDenied):
        membership_create(actor=platform_admin, user=UserFactory(), agency=vn_agency, role=Role.OFFICER)


def test_the_operator_cannot_make_a_member_staff_in_the_admin(client, platform_admin, vn_officer):
    sign_in(client, platform_admin)
    page = client.get(f"/admin/auth/user/{vn_officer.pk}/change/").content.decode()
    assert 'name="is_staff"' not in page
    assert 'name="is_superuser"' not in page
    data = {
        "username": vn_officer.username,
        "first_name": "Renamed",
        "is_active": "on",
        "is_staff": "on",
        "is_superuser": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
    }
    response = client.post(f"/admin/auth/user/{vn_officer.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[-2000:]
    vn_officer.refresh_from_db()
    assert vn_officer.first_name == "Renamed"  # the form was taken: only the staff flags were not
    assert (vn_officer.is_staff, vn_officer.is_superuser) == (False, False)
    # An account without a membership the operator may still make staff (their colleagues).
    colleague = UserFactory(username="colleague")
    assert 'name="is_staff"' in client.get(f"/admin/auth/user/{colleague.pk}/change/").content.decode()


# Rule 3: a new agency admin needs a second person of the country.


def test_an_agency_admin_cannot_make_another_admin_alone(vn_admin, vn_officer, vn_agency, api):
    with pytest.raises(PermissionDenied):
        membership_create(actor=vn_admin, user=UserFactory(), agency=vn_agency, role=Role.AGENCY_ADMIN)
    with pytest.raises(PermissionDenied):
        membership_change(actor=vn_admin, membership=vn_officer.membership, role=Role.AGENCY_ADMIN, office=None)
    api.force_authenticate(vn_admin)
    response = api.patch(f"/api/v1/memberships/{vn_officer.membership.pk}/", {"role": "agency_admin"}, format="json")
    assert response.status_code == 403
    proposal = agency_admin_propose(actor=vn_admin, agency=vn_agency, username="vn.officer")
    for alone in (vn_admin, vn_officer):  # the proposer, the subject
        with pytest.raises(PermissionDenied):
            membership_proposal_approve(actor=alone, proposal=proposal)
    assert Membership.objects.get(user=vn_officer).role == Role.OFFICER
    with pytest.raises(PermissionDenied):
        agency_admin_propose(actor=vn_admin, agency=vn_agency, username="vn.admin")  # nobody proposes themselves


def test_a_new_agency_admin_is_made_when_a_second_person_of_the_country_approves(
    vn_admin, vn_officer, vn_agency, vn_focal, kh_focal
):
    proposal = agency_admin_propose(actor=vn_admin, agency=vn_agency, username="vn.officer")
    with pytest.raises(PermissionDenied):  # a focal point of another country
        membership_proposal_approve(actor=kh_focal, proposal=proposal)
    membership_proposal_approve(actor=vn_focal, proposal=proposal)
    assert Membership.objects.get(user=vn_officer).role == Role.AGENCY_ADMIN
    events = _events(
        "agencies.membership_proposal.propose",
        "agencies.membership_proposal.approve",
        "agencies.membership_proposal.apply",
        "agencies.membership.change",
    )
    assert [(e.action, e.actor_user_id, e.target_country) for e in events] == [
        ("agencies.membership_proposal.propose", vn_admin.pk, "VN"),
        ("agencies.membership_proposal.approve", vn_focal.pk, "VN"),
        ("agencies.membership.change", None, "VN"),
        ("agencies.membership_proposal.apply", None, "VN"),
    ]
    assert events[3].details["approved_by"] == vn_focal.pk
    assert events[3].details["membership_id"] == vn_officer.membership.pk


def test_another_admin_of_the_agency_may_approve_a_new_admin(vn_admin, vn_admin2, vn_agency):
    newcomer = UserFactory(username="new.admin")
    proposal = agency_admin_propose(actor=vn_admin, agency=vn_agency, username="new.admin")
    membership_proposal_approve(actor=vn_admin2, proposal=proposal)
    membership = Membership.objects.get(user=newcomer)
    assert (membership.agency_id, membership.role) == (vn_agency.pk, Role.AGENCY_ADMIN)
    assert _events("agencies.membership.create")[0].target_country == "VN"


# Rule 4: a new agency's first admin is proposed by the operator and approved by the country's national focal point.


def test_an_agencys_first_admin_takes_the_operator_and_a_national_focal_point(
    platform_admin, vn_focal, vn_admin, vn_agency
):
    lonely = AgencyFactory(country=country("VN"), name="Customs", short_name="GDVC")
    chosen = UserFactory(username="gdvc.admin")
    with pytest.raises(PermissionDenied):  # an agency admin is not the operator
        first_admin_propose(actor=vn_admin, agency=lonely, username="gdvc.admin")
    with pytest.raises(Conflict):  # an agency with an admin: its admins propose
        first_admin_propose(actor=platform_admin, agency=vn_agency, username="gdvc.admin")
    with pytest.raises(PermissionDenied):  # nor is the operator the first admin
        first_admin_propose(actor=platform_admin, agency=lonely, username="isn.operator")
    proposal = first_admin_propose(actor=platform_admin, agency=lonely, username="gdvc.admin")
    for alone in (platform_admin, vn_admin, chosen):  # the proposer; an admin of another agency; the subject
        with pytest.raises(PermissionDenied):
            membership_proposal_approve(actor=alone, proposal=proposal)
    assert not Membership.objects.filter(user=chosen).exists()
    membership_proposal_approve(actor=vn_focal, proposal=proposal)
    assert Membership.objects.get(user=chosen).role == Role.AGENCY_ADMIN
    events = _events("agencies.membership_proposal.propose", "agencies.membership_proposal.approve")
    assert [(e.actor_user_id, e.target_country, e.details["kind"]) for e in events] == [
        (platform_admin.pk, "VN", ProposalKind.FIRST_ADMIN),
        (vn_focal.pk, "VN", ProposalKind.FIRST_ADMIN),
    ]
    assert _events("agencies.membership_proposal.apply")[0].target_country == "VN"


# Rule 5: a lost second factor is reset by the agency admin and confirmed by a second person.


def test_a_lost_second_factor_is_reset_only_with_a_second_person(vn_admin, vn_admin2, vn_officer, vn_agency, client):
    sign_in(client, vn_officer)
    StaticDevice.objects.create(user=vn_officer, name="recovery", confirmed=True)
    assert client.get("/api/v1/items/").status_code == 200
    with pytest.raises(PermissionDenied):  # nobody resets their own
        second_factor_reset_propose(actor=vn_admin, agency=vn_agency, username="vn.admin")
    proposal = second_factor_reset_propose(actor=vn_admin, agency=vn_agency, username="vn.officer")
    for alone in (vn_admin, vn_officer):
        with pytest.raises(PermissionDenied):
            membership_proposal_approve(actor=alone, proposal=proposal)
    assert TOTPDevice.objects.filter(user=vn_officer).exists()
    membership_proposal_approve(actor=vn_admin2, proposal=proposal)
    assert not TOTPDevice.objects.filter(user=vn_officer).exists()
    assert not StaticDevice.objects.filter(user=vn_officer).exists()
    # The session verified by the old authenticator counts no more: the person enrols again.
    assert client.get("/api/v1/items/").status_code in (401, 403)
    (applied,) = _events("agencies.membership_proposal.apply")
    assert (applied.target_country, applied.details["totp_devices"], applied.details["recovery_devices"]) == (
        "VN",
        1,
        1,
    )
    assert applied.details["approved_by"] == vn_admin2.pk


def test_the_operator_cannot_remove_a_members_devices_in_the_admin(client, platform_admin, vn_officer):
    device = totp_device(vn_officer)
    sign_in(client, platform_admin)
    assert client.post(f"/admin/otp_totp/totpdevice/{device.pk}/delete/", {"post": "yes"}).status_code == 403
    response = client.post(
        "/admin/otp_totp/totpdevice/", {"action": "delete_selected", "_selected_action": [device.pk], "post": "yes"}
    )
    assert response.status_code in (200, 302, 403)
    assert TOTPDevice.objects.filter(pk=device.pk).exists()
    assert not _events("admin.otp_totp.totpdevice.delete")
    # The staff's own devices (no membership) the admin still removes.
    own = TOTPDevice.objects.filter(user=platform_admin).get()
    assert client.post(f"/admin/otp_totp/totpdevice/{own.pk}/delete/", {"post": "yes"}).status_code == 302


# Rule 6: every step is recorded under the country; proposals expire, decline and cancel.


def test_an_expired_proposal_cannot_be_approved(vn_admin, vn_admin2, vn_agency, vn_officer):
    proposal = agency_admin_propose(actor=vn_admin, agency=vn_agency, username="vn.officer")
    MembershipProposal.objects.filter(pk=proposal.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(Conflict):
        membership_proposal_approve(actor=vn_admin2, proposal=proposal)
    assert Membership.objects.get(user=vn_officer).role == Role.OFFICER
    again = agency_admin_propose(actor=vn_admin, agency=vn_agency, username="vn.officer")
    assert MembershipProposal.objects.get(pk=proposal.pk).status == ProposalStatus.EXPIRED
    assert _events("agencies.membership_proposal.propose")[-1].details["expired_ids"] == [proposal.pk]
    assert again.status == ProposalStatus.PENDING


def test_declining_and_cancelling_change_nothing_and_are_recorded(vn_admin, vn_focal, vn_agency, vn_officer):
    declined = agency_admin_propose(actor=vn_admin, agency=vn_agency, username="vn.officer")
    membership_proposal_decline(actor=vn_focal, proposal=declined)
    cancelled = agency_admin_propose(actor=vn_admin, agency=vn_agency, username="vn.officer")
    with pytest.raises(PermissionDenied):
        membership_proposal_cancel(actor=vn_focal, proposal=cancelled)
    membership_proposal_cancel(actor=vn_admin, proposal=cancelled)
    with pytest.raises(Conflict):
        membership_proposal_approve(actor=vn_focal, proposal=cancelled)
    assert Membership.objects.get(user=vn_officer).role == Role.OFFICER
    events = _events("agencies.membership_proposal.decline", "agencies.membership_proposal.cancel")
    assert [(e.action, e.actor_user_id, e.target_country) for e in events] == [
        ("agencies.membership_proposal.decline", vn_focal.pk, "VN"),
        ("agencies.membership_proposal.cancel", vn_admin.pk, "VN"),
    ]


def test_restoring_is_a_grant_but_suspending_is_not(platform_admin, vn_admin, vn_officer):
    membership = vn_officer.membership
    membership_set_active(actor=platform_admin, membership=membership, is_active=False)  # cutting off may not wait
    with pytest.raises(PermissionDenied):
        membership_set_active(actor=platform_admin, membership=membership, is_active=True)
    membership_set_active(actor=vn_admin, membership=membership, is_active=True)
    assert Membership.objects.get(pk=membership.pk).is_active


# The API: the same rules, and another country's proposals look like nothing at all.


def test_the_api_proposes_approves_and_hides_other_countries(vn_admin, vn_focal, kh_focal, kh_admin, vn_agency):
    UserFactory(username="new.admin")
    admin, focal, other_focal, other_admin = Client(), Client(), Client(), Client()
    for client, user in ((admin, vn_admin), (focal, vn_focal), (other_focal, kh_focal), (other_admin, kh_admin)):
        sign_in(client, user)
    made = admin.post(
        "/api/v1/membership-proposals/",
        {"kind": "agency_admin", "username": "new.admin"},
        content_type="application/json",
    )
    assert made.status_code == 201, made.content
    body = made.json()
    assert (body["status"], body["country"], body["proposed_by"]) == ("pending", "VN", "vn.admin")
    pk = body["id"]
    assert admin.post(f"/api/v1/membership-proposals/{pk}/approve/").status_code == 403
    for outsider in (other_focal, other_admin):
        hidden = outsider.post(f"/api/v1/membership-proposals/{pk}/approve/")
        absent = outsider.post("/api/v1/membership-proposals/999999999/approve/")
        assert (hidden.status_code, hidden.content) == (absent.status_code, absent.content)
        assert hidden.status_code == 404
        assert outsider.get("/api/v1/membership-proposals/").json()["results"] == []
    assert [p["id"] for p in focal.get("/api/v1/membership-proposals/?status=pending").json()["results"]] == [pk]
    approved = focal.post(f"/api/v1/membership-proposals/{pk}/approve/")
    assert approved.status_code == 200
    assert (approved.json()["status"], approved.json()["decided_by"]) == ("approved", "vn.focal")
    assert Membership.objects.get(user__username="new.admin").role == Role.AGENCY_ADMIN
    unknown = admin.post(
        "/api/v1/membership-proposals/",
        {"kind": "agency_admin", "username": "x", "extra": 1},
        content_type="application/json",
    )
    assert unknown.status_code == 400
    assert "extra" in unknown.json()["errors"]["fields"]


def test_the_operator_proposes_a_first_admin_through_the_api(platform_admin, vn_focal):
    lonely = AgencyFactory(country=country("VN"), name="Customs", short_name="GDVC")
    UserFactory(username="gdvc.admin")
    operator = sign_in(Client(), platform_admin)
    made = operator.post(
        "/api/v1/membership-proposals/",
        {"kind": "first_admin", "username": "gdvc.admin", "agency": lonely.pk},
        content_type="application/json",
    )
    assert made.status_code == 201, made.content
    pk = made.json()["id"]
    assert operator.post(f"/api/v1/membership-proposals/{pk}/approve/").status_code == 403
    reset = operator.post(
        "/api/v1/membership-proposals/",
        {"kind": "second_factor_reset", "username": "vn.focal"},
        content_type="application/json",
    )
    assert reset.status_code == 403
    assert sign_in(Client(), vn_focal).post(f"/api/v1/membership-proposals/{pk}/approve/").status_code == 200
    assert Membership.objects.get(user__username="gdvc.admin").agency_id == lonely.pk


def test_what_grants_nothing_new_needs_no_second_person(vn_admin, vn_admin2, vn_officer, vn_duty_desk, api):
    api.force_authenticate(vn_admin)
    moved = api.patch(
        f"/api/v1/memberships/{vn_admin2.membership.pk}/", {"office": vn_duty_desk.pk}, format="json"
    )  # another admin's office: they keep the role they hold
    assert moved.status_code == 200, moved.content
    assert moved.json()["office"] == vn_duty_desk.pk
    demoted = api.patch(f"/api/v1/memberships/{vn_admin2.membership.pk}/", {"role": "officer"}, format="json")
    assert demoted.json()["role"] == "officer"
    suspended = api.patch(f"/api/v1/memberships/{vn_officer.membership.pk}/", {"is_active": False}, format="json")
    assert suspended.json()["is_active"] is False
    assert [e.action for e in _events("agencies.membership.change", "agencies.membership.suspend")] == [
        "agencies.membership.change",
        "agencies.membership.change",
        "agencies.membership.suspend",
    ]
