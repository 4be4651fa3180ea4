"""TAXII collections through the export service: a narrowing reaches the narrowed-away reader as a revoked version,
an item forwarded later is added when the forward reaches its reader, pages of one object give exactly what one big
page gives, manifests list what objects serve (without opening anything), and filters by type and version."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from agencies.models import Agency
from audit.models import AuditEvent
from messaging.interop.export import INBOX, POSTED, Query, collection_page, version_of
from messaging.items.changes import item_change
from messaging.sharing.forwards import item_forward
from tests.messaging.interop.stix_checks import objects_bundle, valid_bundle

pytestmark = pytest.mark.django_db

ENTITIES = [
    {"type": "phone", "number": "+84 90 123 4567", "country": "VN"},
    {"type": "vehicle", "plate": "70C-991.37", "country": "VN"},
]


def _ids(objects) -> list[tuple[str, str]]:
    return [(obj["id"], version_of(obj)) for obj in objects]


def _walk(actor, collection: str, limit: int, query: Query | None = None) -> list:
    objects, next_ = [], None
    while True:
        page = collection_page(actor=actor, collection=collection, query=query or Query(), limit=limit, next_=next_)
        assert len(page.objects) <= limit
        objects += page.objects
        if not page.more:
            return objects
        next_ = page.next


def test_narrowed_away_reader_gets_a_revoked_version(post, vn_officer, kh_officer, la_officer):
    content = post(vn_officer, entities=ENTITIES, countries=["VN", "KH", "LA"])
    held = [obj for obj in _walk(kh_officer, INBOX, 100) if obj["type"] == "report"]
    item_change(actor=vn_officer, item_id=content.item.pk, countries=["VN", "LA"])

    after = _walk(kh_officer, INBOX, 100)
    valid_bundle(objects_bundle([json.loads(obj.serialize()) for obj in after]))
    [report] = [obj for obj in after if obj["type"] == "report"]
    assert report["id"] == held[0]["id"]
    assert report["revoked"] is True
    assert report["modified"] > held[0]["modified"]
    assert content.title not in str(after)
    assert "70C-991.37" not in str(after)
    # Laos still reads it, unrevoked; the originator's posted collection holds it as it is.
    [kept] = [obj for obj in _walk(la_officer, INBOX, 100) if obj["type"] == "report"]
    assert kept["name"] == content.title
    assert "revoked" not in kept or kept["revoked"] is False
    [own] = [obj for obj in _walk(vn_officer, POSTED, 100) if obj["type"] == "report"]
    assert own["name"] == content.title


def test_pages_of_one_object_give_what_one_page_gives(post, vn_officer, kh_officer):
    for number in range(3):
        post(vn_officer, title=f"Item {number}", entities=ENTITIES)
    whole = _walk(kh_officer, INBOX, 1000)
    # Every page of one re-serves the shared objects a page needs; every item object comes exactly once, in order.
    singles = [
        (obj["id"], version_of(obj))
        for obj in _walk(kh_officer, INBOX, 1)
        if obj["type"] in ("report", "isn-phone-number", "isn-vehicle")
    ]
    assert singles == [
        (obj["id"], version_of(obj)) for obj in whole if obj["type"] in ("report", "isn-phone-number", "isn-vehicle")
    ]


def test_manifest_lists_what_objects_serve_and_opens_nothing(post, vn_officer, kh_officer):
    post(vn_officer, entities=ENTITIES)
    reads_before = AuditEvent.objects.filter(action="messaging.item.read").count()
    manifest = collection_page(actor=kh_officer, collection=INBOX, query=Query(), limit=1000, manifest=True)
    assert AuditEvent.objects.filter(action="messaging.item.read").count() == reads_before
    assert AuditEvent.objects.filter(action="messaging.item.list", details__via="taxii.manifest").exists()
    objects = collection_page(actor=kh_officer, collection=INBOX, query=Query(), limit=1000)
    assert _ids(manifest.objects) == _ids(objects.objects)


def test_filters_by_type_and_version(post, vn_officer, kh_officer):
    post(vn_officer, entities=ENTITIES)
    reports = _walk(kh_officer, INBOX, 100, Query(types=frozenset({"report"})))
    assert [obj["type"] for obj in reports] == ["report"]
    version = version_of(reports[0])
    assert _walk(kh_officer, INBOX, 100, Query(types=frozenset({"report"}), versions=frozenset({version}))) == reports
    assert _walk(kh_officer, INBOX, 100, Query(types=frozenset({"report"}), versions=frozenset({"2001-01-01"}))) == []


def test_an_item_forwarded_later_is_added_when_the_forward_reaches_the_reader(
    post, vn_officer, kh_officer, kh_agency, kh_police_officer
):
    content = post(vn_officer, countries=["VN", "KH"], agencies=[kh_agency.pk])
    assert _walk(kh_police_officer, INBOX, 100) == []
    polled = timezone.now()
    customs = Agency.objects.get(short_name="GDCE")
    item_forward(actor=kh_officer, item_id=content.item.pk, to_agency=customs.pk, reason="Customs checks at Bavet.")
    fresh = _walk(kh_police_officer, INBOX, 100, Query(added_after=polled, types=frozenset({"report"})))
    assert [obj["name"] for obj in fresh] == [content.title]
