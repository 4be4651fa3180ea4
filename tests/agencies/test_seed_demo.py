from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from agencies import demo
from agencies.models import Agency, ApiKey, Membership, Office, OfficeKind, Role
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def _snapshot() -> dict[str, list[tuple]]:
    User = get_user_model()
    return {
        "agencies": list(Agency.objects.order_by("pk").values_list()),
        "offices": list(Office.objects.order_by("pk").values_list()),
        "counterparts": list(Office.counterparts.through.objects.order_by("pk").values_list()),
        "memberships": list(Membership.objects.order_by("pk").values_list()),
        "users": list(User.objects.order_by("pk").values_list()),
        "api_keys": list(ApiKey.objects.order_by("pk").values_list()),
    }


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seed_demo_builds_the_network():
    output = _seed()
    assert set(Agency.objects.values_list("country_id", flat=True)) == {"KH", "CN", "LA", "MM", "TH", "VN", "UN"}
    for country in ("KH", "CN", "LA", "MM", "TH", "VN"):
        assert 2 <= Agency.objects.filter(country_id=country).count() <= 3
    blos = Office.objects.filter(kind=OfficeKind.BLO)
    pairs = {frozenset((blo.pk, other.pk)) for blo in blos for other in blo.counterparts.all()}
    assert len(pairs) >= 8
    assert all(blo.counterparts.get().agency.country_id != blo.agency.country_id for blo in blos)
    assert Office.objects.filter(kind=OfficeKind.DUTY_DESK).count() == Agency.objects.count()
    assert set(Membership.objects.values_list("role", flat=True)) == set(Role.values)
    assert demo.DEMO_PASSWORD in output
    assert "vn.officer" in output


def test_seed_demo_twice_changes_nothing():
    _seed()
    before = _snapshot()
    events_before = AuditEvent.objects.count()
    output = _seed()
    assert _snapshot() == before
    assert "0 new accounts" in output
    assert AuditEvent.objects.count() == events_before  # nothing changed, so nothing was recorded


def test_seed_demo_is_recorded_as_isn_itself():
    _seed()
    created = AuditEvent.objects.filter(action="agencies.membership.create")
    assert created.count() == len(demo.USERS)
    assert set(created.values_list("actor_label", flat=True)) == {"ISN"}
    assert AuditEvent.objects.filter(action="agencies.agency.create").count() == len(demo.AGENCIES)
    assert AuditEvent.objects.filter(action="agencies.office.counterpart_link").count() == 2 * len(demo.BLO_PAIRS)


def test_demo_users_can_sign_in(client):
    _seed()
    response = client.post("/accounts/login/", {"username": "kh.officer", "password": demo.DEMO_PASSWORD})
    # The password is right; the second factor is set up at this first sign-in.
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/two-factor/enrol/")


def test_seed_demo_refuses_production(settings):
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="never runs in production"):
        _seed()
    assert not Agency.objects.exists()


def test_demo_api_keys_work_and_are_printed(api):
    output = _seed()
    prefix, secret = demo.api_key_parts("KH/CNP-ADD")
    key = f"isn_{prefix}_{secret}"
    assert key in output
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert api.get("/api/v1/offices/?q=Bavet BLO").json()["count"] == 1
    assert ApiKey.objects.count() == len(demo.API_KEY_AGENCIES)
