"""Access reviews (point 19 of issue 14): agency admins confirm their members every ISN_ACCESS_REVIEW_DAYS; an
unconfirmed membership is suspended and recorded; a leaver loses sessions, keys and subscriptions at once."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from agencies.api_keys import api_key_issue
from agencies.models import ApiKey, Membership, Role
from agencies.reviews import memberships_confirm, memberships_lapse, reviews_visible_to
from agencies.services import membership_set_active
from agencies.tasks import lapse_access_reviews
from audit.models import AuditEvent
from isn.errors import InvalidInput, NotFound, PermissionDenied
from messaging.models import Subscription
from tests.auth import sign_in
from tests.conftest import _member
from tests.factories import AgencyFactory, country

pytestmark = pytest.mark.django_db

LATER = timedelta(days=91)  # past the default period of 90 days


def _membership(user) -> Membership:
    return Membership.objects.select_related("agency").get(user=user)


def _sessions_of(user) -> int:
    return sum(1 for s in Session.objects.all() if s.get_decoded().get("_auth_user_id") == str(user.pk))


def _issue(actor, agency, name="case system", scopes=("read",)):
    return api_key_issue(
        actor=actor, agency=agency, name=name, scopes=list(scopes), expires_at=timezone.now() + timedelta(days=30)
    )


# --- confirmation ---------------------------------------------------------------------------------------------------


def test_a_new_membership_counts_as_confirmed_when_created(vn_officer):
    membership = _membership(vn_officer)
    assert timezone.now() - membership.confirmed_at < timedelta(minutes=1)
    assert memberships_lapse(now=timezone.now() + timedelta(days=89)) == []


def test_the_agencys_own_admin_confirms_and_it_is_recorded(vn_admin, vn_officer, vn_agency):
    membership = _membership(vn_officer)
    before = membership.confirmed_at
    memberships_confirm(actor=vn_admin, agency=vn_agency, membership_ids=[membership.pk])
    membership.refresh_from_db()
    assert membership.confirmed_at > before
    assert membership.confirmed_by == vn_admin
    event = AuditEvent.objects.get(action="agencies.membership.confirm")
    assert (event.actor_label, event.target_id, event.target_country) == ("vn.admin", str(membership.pk), "VN")
    assert event.details["user_id"] == vn_officer.pk


def test_a_confirmation_starts_the_period_again(vn_admin, vn_officer, vn_agency):
    membership = _membership(vn_officer)
    Membership.objects.filter(pk=membership.pk).update(confirmed_at=timezone.now() - timedelta(days=80))
    memberships_confirm(actor=vn_admin, agency=vn_agency, membership_ids=[membership.pk])
    assert memberships_lapse(now=timezone.now() + timedelta(days=20)) == []
    membership.refresh_from_db()
    assert membership.is_active


@pytest.mark.parametrize("who", ["kh_admin", "platform_admin", "vn_officer", "vn_auditor", "vn_admin_self"])
def test_only_the_agencys_admin_confirms(who, request, vn_admin, vn_officer, vn_agency, kh_agency):
    actors = {
        "kh_admin": lambda: _member("kh.admin", kh_agency, Role.AGENCY_ADMIN).user,
        "platform_admin": lambda: request.getfixturevalue("platform_admin"),
        "vn_officer": lambda: vn_officer,
        "vn_auditor": lambda: request.getfixturevalue("vn_auditor"),
        "vn_admin_self": lambda: vn_admin,
    }
    actor = actors[who]()
    target = _membership(vn_admin if who == "vn_admin_self" else vn_officer)
    before = target.confirmed_at
    with pytest.raises(PermissionDenied):
        memberships_confirm(actor=actor, agency=vn_agency, membership_ids=[target.pk])
    target.refresh_from_db()
    assert target.confirmed_at == before
    assert not AuditEvent.objects.filter(action="agencies.membership.confirm").exists()


def test_a_batch_is_all_or_nothing(vn_admin, vn_officer, vn_agency, kh_officer):
    mine, theirs = _membership(vn_officer), _membership(kh_officer)
    with pytest.raises(NotFound):
        memberships_confirm(actor=vn_admin, agency=vn_agency, membership_ids=[mine.pk, theirs.pk])
    with pytest.raises(InvalidInput):
        memberships_confirm(actor=vn_admin, agency=vn_agency, membership_ids=[])
    assert not AuditEvent.objects.filter(action="agencies.membership.confirm").exists()


def test_an_agency_admin_is_confirmed_by_a_second_admin_or_the_countrys_focal_point(vn_admin, vn_agency, kh_agency):
    second = _member("vn.admin2", vn_agency, Role.AGENCY_ADMIN).user
    memberships_confirm(actor=second, agency=vn_agency, membership_ids=[_membership(vn_admin).pk])
    police = AgencyFactory(country=country("VN"), name="Viet Nam police", short_name="C04")
    focal_point = _member("vn.nfp", police, Role.NATIONAL_FOCAL_POINT).user
    memberships_confirm(actor=focal_point, agency=vn_agency, membership_ids=[_membership(second).pk])
    officer = _member("vn.other.officer", vn_agency, Role.OFFICER)
    with pytest.raises(PermissionDenied):  # a focal point confirms agency admins only
        memberships_confirm(actor=focal_point, agency=vn_agency, membership_ids=[officer.pk])
    kh_admin = _member("kh.admin", kh_agency, Role.AGENCY_ADMIN)
    with pytest.raises(PermissionDenied):  # and only of their own country
        memberships_confirm(actor=focal_point, agency=kh_agency, membership_ids=[kh_admin.pk])
    assert AuditEvent.objects.filter(action="agencies.membership.confirm").count() == 2
    assert {m.user.username for m in reviews_visible_to(focal_point)} == {"vn.admin", "vn.admin2"}


# --- lapse ----------------------------------------------------------------------------------------------------------


def test_an_unconfirmed_membership_lapses_after_the_period_and_is_recorded(vn_officer, vn_admin):
    membership = _membership(vn_officer)
    assert memberships_lapse(now=timezone.now() + timedelta(days=89)) == []
    lapsed = memberships_lapse(now=timezone.now() + LATER)
    assert membership.pk in lapsed
    assert _membership(vn_admin).pk in lapsed
    membership.refresh_from_db()
    assert not membership.is_active
    event = AuditEvent.objects.get(action="agencies.membership.review_lapsed", target_id=str(membership.pk))
    assert (event.actor_label, event.target_country) == ("ISN", "VN")
    assert event.details["user_id"] == vn_officer.pk
    assert "cut" in event.details
    assert memberships_lapse(now=timezone.now() + LATER) == []  # once only


def test_the_period_is_configurable(settings, vn_officer):
    settings.ISN_ACCESS_REVIEW_DAYS = 30
    assert memberships_lapse(now=timezone.now() + timedelta(days=29)) == []
    assert memberships_lapse(now=timezone.now() + timedelta(days=31)) == [_membership(vn_officer).pk]


def test_the_daily_task_suspends_lapsed_memberships(vn_officer):
    Membership.objects.filter(user=vn_officer).update(confirmed_at=timezone.now() - LATER)
    assert lapse_access_reviews() == 1
    assert not _membership(vn_officer).is_active


def test_an_api_keys_service_account_is_not_reviewed(vn_admin, vn_agency):
    issued = _issue(vn_admin, vn_agency)
    Membership.objects.filter(user=vn_admin).update(confirmed_at=timezone.now())  # keep the issuer confirmed
    memberships_lapse(now=timezone.now() + timedelta(days=1))
    Membership.objects.filter(user=issued.key.user).update(confirmed_at=timezone.now() - LATER)
    assert memberships_lapse() == []
    assert _membership(issued.key.user).is_active


def test_a_restoration_by_the_admin_confirms(vn_admin, vn_officer):
    membership = _membership(vn_officer)
    Membership.objects.filter(pk=membership.pk).update(confirmed_at=timezone.now() - LATER)
    membership.refresh_from_db()
    membership_set_active(actor=vn_admin, membership=membership, is_active=False)
    membership_set_active(actor=vn_admin, membership=membership, is_active=True)
    assert memberships_lapse() == []
    membership.refresh_from_db()
    assert membership.is_active
    assert membership.confirmed_by == vn_admin


# --- the leaver rule -------------------------------------------------------------------------------------------------


@pytest.fixture
def leaver(vn_agency):
    """A second admin of Viet Nam's agency, signed in twice, who issued a key and subscribed to items."""
    user = _member("vn.leaver", vn_agency, Role.AGENCY_ADMIN).user
    sign_in(Client(), user)
    sign_in(Client(), user)
    issued = _issue(user, vn_agency, name="leaver's system")
    subscription = Subscription.objects.create(agency=vn_agency, user=user, category="meth_pills")
    return user, issued, subscription


def _assert_cut_off(user, issued, subscription, cut):
    assert _sessions_of(user) == 0
    key = ApiKey.objects.get(pk=issued.key.pk)
    assert key.revoked_at is not None
    subscription.refresh_from_db()
    assert not subscription.is_active
    assert cut == {"sessions": 2, "api_key_ids": [key.pk], "subscription_ids": [subscription.pk]}
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {issued.plaintext}")
    assert api.get("/api/v1/offices/").status_code == 401
    revoke = AuditEvent.objects.get(action="agencies.api_key.revoke", target_id=str(key.pk))
    assert revoke.details == {"prefix": key.prefix, "reason": "leaver"}
    assert issued.plaintext.split("_", 2)[2] not in json.dumps(cut)


def test_a_suspended_member_loses_sessions_keys_and_subscriptions_at_once(leaver, vn_admin):
    user, issued, subscription = leaver
    other = _member("vn.stays", _membership(user).agency, Role.OFFICER).user
    sign_in(Client(), other)
    assert _sessions_of(user) == 2
    membership_set_active(actor=vn_admin, membership=_membership(user), is_active=False)
    event = AuditEvent.objects.get(action="agencies.membership.suspend")
    _assert_cut_off(user, issued, subscription, event.details["cut"])
    assert _sessions_of(other) == 1  # nobody else's


def test_a_lapsed_member_is_cut_off_too(leaver, vn_admin):
    user, issued, subscription = leaver
    Membership.objects.filter(user=user).update(confirmed_at=timezone.now() - LATER)
    assert memberships_lapse() == [_membership(user).pk]
    event = AuditEvent.objects.get(action="agencies.membership.review_lapsed")
    _assert_cut_off(user, issued, subscription, event.details["cut"])


def test_a_disabled_account_is_cut_off_and_recorded(leaver):
    user, issued, subscription = leaver
    user.is_active = False
    user.save()
    event = AuditEvent.objects.get(action="agencies.user.cut_off")
    assert (event.target_id, event.target_country) == (str(user.pk), "VN")
    _assert_cut_off(user, issued, subscription, event.details["cut"])
    user.save()  # saved again while disabled: nothing left to cut, nothing recorded
    assert AuditEvent.objects.filter(action="agencies.user.cut_off").count() == 1


def test_a_signed_in_leaver_is_signed_out_at_once(client, vn_admin, vn_officer):
    sign_in(client, vn_officer)
    assert client.get("/account/").status_code == 200
    membership_set_active(actor=vn_admin, membership=_membership(vn_officer), is_active=False)
    response = client.get("/account/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


# --- API and portal -------------------------------------------------------------------------------------------------


def test_the_api_lists_and_confirms_the_agencys_members(vn_admin, vn_officer, kh_officer):
    api = APIClient()
    sign_in(api, vn_admin)
    listed = api.get("/api/v1/access-reviews/")
    assert listed.status_code == 200
    rows = {row["username"]: row for row in listed.json()["results"]}
    assert set(rows) == {"vn.officer"}  # not the admin themselves, not another agency's people
    assert rows["vn.officer"]["due_at"]
    assert rows["vn.officer"]["confirmed_by"] is None
    pk = rows["vn.officer"]["id"]
    confirmed = api.post("/api/v1/access-reviews/confirm/", {"memberships": [pk]}, format="json")
    assert confirmed.status_code == 200
    assert confirmed.json()[0]["confirmed_by"] == "vn.admin"
    assert AuditEvent.objects.filter(action="agencies.membership.confirm", target_id=str(pk)).exists()
    other = api.post("/api/v1/access-reviews/confirm/", {"memberships": [_membership(kh_officer).pk]}, format="json")
    assert other.status_code == 404
    unknown = api.post("/api/v1/access-reviews/confirm/", {"memberships": [pk], "all": True}, format="json")
    assert unknown.status_code == 400


def test_the_api_refuses_officers_and_keys(vn_admin, vn_officer, vn_agency):
    api = APIClient()
    sign_in(api, vn_officer)
    assert api.get("/api/v1/access-reviews/").status_code == 403
    pk = _membership(vn_officer).pk
    assert api.post("/api/v1/access-reviews/confirm/", {"memberships": [pk]}, format="json").status_code == 403
    issued = _issue(vn_admin, vn_agency, scopes=("admin",))
    keyed = APIClient()
    keyed.credentials(HTTP_AUTHORIZATION=f"Api-Key {issued.plaintext}")
    assert keyed.get("/api/v1/access-reviews/").status_code == 403


def test_the_portal_page_shows_due_members_and_confirms_them(vn_admin, vn_officer):
    client = Client(enforce_csrf_checks=True)
    sign_in(client, vn_admin)
    page = client.get("/access-review/")
    assert page.status_code == 200
    assert b"vn.officer" in page.content
    assert b'name="membership"' in page.content
    pk = _membership(vn_officer).pk
    assert client.post("/access-review/", {"membership": [pk]}).status_code == 403  # no CSRF token
    token = page.cookies["csrftoken"].value if "csrftoken" in page.cookies else client.cookies["csrftoken"].value
    response = client.post("/access-review/", {"membership": [pk], "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="agencies.membership.confirm", target_id=str(pk)).exists()


def test_the_portal_page_is_for_reviewers_only(client, vn_officer):
    sign_in(client, vn_officer)
    assert client.get("/access-review/").status_code == 403


def test_a_membership_suspended_whole_outside_the_services_cuts_off_too(leaver):
    user, issued, subscription = leaver
    membership = _membership(user)
    membership.is_active = False
    membership.save()  # as the Django admin saves it
    event = AuditEvent.objects.get(action="agencies.user.cut_off")
    assert event.target_country == "VN"
    _assert_cut_off(user, issued, subscription, event.details["cut"])


def test_the_django_admin_offers_no_confirmation(client, platform_admin, vn_officer):
    page = sign_in(client, platform_admin).get(f"/admin/agencies/membership/{_membership(vn_officer).pk}/change/")
    assert page.status_code == 200
    assert b'name="confirmed_at' not in page.content
    assert b'name="confirmed_by' not in page.content
