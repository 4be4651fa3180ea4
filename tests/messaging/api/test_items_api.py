"""The items API: inbox, filters, detail, change, withdraw, and the audit event each of them writes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from messaging.items.lifecycle import item_read
from messaging.models import Item, ItemCountryGrant, ItemKey, ItemRead
from tests.messaging.conftest import api_payload

pytestmark = pytest.mark.django_db


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def test_inbox_lists_metadata_and_title_newest_first_without_body(api, post, vn_officer, kh_officer):
    older = post(vn_officer, title="Older").item
    newer = post(vn_officer, title="Newer", priority="flash").item
    api.force_authenticate(kh_officer)
    results = api.get("/api/v1/items/").json()["results"]
    assert [row["id"] for row in results] == [str(newer.pk), str(older.pk)]
    assert results[0]["title"] == "Newer"
    assert results[0]["originator_agency"] == {"id": newer.originator_agency_id, "short_name": "BGC", "country": "VN"}
    assert results[0]["read"] is False
    assert "body" not in results[0]
    assert "release" not in results[0]


def test_inbox_is_recorded_as_one_event_naming_every_item_returned(api, post, vn_officer, kh_officer):
    items = [post(vn_officer).item for _ in range(3)]
    api.force_authenticate(kh_officer)
    api.get("/api/v1/items/?page_size=2")
    (event,) = _events("messaging.item.list")
    assert event.actor_label == "kh.officer"
    assert event.details == {"item_ids": [str(items[2].pk), str(items[1].pk)], "count": 2}


def test_cursor_pagination_walks_every_item_once(api, post, vn_officer, kh_officer):
    ids = {str(post(vn_officer).item.pk) for _ in range(5)}
    api.force_authenticate(kh_officer)
    seen: list[str] = []
    url = "/api/v1/items/?page_size=2"
    while url:
        body = api.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url = body["next"]
    assert sorted(seen) == sorted(ids)
    assert len(_events("messaging.item.list")) == 3


def test_filters(api, post, vn_officer, kh_officer, th_officer):
    flash = post(vn_officer, priority="flash", category="wildlife").item
    post(vn_officer, priority="routine", category="timber")
    from_kh = post(kh_officer, countries=["KH", "VN"]).item
    api.force_authenticate(vn_officer)

    def ids(query: str) -> list[str]:
        return [row["id"] for row in api.get(f"/api/v1/items/{query}").json()["results"]]

    assert ids("?priority=flash") == [str(flash.pk)]
    assert ids("?category=wildlife") == [str(flash.pk)]
    assert ids("?originator_country=KH") == [str(from_kh.pk)]
    assert len(ids("?originator_country=VN")) == 2
    today = timezone.now().date()
    assert len(ids(f"?created_after={today}&created_before={today}")) == 3
    assert ids(f"?created_after={today + timedelta(days=1)}") == []

    assert ids("?unread=true") == [str(from_kh.pk)]  # one's own posts are never unread
    api.get(f"/api/v1/items/{from_kh.pk}/")
    assert ids("?unread=true") == []
    assert str(from_kh.pk) in ids("?unread=false")


def test_lists_filter_on_full_timestamps_of_creation_and_change(api, post, vn_officer):
    first = post(vn_officer).item
    second = post(vn_officer).item
    Item.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(hours=2))
    Item.objects.filter(pk=second.pk).update(updated_at=timezone.now() - timedelta(hours=3))
    api.force_authenticate(vn_officer)

    def ids(**query: str) -> set[str]:
        response = api.get("/api/v1/items/", query)
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    an_hour_ago = (timezone.now() - timedelta(hours=1)).isoformat()
    assert ids(created_after=an_hour_ago) == {str(second.pk)}
    assert ids(created_before=an_hour_ago) == {str(first.pk)}
    assert ids(updated_after=an_hour_ago) == {str(first.pk)}
    assert ids(updated_before=an_hour_ago) == {str(second.pk)}
    bad = api.get("/api/v1/items/", {"updated_after": "yesterday"})
    assert bad.status_code == 400
    assert "updated_after" in bad.json()["errors"]["fields"]
    # Any offset Python reads is taken (PostgreSQL's own stop at 15:59); a moment with no UTC date is bad input.
    assert ids(updated_after="0147-08-12T06:14:43-18:58") == {str(first.pk), str(second.pk)}
    too_early = api.get("/api/v1/items/", {"created_before": "0001-01-01T00:00:00+05:00"})
    assert too_early.status_code == 400
    assert "created_before" in too_early.json()["errors"]["fields"]


def test_bad_filter_is_a_clear_400(api, vn_officer):
    api.force_authenticate(vn_officer)
    response = api.get("/api/v1/items/?priority=urgent")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "priority" in response.json()["errors"]["fields"]


def test_inbox_query_count_does_not_grow_with_page_size(
    api, post, vn_officer, kh_officer, django_assert_max_num_queries
):
    for _ in range(12):
        post(vn_officer)
    api.force_authenticate(kh_officer)
    api.get("/api/v1/items/?page_size=1")  # warm the process's key cache, as a running server would have it
    with django_assert_max_num_queries(8) as small:
        assert len(api.get("/api/v1/items/?page_size=2").json()["results"]) == 2
    with django_assert_max_num_queries(8) as large:
        assert len(api.get("/api/v1/items/?page_size=12").json()["results"]) == 12
    assert len(large.captured_queries) == len(small.captured_queries)


def test_detail_opens_body_and_is_recorded(api, post, vn_officer, kh_officer):
    item = post(vn_officer).item
    api.force_authenticate(kh_officer)
    body = api.get(f"/api/v1/items/{item.pk}/").json()
    assert body["body"].startswith("Two lorries")
    assert body["attachments"] == []
    (event,) = _events("messaging.item.read")
    assert (event.actor_label, event.target_id, event.target_country, event.details) == (
        "kh.officer",
        str(item.pk),
        "VN",
        {"content_version": 1},
    )
    assert ItemRead.objects.filter(item=item, user=kh_officer).count() == 1
    api.get(f"/api/v1/items/{item.pk}/")
    assert ItemRead.objects.filter(item=item, user=kh_officer).count() == 1
    assert len(_events("messaging.item.read")) == 2


def test_an_unchanged_item_answers_304_and_is_still_recorded_as_a_read(api, post, vn_officer, kh_officer):
    item = post(vn_officer).item
    api.force_authenticate(kh_officer)
    first = api.get(f"/api/v1/items/{item.pk}/")
    etag = first["ETag"]
    assert etag[0] == etag[-1] == '"'
    again = api.get(f"/api/v1/items/{item.pk}/", HTTP_IF_NONE_MATCH=etag)
    assert (again.status_code, again.content, again["ETag"]) == (304, b"", etag)
    assert api.get(f"/api/v1/items/{item.pk}/", HTTP_IF_NONE_MATCH='"other", ' + etag).status_code == 304
    assert len(_events("messaging.item.read")) == 3
    # A correction changes what the reader is shown, and so the tag.
    api.force_authenticate(vn_officer)
    api.patch(f"/api/v1/items/{item.pk}/", {"body": "Three lorries, not two."}, format="json")
    api.force_authenticate(kh_officer)
    changed = api.get(f"/api/v1/items/{item.pk}/", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed.json()["body"] == "Three lorries, not two."
    assert changed["ETag"] != etag


def test_service_read_and_api_agree(post, vn_officer, kh_officer):
    content = post(vn_officer, title="ត្រួតពិនិត្យ", language="km")
    opened = item_read(actor=kh_officer, item_id=content.item.pk)
    assert (opened.title, opened.body) == ("ត្រួតពិនិត្យ", content.body)


# --- change ----------------------------------------------------------------------------------------------------------


def test_originator_extends_the_review_date(api, post, vn_officer):
    item = post(vn_officer).item
    new_date = item.review_date + timedelta(days=30)
    api.force_authenticate(vn_officer)
    response = api.patch(f"/api/v1/items/{item.pk}/", {"review_date": new_date.isoformat()}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["review_date"] == new_date.isoformat()
    (event,) = _events("messaging.item.change")
    assert event.details == {"changed": ["review_date"], "content_version": 1, "review_date": new_date.isoformat()}


def test_correction_is_a_new_content_version_readable_by_recipients(api, post, vn_officer, kh_officer):
    item = post(vn_officer).item
    api.force_authenticate(vn_officer)
    response = api.patch(f"/api/v1/items/{item.pk}/", {"body": "Three lorries, not two."}, format="json")
    assert response.json()["content_version"] == 2
    opened = item_read(actor=kh_officer, item_id=item.pk)
    assert (opened.title, opened.body, opened.item.content_version) == (
        "Meth pills shipment expected at Moc Bai",
        "Three lorries, not two.",
        2,
    )
    assert _events("messaging.item.change")[0].details["changed"] == ["text"]


def test_narrowing_is_recorded_and_widening_is_refused(api, post, vn_officer, kh_officer, th_officer):
    item = post(vn_officer, countries=["VN", "KH", "TH"]).item
    api.force_authenticate(vn_officer)
    response = api.patch(f"/api/v1/items/{item.pk}/", {"countries": ["VN", "KH"]}, format="json")
    assert response.status_code == 200
    (event,) = _events("messaging.item.release_narrow")
    assert event.details["removed_countries"] == ["TH"]
    widen = api.patch(f"/api/v1/items/{item.pk}/", {"countries": ["VN", "KH", "TH"]}, format="json")
    assert widen.status_code == 400
    assert "consent" in widen.json()["detail"]
    assert sorted(ItemCountryGrant.objects.filter(item=item).values_list("country_id", flat=True)) == ["KH", "VN"]
    drop_own = api.patch(f"/api/v1/items/{item.pk}/", {"countries": ["KH"]}, format="json")
    assert drop_own.status_code == 400
    assert len(_events("messaging.item.release_narrow")) == 1


def test_narrowing_an_agency_restriction_and_a_named_person(post, vn_officer, kh_agency, kh_officer, api):
    from messaging.selectors.items import items_visible_to

    item = post(vn_officer, named_users=["kh.officer"]).item
    api.force_authenticate(vn_officer)
    response = api.patch(f"/api/v1/items/{item.pk}/", {"agencies": [kh_agency.pk], "named_users": []}, format="json")
    assert response.status_code == 200, response.json()
    event = _events("messaging.item.release_narrow")[0]
    assert event.details["restricted_to_agencies"] == [kh_agency.pk]
    assert event.details["removed_named_users"] == [kh_officer.pk]
    assert items_visible_to(kh_officer).filter(pk=item.pk).exists()  # their agency is the one allowed
    widen = api.patch(f"/api/v1/items/{item.pk}/", {"agencies": []}, format="json")
    assert widen.status_code == 400
    rename = api.patch(f"/api/v1/items/{item.pk}/", {"named_users": ["kh.officer"]}, format="json")
    assert rename.status_code == 400


def test_change_by_a_recipient_is_forbidden_and_by_a_stranger_not_found(api, post, vn_officer, kh_officer, th_officer):
    item = post(vn_officer).item
    api.force_authenticate(kh_officer)
    forbidden = api.patch(f"/api/v1/items/{item.pk}/", {"title": "Mine now"}, format="json")
    assert forbidden.status_code == 403
    assert forbidden.json()["code"] == "permission_denied"
    assert api.post(f"/api/v1/items/{item.pk}/withdraw/").status_code == 403
    api.force_authenticate(th_officer)
    assert api.patch(f"/api/v1/items/{item.pk}/", {"title": "Mine now"}, format="json").status_code == 404
    item.refresh_from_db()
    assert (item.content_version, item.status) == (1, "active")
    assert not _events("messaging.item.change")


def test_another_agency_of_the_originators_country_cannot_change_it(api, post, vn_officer, vn_police_officer):
    item = post(vn_officer).item
    api.force_authenticate(vn_police_officer)
    assert api.patch(f"/api/v1/items/{item.pk}/", {"title": "x"}, format="json").status_code == 403


def test_bad_change_changes_nothing(api, post, vn_officer):
    item = post(vn_officer).item
    api.force_authenticate(vn_officer)
    for payload in ({}, {"title": "x" * 301}, {"review_date": "1999-01-01"}, {"countries": ["VN", "US"]}):
        response = api.patch(f"/api/v1/items/{item.pk}/", payload, format="json")
        assert response.status_code == 400, payload
        assert response.json()["code"] == "invalid"
    refreshed = Item.objects.get(pk=item.pk)
    assert (refreshed.content_version, refreshed.review_date) == (1, item.review_date)
    assert not _events("messaging.item.change")


def test_put_is_not_offered(api, post, vn_officer):
    item = post(vn_officer).item
    api.force_authenticate(vn_officer)
    assert api.put(f"/api/v1/items/{item.pk}/", api_payload(), format="json").status_code == 405


# --- withdraw -------------------------------------------------------------------------------------------------------


def test_withdraw_cuts_recipients_off_at_once_and_is_recorded(api, post, vn_officer, kh_officer):
    item = post(vn_officer, countries=["VN", "KH", "TH"]).item
    api.force_authenticate(kh_officer)
    assert api.get(f"/api/v1/items/{item.pk}/").status_code == 200
    api.force_authenticate(vn_officer)
    response = api.post(f"/api/v1/items/{item.pk}/withdraw/")
    assert response.json()["status"] == "withdrawn"
    assert list(ItemKey.objects.filter(item=item).values_list("country_id", flat=True)) == ["VN"]
    (event,) = _events("messaging.item.withdraw")
    assert event.details == {"shredded_countries": ["KH", "TH"]}
    assert api.get(f"/api/v1/items/{item.pk}/").json()["title"]  # the originator still reads it
    assert api.post(f"/api/v1/items/{item.pk}/withdraw/").status_code == 409
    api.force_authenticate(kh_officer)
    assert api.get(f"/api/v1/items/{item.pk}/").status_code == 404
    assert api.get("/api/v1/items/").json()["results"] == []


# --- access log -----------------------------------------------------------------------------------------------------


def test_originator_sees_who_read_their_item(api, post, vn_officer, kh_officer, kh_police_officer):
    item = post(vn_officer).item
    other = post(vn_officer).item
    api.force_authenticate(kh_officer)
    api.get(f"/api/v1/items/{item.pk}/")
    api.get(f"/api/v1/items/{other.pk}/")
    api.force_authenticate(vn_officer)
    rows = api.get(f"/api/v1/items/{item.pk}/access/").json()["results"]
    assert [(row["action"], row["actor"], row["agency"], row["country"]) for row in rows] == [
        ("messaging.item.read", "kh.officer", "ADD", "KH")
    ]
    viewed = AuditEvent.objects.get(action="messaging.item.access_view")
    assert (viewed.actor_label, viewed.target_id, viewed.target_country) == ("vn.officer", str(item.pk), "VN")
    api.force_authenticate(kh_officer)
    assert api.get(f"/api/v1/items/{item.pk}/access/").status_code == 403
    assert AuditEvent.objects.filter(action="messaging.item.access_view").count() == 1


def test_counting_items_is_recorded_with_its_filters(api, post, vn_officer, kh_officer):
    post(vn_officer)
    api.force_authenticate(kh_officer)
    assert api.get("/api/v1/items/count/?originator_country=VN").json() == {"count": 1}
    event = AuditEvent.objects.get(action="messaging.item.count")
    assert (event.actor_label, event.details) == ("kh.officer", {"filters": {"originator_country": "VN"}, "count": 1})


def test_schema_describes_the_items_api(api, vn_officer):
    api.force_authenticate(vn_officer)
    response = api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/items/",
        "/api/v1/items/{id}/",
        "/api/v1/items/{id}/withdraw/",
        "/api/v1/items/{id}/attachments/",
        "/api/v1/items/{id}/attachments/{attachment_id}/",
        "/api/v1/items/{id}/access/",
        "/api/v1/items/count/",
    ):
        assert path in paths, path
