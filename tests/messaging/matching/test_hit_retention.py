"""Hits and checks are kept ISN_HIT_RETENTION_DAYS, then deleted by the daily sweep, recorded with counts only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from messaging.matching.retention import hits_purge
from messaging.models import Hit, MatchCheck, Notification, NotificationKind
from messaging.rfis.services import rfi_create
from messaging.tasks import purge_hits
from tests.messaging.hits import make_hit
from tests.messaging.network import build_network, post_item

pytestmark = pytest.mark.django_db


@pytest.fixture
def net():
    return build_network()


def test_hits_and_checks_older_than_the_retention_are_deleted_and_recorded(net, settings):
    settings.ISN_HIT_RETENTION_DAYS = 30
    item = post_item(net.user("vn.officer"), countries=["VN"], priority="flash")
    now = timezone.now()
    old = make_hit(net.user("kh.officer"), item, at=now - timedelta(days=31))
    kept = make_hit(net.user("kh.officer"), item, at=now - timedelta(days=29))
    Notification.objects.create(user=net.user("vn.officer"), item=item, hit=old, kind=NotificationKind.HIT_ON_ITEM)
    rfi = rfi_create(
        actor=net.user("kh.officer"), hit_reference=old.reference, subject="Phone number", question="What do you hold?"
    ).rfi

    result = hits_purge(now=now)

    assert (result.hits, result.checks) == (1, 1)
    assert list(Hit.objects.values_list("pk", flat=True)) == [kept.pk]
    assert list(MatchCheck.objects.values_list("pk", flat=True)) == [kept.match_check_id]
    assert not Notification.objects.filter(hit_id=old.pk).exists()
    rfi.refresh_from_db()
    assert rfi.hit_id is None  # the request stays; only its link to the deleted hit goes
    event = AuditEvent.objects.get(action="messaging.hit.purge")
    assert event.actor_user_id is None
    assert event.details["hits"] == 1
    assert event.details["checks"] == 1
    assert old.reference not in str(event.details)


def test_the_task_purges_by_the_setting_and_records_a_run_with_nothing_to_do(net, settings):
    settings.ISN_HIT_RETENTION_DAYS = 365
    item = post_item(net.user("vn.officer"), countries=["VN"])
    make_hit(net.user("kh.officer"), item, at=timezone.now() - timedelta(days=300))

    assert purge_hits() == 0

    assert Hit.objects.count() == 1
    assert AuditEvent.objects.get(action="messaging.hit.purge").details["hits"] == 0


def test_the_retention_defaults_to_a_year():
    from django.conf import settings

    assert settings.ISN_HIT_RETENTION_DAYS == 365
