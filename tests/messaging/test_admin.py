from __future__ import annotations

import pytest

from tests.auth import sign_in
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(client):
    user = UserFactory(username="root", is_staff=True, is_superuser=True)
    sign_in(client, user)
    return client


def test_admin_lists_item_metadata_without_content(superuser_client, post, vn_officer):
    content = post(vn_officer, title="Secret convoy at Moc Bai", body="Plates 70C-999.99")
    listing = superuser_client.get("/admin/messaging/item/")
    assert listing.status_code == 200
    assert str(content.item.pk) in listing.content.decode()
    page = superuser_client.get(f"/admin/messaging/item/{content.item.pk}/change/")
    assert page.status_code == 200
    for response in (listing, page):
        text = response.content.decode()
        assert "Secret convoy" not in text
        assert "70C-999.99" not in text
        assert "sealed" not in text


def test_admin_cannot_add_change_or_delete_items(superuser_client, post, vn_officer):
    item = post(vn_officer).item
    assert superuser_client.get("/admin/messaging/item/add/").status_code == 403
    assert superuser_client.post(f"/admin/messaging/item/{item.pk}/delete/").status_code == 403
    assert superuser_client.post(f"/admin/messaging/item/{item.pk}/change/", {"status": "withdrawn"}).status_code == 403
    item.refresh_from_db()
    assert item.status == "active"
