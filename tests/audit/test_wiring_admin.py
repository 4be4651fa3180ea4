"""Every change made through the Django admin is an audit event naming the changed fields, never their values."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from agencies.models import Agency, AgencyKind
from audit.models import AuditArchive, AuditCheckpoint, AuditEvent
from isn.admin_audit import AuditedAdminMixin
from tests.auth import sign_in
from tests.factories import AgencyFactory, country

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, platform_admin):
    sign_in(client, platform_admin)
    return client


def test_every_model_admin_is_audited():
    unaudited = [
        model for model, model_admin in admin.site._registry.items() if not isinstance(model_admin, AuditedAdminMixin)
    ]
    assert unaudited == []
    assert get_user_model() in admin.site._registry
    assert Group in admin.site._registry


def test_admin_add_is_recorded(admin_client, platform_admin):
    response = admin_client.post(
        "/admin/agencies/agency/add/",
        {"country": "LA", "name": "Lao Customs", "short_name": "LAO-C", "kind": AgencyKind.CUSTOMS, "is_active": "on"},
    )
    assert response.status_code == 302, response.content
    agency = Agency.objects.get(short_name="LAO-C")
    event = AuditEvent.objects.get(action="admin.agencies.agency.add")
    assert (event.actor_user_id, event.target_type, event.target_id) == (
        platform_admin.pk,
        "agencies.agency",
        str(agency.pk),
    )
    assert event.target_country == "LA"
    assert set(event.details["fields"]) >= {"country", "name", "short_name", "kind"}
    assert "Lao Customs" not in str(event.details)


def test_admin_change_names_fields_not_values(admin_client, moc_bai):
    # Memberships are read-only in the admin (tests/agencies/test_two_person.py); an office is changed instead.
    response = admin_client.post(
        f"/admin/agencies/office/{moc_bai.pk}/change/",
        {
            "agency": moc_bai.agency_id,
            "name": moc_bai.name,
            "kind": moc_bai.kind,
            "border_crossing": moc_bai.border_crossing,
            "province": "Secret province",
            "opens_at": "07:00",
            "closes_at": "17:00",
            "contact_phone": "",
            "contact_email": "",
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content
    event = AuditEvent.objects.get(action="admin.agencies.office.change")
    assert "province" in event.details["fields"]
    assert "Secret province" not in str(event.details)
    assert (event.target_id, event.target_country) == (str(moc_bai.pk), "VN")


def test_admin_delete_is_recorded_in_the_same_transaction(admin_client):
    agency = AgencyFactory(country=country("MM"), name="Temporary", short_name="TMP")
    response = admin_client.post(f"/admin/agencies/agency/{agency.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Agency.objects.filter(pk=agency.pk).exists()
    event = AuditEvent.objects.get(action="admin.agencies.agency.delete")
    assert (event.target_id, event.target_country) == (str(agency.pk), "MM")


def test_admin_bulk_delete_action_records_each_object(admin_client):
    agencies = [AgencyFactory(country=country("TH")) for _ in range(3)]
    response = admin_client.post(
        "/admin/agencies/agency/",
        {"action": "delete_selected", "_selected_action": [a.pk for a in agencies], "post": "yes"},
    )
    assert response.status_code == 302
    deleted = AuditEvent.objects.filter(action="admin.agencies.agency.delete")
    assert sorted(deleted.values_list("target_id", flat=True)) == sorted(str(a.pk) for a in agencies)


def test_admin_password_reset_of_a_user_is_recorded_without_the_password(admin_client, kh_officer):
    new_password = "reset by the operator 77"
    response = admin_client.post(
        f"/admin/auth/user/{kh_officer.pk}/password/",
        {"password1": new_password, "password2": new_password, "usable_password": "true"},
    )
    assert response.status_code == 302, response.content
    event = AuditEvent.objects.get(action="admin.auth.user.change")
    assert (event.target_id, event.target_country) == (str(kh_officer.pk), "KH")
    assert new_password not in str(AuditEvent.objects.filter(pk=event.pk).values().get())


def test_admin_group_add_is_recorded(admin_client):
    assert admin_client.post("/admin/auth/group/add/", {"name": "reviewers"}).status_code == 302
    assert AuditEvent.objects.filter(action="admin.auth.group.add").count() == 1


def test_audit_admin_is_read_only_even_for_superusers(admin_client, platform_admin, rf):
    event = AuditEvent.objects.create(created_at="2026-01-01T00:00:00Z", action="test.event", actor_label="x")
    assert admin_client.get("/admin/audit/auditevent/").status_code == 200
    assert admin_client.get(f"/admin/audit/auditevent/{event.pk}/change/").status_code == 200  # view only
    assert admin_client.post(f"/admin/audit/auditevent/{event.pk}/change/", {"action": "forged"}).status_code == 403
    assert admin_client.get("/admin/audit/auditevent/add/").status_code == 403
    assert admin_client.post(f"/admin/audit/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    event.refresh_from_db()
    assert event.action == "test.event"
    request = rf.get("/admin/")
    request.user = platform_admin
    for model in (AuditEvent, AuditCheckpoint, AuditArchive):
        model_admin = admin.site._registry[model]
        assert not model_admin.has_add_permission(request)
        assert not model_admin.has_change_permission(request, None)
        assert not model_admin.has_delete_permission(request, None)
    # The refused attempts are themselves on the record.
    assert AuditEvent.objects.filter(action="access.denied", actor_user_id=platform_admin.pk).count() == 3
