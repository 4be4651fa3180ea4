"""The portal's pages for hits: the originator's tracking page lists the hits on its item (who asked, when, the
reference), for the originating agency only, recorded."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AuditEvent
from messaging.delivery.hit_notices import hits_notify
from messaging.models import Notification
from tests.auth import sign_in
from tests.messaging.hits import make_hit
from tests.messaging.network import post_item

pytestmark = pytest.mark.django_db


@pytest.fixture
def hit(net):
    item = post_item(net.user("vn.officer"), countries=["VN"], priority="flash")
    return make_hit(net.user("kh.officer"), item, entity_type="vehicle")


def test_the_tracking_page_shows_who_asked_when_and_the_reference(net, hit):
    vn = sign_in(Client(), net.user("vn.focal"))
    response = vn.get(f"/items/{hit.item_id}/tracking/")
    page = response.content.decode()
    assert response.status_code == 200
    assert f'data-hit="{hit.reference}"' in page
    assert "kh.officer" in page
    assert "ADD (Cambodia)" in page
    assert "Vehicle" in page
    event = AuditEvent.objects.get(action="messaging.item.hits_view", actor_user=net.user("vn.focal"))
    assert (event.target_id, event.details["hit_ids"], event.target_country) == (str(hit.item_id), [hit.pk], "VN")


def test_the_tracking_page_with_no_hits_says_so(net):
    item = post_item(net.user("vn.officer"), countries=["VN"])
    page = sign_in(Client(), net.user("vn.officer")).get(f"/items/{item.pk}/tracking/").content.decode()
    assert 'data-hits="0"' in page


@pytest.mark.parametrize("name", ["kh.officer", "th.officer", "kh.customs"])
def test_nobody_outside_the_originating_agency_sees_the_hits(net, hit, name):
    response = sign_in(Client(), net.user(name)).get(f"/items/{hit.item_id}/tracking/")
    assert response.status_code in (403, 404)
    assert hit.reference not in response.content.decode()
    assert not AuditEvent.objects.filter(action="messaging.item.hits_view").exists()


def test_a_hit_notification_opens_the_tracking_page(net, hit):
    hits_notify([hit])
    note = Notification.objects.get(hit=hit, user=net.user("vn.officer"))
    vn = sign_in(Client(), net.user("vn.officer"))
    notifications = vn.get("/notifications/").content.decode()
    assert "An identifier check matched an item of your agency" in notifications
    response = vn.post(f"/notifications/{note.pk}/read/")
    assert response.status_code == 302
    assert response["Location"] == f"/items/{hit.item_id}/tracking/"
