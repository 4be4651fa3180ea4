from __future__ import annotations

import pytest

from tests.auth import sign_in
from tests.factories import OfficeFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/v1/agencies/", "/api/v1/offices/"])
def test_anonymous_caller_is_refused(api, path, bavet):
    response = api.get(path)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Api-Key"
    assert "Bavet" not in response.content.decode()


@pytest.mark.parametrize("path", ["/api/v1/agencies/", "/api/v1/offices/"])
def test_user_without_membership_is_refused(api, outsider, path, bavet):
    api.force_authenticate(outsider)
    assert api.get(path).status_code == 403


def test_officer_lists_offices_with_counterparts(api, vn_officer, bavet):
    api.force_authenticate(vn_officer)
    response = api.get("/api/v1/offices/")
    assert response.status_code == 200
    by_name = {office["name"]: office for office in response.json()["results"]}
    assert set(by_name) == {"Moc Bai BLO", "Bavet BLO"}
    assert by_name["Moc Bai BLO"]["counterparts"] == [
        {"id": bavet.pk, "name": "Bavet BLO", "border_crossing": "Bavet - Moc Bai", "agency": "ADD", "country": "KH"}
    ]
    assert by_name["Bavet BLO"]["agency"]["country"] == {"code": "KH", "name": "Cambodia"}


def test_offices_filter_by_country_and_search(api, vn_officer, bavet):
    api.force_authenticate(vn_officer)
    assert [o["name"] for o in api.get("/api/v1/offices/?country=KH").json()["results"]] == ["Bavet BLO"]
    assert [o["name"] for o in api.get("/api/v1/offices/?q=moc bai").json()["results"]] == ["Bavet BLO", "Moc Bai BLO"]
    assert api.get("/api/v1/offices/?country=XX").status_code == 400


def test_agency_detail_and_missing_agency(api, vn_officer, kh_agency):
    api.force_authenticate(vn_officer)
    assert api.get(f"/api/v1/agencies/{kh_agency.pk}/").json()["short_name"] == "ADD"
    assert api.get("/api/v1/agencies/999999/").status_code == 404


def test_directory_is_read_only(api, vn_admin, kh_agency):
    api.force_authenticate(vn_admin)
    assert api.post("/api/v1/agencies/", {"name": "X"}).status_code == 405
    assert api.delete(f"/api/v1/agencies/{kh_agency.pk}/").status_code == 405


def test_office_list_query_count_is_bounded(api, vn_officer, bavet, django_assert_max_num_queries):
    for _ in range(30):
        OfficeFactory(agency=bavet.agency)
    api.force_authenticate(vn_officer)
    with django_assert_max_num_queries(5):
        response = api.get("/api/v1/offices/")
    assert response.json()["count"] == 32


def test_schema_and_docs_are_open_to_a_signed_out_visitor_and_hold_no_data(client, vn_officer, bavet):
    signed_out = client.get("/api/schema/")
    assert signed_out.status_code == 200
    assert b"/api/v1/offices/" in signed_out.content
    assert b"Bavet" not in signed_out.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    assert b"cdn." not in docs.content  # assets are served by ISN itself, no CDN
    sign_in(client, vn_officer)
    assert client.get("/api/schema/").content == signed_out.content  # the same document for everyone
