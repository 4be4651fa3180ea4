"""STIX 2.1 export of one item: a valid bundle built with stix2, ISN's kept random ids, TLP 2.0 and the Admiralty
grading, a release marking that never names other released countries to a recipient, audited as an export, and the
REST API's 404 for anyone who may not read the item."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AuditEvent
from isn.errors import NotFound
from messaging.interop.export import item_export
from messaging.interop.stix import ADMIRALTY_CONFIDENCE, ITEM_EXTENSION_ID, RELEASE_EXTENSION_ID, TLP2_IDS
from messaging.items.changes import item_change, item_withdraw
from messaging.models import StixId
from tests.auth import sign_in
from tests.messaging.interop.stix_checks import valid_bundle

pytestmark = pytest.mark.django_db

ENTITIES = [
    {"type": "person", "name": "Nguyen Van Quokka", "aliases": ["Quokka"], "birth_date": "1980-03-12"},
    {"type": "phone", "number": "+84 90 123 4567", "country": "VN"},
    {"type": "vehicle", "plate": "70C-991.37", "country": "VN"},
    {"type": "vessel", "imo": "9074729", "country": "KH"},
    {"type": "email", "address": "quokka@example.org"},
    {"type": "identity_document", "doc_type": "passport", "country": "VN", "number": "C1234567"},
    {"type": "wallet", "chain": "TRON", "address": "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"},
    {"type": "seizure", "substance": "methamphetamine", "logo": "WY"},
    {"type": "precursor", "cas": "103-79-7"},
    {"type": "company", "name": "Mekong Trading Co", "registration_number": "KH-99", "country": "KH"},
    {"type": "location", "name": "Warehouse at Bavet", "country": "KH", "latitude": "11.06", "longitude": "106.13"},
    {"type": "bank_account", "number": "0123456789", "country": "KH"},
]


def _by_type(bundle: dict, stix_type: str) -> list[dict]:
    return [obj for obj in bundle["objects"] if obj["type"] == stix_type]


def test_recipient_exports_a_valid_report_with_entities_markings_and_grading(post, vn_officer, kh_officer, la_officer):
    content = post(vn_officer, entities=ENTITIES, countries=["VN", "KH", "LA"], handling_code="amber_strict")
    bundle = valid_bundle(item_export(actor=kh_officer, item_id=content.item.pk))

    [report] = _by_type(bundle, "report")
    assert report["name"] == content.title
    assert report["description"] == content.body
    assert report["lang"] == "en"
    assert report["confidence"] == ADMIRALTY_CONFIDENCE[2]
    assert report["extensions"][ITEM_EXTENSION_ID]["grading"] == "B2"
    assert "released_countries" not in report["extensions"][ITEM_EXTENSION_ID]
    identities = {obj["id"]: obj for obj in _by_type(bundle, "identity")}
    assert identities[report["created_by_ref"]]["name"] == content.item.originator_agency.name
    assert len(report["object_refs"]) == len(ENTITIES)
    types = {ref.split("--")[0] for ref in report["object_refs"]}
    assert {"identity", "location", "isn-phone-number", "isn-vessel", "isn-crypto-wallet", "isn-precursor"} <= types
    assert TLP2_IDS["amber_strict"] in report["object_marking_refs"]
    # The release marking shows Cambodia only itself and the originator: never Laos.
    [release] = [
        obj for obj in _by_type(bundle, "marking-definition") if RELEASE_EXTENSION_ID in obj.get("extensions", {})
    ]
    assert release["id"] in report["object_marking_refs"]
    assert release["extensions"][RELEASE_EXTENSION_ID]["permitted_countries"] == ["KH", "VN"]
    assert "LA" not in str(bundle)
    phone = next(obj for obj in bundle["objects"] if obj["type"] == "isn-phone-number")
    assert phone["number"] == "+84 90 123 4567"
    definitions = {obj["id"]: obj for obj in _by_type(bundle, "extension-definition")}
    assert all(ext in definitions for ext in phone["extensions"])
    assert definitions[next(iter(phone["extensions"]))]["extension_types"] == ["new-sdo"]
    # Audited as a read and as an export.
    actions = set(AuditEvent.objects.filter(target_id=str(content.item.pk)).values_list("action", flat=True))
    assert {"messaging.item.read", "messaging.item.export"} <= actions


def test_originator_sees_the_whole_release(post, vn_officer):
    content = post(vn_officer, countries=["VN", "KH", "LA"])
    bundle = valid_bundle(item_export(actor=vn_officer, item_id=content.item.pk))
    [report] = _by_type(bundle, "report")
    assert report["extensions"][ITEM_EXTENSION_ID]["released_countries"] == ["KH", "LA", "VN"]


def test_ids_are_random_kept_and_stable_across_versions(post, vn_officer, kh_officer):
    content = post(vn_officer, entities=ENTITIES[:2])
    first = valid_bundle(item_export(actor=kh_officer, item_id=content.item.pk))
    [report] = _by_type(first, "report")
    kept = set(StixId.objects.filter(item=content.item).values_list("stix_id", flat=True))
    assert {ref.split("--")[1] for ref in report["object_refs"]} <= {str(pk) for pk in kept}
    assert all(pk.version == 4 for pk in kept)

    item_change(actor=vn_officer, item_id=content.item.pk, body="Corrected: three lorries.", entities=ENTITIES[:2])
    second = valid_bundle(item_export(actor=kh_officer, item_id=content.item.pk))
    [again] = _by_type(second, "report")
    assert again["id"] == report["id"]
    assert again["object_refs"] == report["object_refs"]
    assert again["modified"] > report["modified"]
    assert again["created"] == report["created"]
    assert again["description"] == "Corrected: three lorries."


def test_a_third_country_cannot_export(post, vn_officer, th_officer):
    content = post(vn_officer)
    with pytest.raises(NotFound):
        item_export(actor=th_officer, item_id=content.item.pk)
    assert not AuditEvent.objects.filter(action="messaging.item.export").exists()


def test_originator_exports_a_withdrawn_item_as_revoked(post, vn_officer, kh_officer):
    content = post(vn_officer, entities=ENTITIES[:3])
    before = valid_bundle(item_export(actor=kh_officer, item_id=content.item.pk))
    item_withdraw(actor=vn_officer, item_id=content.item.pk)
    with pytest.raises(NotFound):
        item_export(actor=kh_officer, item_id=content.item.pk)
    after = valid_bundle(item_export(actor=vn_officer, item_id=content.item.pk))
    [report] = _by_type(after, "report")
    [held] = _by_type(before, "report")
    assert report["id"] == held["id"]
    assert report["revoked"] is True
    assert report["modified"] > held["modified"]
    assert content.title not in str(after)
    assert content.body not in str(after)
    assert "70C-991.37" not in str(after)
    revoked = {obj["id"] for obj in after["objects"] if obj.get("revoked")}
    assert set(held["object_refs"]) <= revoked


def test_portal_download_as_stix_for_readers_only(post, vn_officer, kh_officer, th_officer, client):
    content = post(vn_officer, entities=ENTITIES[:2])
    page = sign_in(client, kh_officer).get(f"/items/{content.item.pk}/")
    assert f"/items/{content.item.pk}/stix/".encode() in page.content
    answer = client.get(f"/items/{content.item.pk}/stix/")
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/stix+json;version=2.1"
    assert content.title not in answer["Content-Disposition"]
    [report] = _by_type(valid_bundle(answer.content.decode()), "report")
    assert report["name"] == content.title
    assert AuditEvent.objects.filter(action="messaging.item.export", actor_user=kh_officer).count() == 1

    outsider = sign_in(Client(), th_officer).get(f"/items/{content.item.pk}/stix/")
    assert outsider.status_code == 404
    assert content.title.encode() not in outsider.content
