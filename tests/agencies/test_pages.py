"""The portal's pages of a member's place in the network (home, directory) and the agencies' admin pages."""

from __future__ import annotations

import pytest

from tests.auth import sign_in

pytestmark = pytest.mark.django_db


def test_portal_pages_need_sign_in(client):
    for path in ("/", "/directory/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/accounts/login/")


def test_signed_in_officer_sees_own_office_and_counterparts(client, vn_officer, bavet):
    sign_in(client, vn_officer)
    page = client.get("/").content.decode()
    assert "Moc Bai BLO" in page
    assert "Bavet BLO" in page


def test_user_without_membership_is_refused_the_directory(client, outsider, bavet):
    sign_in(client, outsider)
    assert client.get("/directory/").status_code == 403


def test_directory_lists_offices(client, vn_officer, bavet):
    sign_in(client, vn_officer)
    page = client.get("/directory/").content.decode()
    assert "Bavet - Moc Bai" in page


def test_admin_pages_open_for_platform_admin(client, platform_admin, bavet):
    admin_client = sign_in(client, platform_admin)
    for model in ("country", "agency", "office", "membership"):
        assert admin_client.get(f"/admin/agencies/{model}/").status_code == 200
    assert admin_client.get(f"/admin/agencies/office/{bavet.pk}/change/").status_code == 200
