"""The TAXII 2.1 server, read by the OASIS ``taxii2-client`` against the live test server as an agency's platform
would: discovery, the API root, per-caller collections, paging through more than a thousand objects with
``added_after`` and ``next``, a withdrawal arriving as a revoked version, manifests and versions; a third country
sees nothing; every page validates as STIX 2.1; nothing of the content reaches the logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
from django.utils import timezone
from taxii2client.v21 import ApiRoot, Collection, Server, as_pages

from agencies.api_keys import api_key_issue
from agencies.keyring import forget_cached_keys
from agencies.models import ApiKeyScope, Role
from audit.models import AuditEvent
from messaging.interop.taxii import COLLECTION_IDS, TAXII_MEDIA_TYPE
from messaging.items.changes import item_withdraw
from tests.factories import MembershipFactory, UserFactory
from tests.messaging.interop.stix_checks import objects_bundle, valid_bundle
from tests.messaging.network import build_network, post_item

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

CANARY_TITLE = "TAXII-CANARY-TITLE-3b9f"
CANARY_BODY = "TAXII-CANARY-BODY-77c1"
CANARY_PHONE = "+84 90 777 3141"
ENTITIES = [
    {"type": "person", "name": "TAXII canary person Vo"},
    {"type": "phone", "number": CANARY_PHONE, "country": "VN"},
    {"type": "vehicle", "plate": "70C-314.15", "country": "VN"},
    {"type": "location", "name": "Bavet market", "country": "KH"},
]


@pytest.fixture(autouse=True)
def _no_cached_keys() -> Iterator[None]:
    forget_cached_keys()
    yield
    forget_cached_keys()


def _key(admin: Any, agency: Any) -> tuple[str, str]:
    """An API key's (id, secret), for HTTP Basic."""
    issued = api_key_issue(
        actor=admin,
        agency=agency,
        name=f"{agency.short_name} TAXII client",
        scopes=[ApiKeyScope.READ],
        expires_at=timezone.now() + timedelta(days=30),
    )
    _isn, prefix, secret = issued.plaintext.split("_", 2)
    return f"isn_{prefix}", secret


@pytest.fixture
def world(live_server):
    net = build_network()
    vn_admin = MembershipFactory(user=UserFactory(username="vn.admin"), agency=net.vn, role=Role.AGENCY_ADMIN).user
    th_admin = MembershipFactory(user=UserFactory(username="th.admin"), agency=net.th, role=Role.AGENCY_ADMIN).user
    keys = {"vn": _key(vn_admin, net.vn), "kh": _key(net.user("kh.admin"), net.kh), "th": _key(th_admin, net.th)}
    return net, keys, f"{live_server.url}/taxii2/"


def _collection(base: str, key: tuple[str, str], name: str = "inbox") -> Collection:
    user, password = key
    return Collection(f"{base}api/collections/{COLLECTION_IDS[name]}/", user=user, password=password)


def _all_objects(collection: Collection, **filters: Any) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for envelope in as_pages(collection.get_objects, per_request=100, **filters):
        page = envelope.get("objects", [])
        # Within a page an object version appears once; each page is a valid STIX 2.1 bundle.
        assert len({(obj["id"], obj.get("modified", obj.get("created"))) for obj in page}) == len(page)
        if page:
            valid_bundle(objects_bundle(page))
        objects += page
    return objects


def test_discovery_root_and_collections(world):
    _net, keys, base = world
    user, password = keys["kh"]
    server = Server(base, user=user, password=password)
    assert server.title == "ISN TAXII 2.1"
    [root] = server.api_roots
    assert root.url == server.default.url
    assert TAXII_MEDIA_TYPE in root.versions
    assert {collection.title for collection in root.collections} == {"inbox", "posted"}
    assert all(collection.can_read and not collection.can_write for collection in root.collections)

    # The same key as Authorization: Api-Key works too; no credentials at all do not.
    answer = requests.get(
        f"{base}api/",
        headers={"Authorization": f"Api-Key {user}_{password}", "Accept": TAXII_MEDIA_TYPE},
        timeout=10,
    )
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == TAXII_MEDIA_TYPE
    anonymous = requests.get(f"{base}api/", headers={"Accept": TAXII_MEDIA_TYPE}, timeout=10)
    assert anonymous.status_code in (401, 403)
    with pytest.raises(requests.HTTPError):
        ApiRoot(f"{base}api/", user=user, password="wrong").refresh()


def test_paging_added_after_and_a_withdrawal_arriving_revoked(world, caplog):
    caplog.set_level(logging.DEBUG)
    net, keys, base = world
    officer = net.user("vn.officer")
    items = [
        post_item(
            officer, title=f"{CANARY_TITLE} {number}", body=CANARY_BODY, entities=ENTITIES, countries=["VN", "KH"]
        )
        for number in range(210)
    ]
    inbox = _collection(base, keys["kh"])

    objects = _all_objects(inbox)
    reports = [obj for obj in objects if obj["type"] == "report"]
    assert len(objects) >= 1000
    assert sorted(report["name"] for report in reports) == sorted(f"{CANARY_TITLE} {n}" for n in range(210))
    assert len({report["id"] for report in reports}) == 210
    assert sum(1 for obj in objects if obj["type"] == "isn-phone-number") == 210
    # Every served report was read through the REST API's audited read, by Cambodia's key.
    reads = AuditEvent.objects.filter(action="messaging.item.read", target_id__in=[str(i.pk) for i in items])
    assert reads.values("target_id").distinct().count() == 210

    # The last date added, from the headers, is where the next poll starts: nothing new yet.
    user, password = keys["kh"]
    answer = requests.get(
        f"{base}api/collections/{COLLECTION_IDS['inbox']}/objects/",
        params={"limit": 5},
        headers={"Accept": TAXII_MEDIA_TYPE},
        auth=(user, password),
        timeout=30,
    )
    assert answer.headers["Content-Type"] == TAXII_MEDIA_TYPE
    assert answer.json()["more"] is True
    assert "X-TAXII-Date-Added-First" in answer.headers
    last = max(report_added for report_added in _manifest_dates(inbox))
    assert _all_objects(inbox, added_after=last) == []

    # Viet Nam withdraws one item: Cambodia's next poll brings the same report id, revoked, without content.
    held = next(report for report in reports if report["name"] == f"{CANARY_TITLE} 7")
    item_withdraw(actor=officer, item_id=items[7].pk)
    fresh = _all_objects(inbox, added_after=last)
    revoked = [obj for obj in fresh if obj["type"] == "report"]
    assert [report["id"] for report in revoked] == [held["id"]]
    assert revoked[0]["revoked"] is True
    assert revoked[0]["modified"] > held["modified"]
    assert CANARY_TITLE not in str(fresh)
    assert CANARY_PHONE not in str(fresh)
    assert set(held["object_refs"]) <= {obj["id"] for obj in fresh if obj.get("revoked")}
    # By id: the revoked version, and its versions.
    assert inbox.get_object(held["id"])["objects"][0]["revoked"] is True
    assert inbox.object_versions(held["id"])["versions"] == [revoked[0]["modified"]]

    # The originator's posted collection holds all 210, the withdrawn one revoked.
    posted = _all_objects(_collection(base, keys["vn"], "posted"), type="report")  # sent as match[type]
    assert len(posted) == 210
    assert [report["id"] for report in posted if report.get("revoked")] == [held["id"]]

    # No content in the logs of all that traffic.
    for canary in (CANARY_TITLE, CANARY_BODY, CANARY_PHONE):
        assert canary not in caplog.text


def _manifest_dates(collection: Collection) -> list[str]:
    dates: list[str] = []
    for envelope in as_pages(collection.get_manifest, per_request=500):
        dates += [entry["date_added"] for entry in envelope.get("objects", [])]
    return dates


def test_a_third_country_sees_nothing(world):
    net, keys, base = world
    item = post_item(net.user("vn.officer"), title=CANARY_TITLE, entities=ENTITIES, countries=["VN", "KH"])
    kh_inbox = _collection(base, keys["kh"])
    [report] = [obj for obj in _all_objects(kh_inbox) if obj["type"] == "report"]
    assert "TH" not in str(report.get("object_marking_refs"))

    th_inbox = _collection(base, keys["th"])
    assert _all_objects(th_inbox) == []
    assert th_inbox.get_manifest().get("objects", []) == []
    assert _all_objects(_collection(base, keys["th"], "posted")) == []
    for path in (f"objects/{report['id']}/", f"objects/{report['id']}/versions/"):
        answer = requests.get(
            f"{base}api/collections/{COLLECTION_IDS['inbox']}/{path}",
            headers={"Accept": TAXII_MEDIA_TYPE},
            auth=keys["th"],
            timeout=10,
        )
        rest = requests.get(
            f"{base.removesuffix('/taxii2/')}/api/v1/items/{item.pk}/",
            headers={"Authorization": f"Api-Key {keys['th'][0]}_{keys['th'][1]}"},
            timeout=10,
        )
        assert answer.status_code == rest.status_code == 404
        assert answer.json()["detail"] == rest.json()["detail"]


def test_media_types(world):
    _net, keys, base = world
    url = f"{base}api/collections/"
    for accept in (TAXII_MEDIA_TYPE, "application/taxii+json", "*/*", None):
        headers = {"Accept": accept} if accept else {}
        answer = requests.get(url, headers=headers, auth=keys["kh"], timeout=10)
        assert answer.status_code == 200, accept
        assert answer.headers["Content-Type"] == TAXII_MEDIA_TYPE
    assert requests.get(url, headers={"Accept": "text/html"}, auth=keys["kh"], timeout=10).status_code == 406
