"""Shared fixtures: the standard personas of the network.

- ``vn_officer``: an officer at a Viet Nam BLO (Moc Bai), the originating side in most stories.
- ``kh_officer``: the Cambodian counterpart officer (Bavet BLO).
- ``th_officer``: an officer of a third country (Thailand).
- ``vn_admin``: an agency admin of the Viet Nam agency.
- ``vn_auditor``: a national auditor of Viet Nam; ``kh_auditor``: of Cambodia; ``un_auditor``: the regional
  auditor (UNODC).
- ``platform_admin``: an ISN operator (Django superuser) without membership.
- ``outsider``: a signed-up user with no membership.
"""

from __future__ import annotations

import copy
import uuid

import pytest
from rest_framework.test import APIClient

from agencies.models import AgencyKind, Membership, OfficeKind, Role
from agencies.services import office_link_counterpart
from tests.auth import sign_in
from tests.factories import AgencyFactory, MembershipFactory, OfficeFactory, UserFactory, country


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _own_cache(settings):
    # Throttle counters live in the cache (real Redis under make test): a key prefix of its own per test keeps one
    # test's requests from counting against another's, also across xdist workers sharing the server.
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["KEY_PREFIX"] = f"isn-test-{uuid.uuid4().hex}"
    settings.CACHES = caches


@pytest.fixture
def portal_login(client):
    """``portal_login(user)``: the test client signed in as ``user`` with both factors (see tests/auth.py)."""

    def _sign_in(user):
        return sign_in(client, user)

    return _sign_in


@pytest.fixture
def vn_agency(db):
    return AgencyFactory(
        country=country("VN"), name="Viet Nam Border Guard Command", short_name="BGC", kind=AgencyKind.BORDER_GUARD
    )


@pytest.fixture
def kh_agency(db):
    return AgencyFactory(country=country("KH"), name="Anti-Drug Department", short_name="ADD")


@pytest.fixture
def th_agency(db):
    return AgencyFactory(
        country=country("TH"),
        name="Office of the Narcotics Control Board",
        short_name="ONCB",
        kind=AgencyKind.DRUG_CONTROL,
    )


@pytest.fixture
def un_agency(db):
    return AgencyFactory(country=country("UN"), name="UNODC Regional Office", short_name="UNODC", kind=AgencyKind.UNODC)


@pytest.fixture
def moc_bai(vn_agency):
    return OfficeFactory(agency=vn_agency, name="Moc Bai BLO", border_crossing="Moc Bai - Bavet", province="Tay Ninh")


@pytest.fixture
def bavet(kh_agency, moc_bai):
    office = OfficeFactory(agency=kh_agency, name="Bavet BLO", border_crossing="Bavet - Moc Bai", province="Svay Rieng")
    office_link_counterpart(actor=None, office=moc_bai, counterpart=office)
    return office


@pytest.fixture
def vn_duty_desk(vn_agency):
    return OfficeFactory(agency=vn_agency, name="BGC duty desk", kind=OfficeKind.DUTY_DESK, border_crossing="")


def _member(username: str, agency, role: str, office=None) -> Membership:
    user = UserFactory(username=username)
    return MembershipFactory(user=user, agency=agency, office=office, role=role)


@pytest.fixture
def vn_officer(moc_bai):
    return _member("vn.officer", moc_bai.agency, Role.OFFICER, moc_bai).user


@pytest.fixture
def kh_officer(bavet):
    return _member("kh.officer", bavet.agency, Role.OFFICER, bavet).user


@pytest.fixture
def th_officer(th_agency):
    return _member("th.officer", th_agency, Role.OFFICER).user


@pytest.fixture
def vn_admin(vn_agency):
    return _member("vn.admin", vn_agency, Role.AGENCY_ADMIN).user


@pytest.fixture
def vn_auditor(vn_agency):
    return _member("vn.auditor", vn_agency, Role.NATIONAL_AUDITOR).user


@pytest.fixture
def un_auditor(un_agency):
    return _member("un.auditor", un_agency, Role.REGIONAL_AUDITOR).user


@pytest.fixture
def outsider(db):
    return UserFactory(username="outsider")


@pytest.fixture
def api():
    """An API client; call ``api.force_authenticate(user)`` or leave it anonymous."""
    return APIClient()


@pytest.fixture
def kh_auditor(kh_agency):
    """A national auditor of Cambodia, to show that national scopes do not overlap."""
    return _member("kh.auditor", kh_agency, Role.NATIONAL_AUDITOR).user


@pytest.fixture
def platform_admin(db):
    """An ISN platform administrator (Django superuser, no membership): may use the admin, not the audit workspace."""
    return UserFactory(username="isn.operator", is_staff=True, is_superuser=True)
