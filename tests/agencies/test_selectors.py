from __future__ import annotations

import pytest

from agencies.models import Membership
from agencies.selectors import agencies_visible_to, membership_for, offices_visible_to
from agencies.services import agency_set_active, membership_set_active
from tests.factories import OfficeFactory

pytestmark = pytest.mark.django_db


def test_member_sees_every_active_agency_and_office(vn_officer, bavet, th_agency):
    assert set(agencies_visible_to(vn_officer)) == {bavet.agency, th_agency, vn_officer.membership.agency}
    assert set(offices_visible_to(vn_officer)) == {bavet, vn_officer.membership.office}


def test_user_without_membership_sees_nothing(outsider, bavet):
    assert membership_for(outsider) is None
    assert not agencies_visible_to(outsider).exists()
    assert not offices_visible_to(outsider).exists()


def test_suspended_member_sees_nothing(vn_officer, bavet):
    membership_set_active(actor=None, membership=Membership.objects.get(user=vn_officer), is_active=False)
    vn_officer.refresh_from_db()
    assert not offices_visible_to(vn_officer).exists()


def test_member_of_suspended_agency_sees_nothing(vn_officer, bavet):
    agency_set_active(actor=None, agency=vn_officer.membership.agency, is_active=False)
    vn_officer.refresh_from_db()
    assert membership_for(vn_officer) is None


def test_suspended_agency_and_its_offices_leave_the_directory(vn_officer, bavet):
    agency_set_active(actor=None, agency=bavet.agency, is_active=False)
    assert bavet not in offices_visible_to(vn_officer)
    assert bavet.agency not in agencies_visible_to(vn_officer)
    moc_bai = offices_visible_to(vn_officer).get(pk=vn_officer.membership.office_id)
    assert list(moc_bai.counterparts.all()) == []


def test_offices_list_costs_a_fixed_number_of_queries(vn_officer, bavet, django_assert_max_num_queries):
    for _ in range(20):
        OfficeFactory(agency=bavet.agency)
    membership_for(vn_officer)
    with django_assert_max_num_queries(2):
        offices = list(offices_visible_to(vn_officer))
        names = [(o.agency.country.code, [c.agency.country_id for c in o.counterparts.all()]) for o in offices]
    assert len(names) == 22
