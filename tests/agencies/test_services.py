from __future__ import annotations

from datetime import time

import pytest

from agencies.models import AgencyKind, Membership, Office, OfficeKind, Role
from agencies.services import (
    agency_create,
    agency_set_active,
    membership_change,
    membership_create,
    membership_set_active,
    office_create,
    office_link_counterpart,
    office_unlink_counterpart,
)
from audit.models import AuditEvent
from isn.errors import Conflict, InvalidInput, PermissionDenied
from tests.factories import AgencyFactory, OfficeFactory, UserFactory, country

pytestmark = pytest.mark.django_db


def test_platform_admin_creates_agency():
    admin = UserFactory(is_superuser=True)
    agency = agency_create(
        actor=admin, country=country("LA"), name="  LCDC  ", short_name="LCDC", kind=AgencyKind.DRUG_CONTROL
    )
    assert (agency.country_id, agency.name, agency.short_name) == ("LA", "LCDC", "LCDC")
    event = AuditEvent.objects.get(action="agencies.agency.create")
    assert (event.actor_user_id, event.target_type, event.target_id) == (admin.pk, "agencies.agency", str(agency.pk))
    assert (event.target_country, event.details) == ("LA", {"kind": AgencyKind.DRUG_CONTROL, "short_name": "LCDC"})


def test_suspending_and_restoring_an_agency_is_recorded(vn_agency):
    agency_set_active(actor=None, agency=vn_agency, is_active=False)
    agency_set_active(actor=None, agency=vn_agency, is_active=True)
    events = AuditEvent.objects.filter(target_type="agencies.agency", target_id=str(vn_agency.pk)).order_by("id")
    assert [(e.action, e.actor_label, e.target_country) for e in events] == [
        ("agencies.agency.suspend", "ISN", "VN"),
        ("agencies.agency.restore", "ISN", "VN"),
    ]


def test_agency_admin_cannot_create_agencies(vn_admin):
    with pytest.raises(PermissionDenied):
        agency_create(actor=vn_admin, country=country("VN"), name="New", short_name="NEW", kind=AgencyKind.POLICE)
    assert not AuditEvent.objects.filter(action="agencies.agency.create").exists()


def test_unodc_kind_only_for_the_un_member():
    with pytest.raises(InvalidInput):
        agency_create(actor=None, country=country("TH"), name="X", short_name="X", kind=AgencyKind.UNODC)
    with pytest.raises(InvalidInput):
        agency_create(actor=None, country=country("UN"), name="X", short_name="X", kind=AgencyKind.POLICE)


def test_duplicate_agency_name_in_a_country_is_a_conflict(vn_agency):
    with pytest.raises(Conflict):
        agency_create(
            actor=None, country=country("VN"), name=vn_agency.name, short_name="OTHER", kind=AgencyKind.POLICE
        )


def test_agency_admin_opens_office_in_own_agency(vn_admin, vn_agency):
    office = office_create(
        actor=vn_admin,
        agency=vn_agency,
        name="Lao Cai BLO",
        kind=OfficeKind.BLO,
        border_crossing="Lao Cai - Hekou",
        province="Lao Cai",
        opens_at=time(7),
        closes_at=time(17),
    )
    assert Office.objects.get(pk=office.pk).border_crossing == "Lao Cai - Hekou"
    event = AuditEvent.objects.get(action="agencies.office.create")
    assert (event.actor_user_id, event.actor_country, event.target_id) == (vn_admin.pk, "VN", str(office.pk))
    assert (event.target_country, event.details) == ("VN", {"agency_id": vn_agency.pk, "kind": OfficeKind.BLO})


def test_agency_admin_cannot_open_office_in_another_agency(vn_admin, kh_agency):
    with pytest.raises(PermissionDenied):
        office_create(
            actor=vn_admin,
            agency=kh_agency,
            name="X",
            kind=OfficeKind.BLO,
            border_crossing="X",
            province="X",
            opens_at=time(7),
            closes_at=time(17),
        )
    assert not Office.objects.filter(agency=kh_agency).exists()


def test_officer_cannot_open_offices(vn_officer, vn_agency):
    with pytest.raises(PermissionDenied):
        office_create(
            actor=vn_officer,
            agency=vn_agency,
            name="X",
            kind=OfficeKind.BLO,
            border_crossing="X",
            province="X",
            opens_at=time(7),
            closes_at=time(17),
        )


def test_blo_needs_a_border_crossing(vn_agency):
    with pytest.raises(InvalidInput):
        office_create(
            actor=None,
            agency=vn_agency,
            name="X",
            kind=OfficeKind.BLO,
            border_crossing=" ",
            province="X",
            opens_at=time(7),
            closes_at=time(17),
        )


def test_an_agency_has_one_duty_desk(vn_duty_desk):
    with pytest.raises(Conflict):
        office_create(
            actor=None,
            agency=vn_duty_desk.agency,
            name="Second desk",
            kind=OfficeKind.DUTY_DESK,
            province="Ha Noi",
            opens_at=time(0),
            closes_at=time(23, 59),
        )


def test_counterpart_link_is_symmetric_and_idempotent(moc_bai, bavet):
    office_link_counterpart(actor=None, office=bavet, counterpart=moc_bai)  # already linked by the fixture
    assert list(moc_bai.counterparts.all()) == [bavet]
    assert list(bavet.counterparts.all()) == [moc_bai]
    office_unlink_counterpart(actor=None, office=bavet, counterpart=moc_bai)
    assert not moc_bai.counterparts.exists()


def test_counterpart_changes_are_recorded_once_for_each_side(moc_bai, bavet):
    office_link_counterpart(actor=None, office=bavet, counterpart=moc_bai)  # no change: nothing to record
    links = AuditEvent.objects.filter(action="agencies.office.counterpart_link")
    assert sorted((e.target_id, e.target_country, e.details["counterpart_country"]) for e in links) == sorted(
        [(str(moc_bai.pk), "VN", "KH"), (str(bavet.pk), "KH", "VN")]
    )
    office_unlink_counterpart(actor=None, office=bavet, counterpart=moc_bai)
    office_unlink_counterpart(actor=None, office=bavet, counterpart=moc_bai)
    unlinks = AuditEvent.objects.filter(action="agencies.office.counterpart_unlink")
    assert sorted(e.target_country for e in unlinks) == ["KH", "VN"]


def test_counterparts_must_be_across_the_border(moc_bai):
    same_country = OfficeFactory(agency=AgencyFactory(country=country("VN")))
    with pytest.raises(InvalidInput):
        office_link_counterpart(actor=None, office=moc_bai, counterpart=same_country)
    with pytest.raises(InvalidInput):
        office_link_counterpart(actor=None, office=moc_bai, counterpart=moc_bai)


def test_duty_desks_have_no_counterparts(moc_bai):
    desk = OfficeFactory(agency=AgencyFactory(country=country("KH")), kind=OfficeKind.DUTY_DESK, border_crossing="")
    with pytest.raises(InvalidInput):
        office_link_counterpart(actor=None, office=moc_bai, counterpart=desk)


def test_membership_office_must_belong_to_the_agency(vn_agency, bavet):
    with pytest.raises(InvalidInput):
        membership_create(actor=None, user=UserFactory(), agency=vn_agency, office=bavet, role=Role.OFFICER)


def test_auditor_roles_match_their_member(vn_agency, un_agency):
    with pytest.raises(InvalidInput):
        membership_create(actor=None, user=UserFactory(), agency=vn_agency, role=Role.REGIONAL_AUDITOR)
    with pytest.raises(InvalidInput):
        membership_create(actor=None, user=UserFactory(), agency=un_agency, role=Role.NATIONAL_AUDITOR)


def test_a_user_has_one_membership(vn_officer, kh_agency):
    with pytest.raises(Conflict):
        membership_create(actor=None, user=vn_officer, agency=kh_agency, role=Role.OFFICER)


def test_membership_create_is_recorded(vn_admin, vn_agency, moc_bai):
    user = UserFactory(username="new.officer")
    membership = membership_create(actor=vn_admin, user=user, agency=vn_agency, office=moc_bai, role=Role.OFFICER)
    event = AuditEvent.objects.get(action="agencies.membership.create")
    assert (event.actor_user_id, event.target_type, event.target_id) == (
        vn_admin.pk,
        "agencies.membership",
        str(membership.pk),
    )
    assert event.target_country == "VN"
    assert event.details == {
        "user_id": user.pk,
        "agency_id": vn_agency.pk,
        "role": Role.OFFICER,
        "office_id": moc_bai.pk,
    }


def test_agency_admin_changes_role_and_suspends_member(vn_admin, vn_officer, moc_bai, vn_duty_desk):
    membership = Membership.objects.get(user=vn_officer)
    membership_change(actor=vn_admin, membership=membership, role=Role.SUPERVISOR, office=vn_duty_desk)
    membership_set_active(actor=vn_admin, membership=membership, is_active=False)
    membership_set_active(actor=vn_admin, membership=membership, is_active=True)
    membership.refresh_from_db()
    assert (membership.role, membership.is_active) == (Role.SUPERVISOR, True)
    changed = AuditEvent.objects.get(action="agencies.membership.change")
    assert (changed.actor_user_id, changed.target_id, changed.target_country) == (
        vn_admin.pk,
        str(membership.pk),
        "VN",
    )
    assert changed.details == {
        "user_id": vn_officer.pk,
        "old_role": Role.OFFICER,
        "new_role": Role.SUPERVISOR,
        "old_office_id": moc_bai.pk,
        "new_office_id": vn_duty_desk.pk,
    }
    actions = AuditEvent.objects.filter(target_id=str(membership.pk)).order_by("id").values_list("action", flat=True)
    assert list(actions)[-2:] == ["agencies.membership.suspend", "agencies.membership.restore"]


def test_admin_of_another_agency_cannot_change_members(vn_officer, kh_agency):
    kh_admin = UserFactory()
    membership_create(actor=None, user=kh_admin, agency=kh_agency, role=Role.AGENCY_ADMIN)
    membership = Membership.objects.get(user=vn_officer)
    with pytest.raises(PermissionDenied):
        membership_change(actor=kh_admin, membership=membership, role=Role.SUPERVISOR, office=None)
    membership.refresh_from_db()
    assert membership.role == Role.OFFICER
    assert not AuditEvent.objects.filter(action="agencies.membership.change").exists()


def test_a_failing_audit_write_fails_the_membership_change(vn_admin, vn_officer, monkeypatch):
    from isn import audit as audit_port

    def broken(**kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(audit_port, "_recorder", broken)
    membership = Membership.objects.get(user=vn_officer)
    with pytest.raises(RuntimeError):
        membership_change(actor=vn_admin, membership=membership, role=Role.SUPERVISOR, office=None)
    membership.refresh_from_db()
    assert (membership.role, membership.office_id) == (Role.OFFICER, vn_officer.membership.office_id)
