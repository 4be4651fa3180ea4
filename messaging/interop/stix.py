"""STIX 2.1 objects for an item, built with the OASIS ``stix2`` library: pure functions of what a reader was shown.

An item is a ``report`` created by the ``identity`` of its originating agency; its entities are STIX objects it
refers to (``identity`` for persons and companies, ``location``, and ISN's own object types, each defined by an
``extension-definition`` with a JSON schema, for the rest). Markings: the official TLP 2.0 marking definitions, and
the release as a marking of ISN's own that shows a reader only what the originator lets them see (their own country
and the originator's; the whole list to the originating agency alone). The Admiralty grading is the ``confidence``
of the STIX 2.1 confidence appendix (Admiralty credibility) and, exactly, an ISN property extension.

A revoked version (withdrawn, expired, narrowed away) keeps only what STIX requires of each object (a neutral name,
the originating identity, its first ``created``) and none of the item's content.

Ids are never made here: they are ISN's kept random ids (``messaging.interop.ids``), handed in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import stix2
from stix2.properties import FloatProperty, IntegerProperty, ListProperty, StringProperty
from stix2.v21 import CustomExtension, CustomObject

MEDIA_TYPE = "application/stix+json;version=2.1"

# ISN itself, as the creator of its extension definitions: a random id, minted once and fixed here.
ISN_IDENTITY_ID = "identity--5b011f16-4466-4be8-aa10-f813c94ce81b"
ISN_IDENTITY_CREATED = "2026-12-01T00:00:00.000Z"

# The official TLP 2.0 marking definitions (OASIS cti-stix-common-objects), and their extension.
TLP2_EXTENSION_ID = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP2_CREATED = "2022-10-01T00:00:00.000Z"
TLP2_IDS = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber_strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
_TLP2_NAMES = {"clear": "clear", "green": "green", "amber": "amber", "amber_strict": "amber+strict", "red": "red"}

# STIX 2.1, Appendix A (confidence scales), Admiralty credibility: 1 -> 90 ... 5 -> 10 ("cannot be judged" would be
# no confidence at all; ISN's scale has no such value).
ADMIRALTY_CONFIDENCE = {1: 90, 2: 70, 3: 50, 4: 30, 5: 10}

# Where a location says nothing else (and in every revoked location, which must still name a place): the region of
# every ISN member, which tells a holder nothing they did not know.
NEUTRAL_REGION = "south-eastern-asia"
REVOKED_NAME = "Revoked ISN item"
REVOKED_ENTITY_NAME = "Revoked"

ISN_VERSION = "1.0"


def _extension_id(suffix: str) -> str:
    return f"extension-definition--{suffix}"


# ISN's property extensions: the item's own metadata on its report, an entity's remaining fields on identities and
# locations, and the release on its marking definition.
ITEM_EXTENSION_ID = _extension_id("401a831d-bd1f-4005-a356-aa90050cc91c")
ENTITY_EXTENSION_ID = _extension_id("88b808ca-88f4-499f-adf4-1e41d4502ab6")
RELEASE_EXTENSION_ID = _extension_id("461105ec-2332-4244-9fb6-8f8c29170c3c")


@dataclass(frozen=True)
class ObjectType:
    """One of ISN's new STIX object types (a new-sdo extension): its type name, extension id and fields."""

    stix_type: str
    extension_id: str
    fields: tuple[str, ...]
    title: str


# Entities that STIX has no object for. New SDOs, not SCOs: an SCO has no versions, so could never be revoked.
OBJECT_TYPES: dict[str, ObjectType] = {
    "phone": ObjectType(
        "isn-phone-number", _extension_id("cb1110b4-5872-403f-982f-83221de27d4f"), ("number", "country"), "Phone number"
    ),
    "email": ObjectType(
        "isn-email-address", _extension_id("4567a5bd-e67d-484c-8278-17682e40b858"), ("address",), "E-mail address"
    ),
    "vehicle": ObjectType(
        "isn-vehicle", _extension_id("281ade4c-75ab-4d83-8132-3d495002b040"), ("plate", "country"), "Vehicle"
    ),
    "vessel": ObjectType(
        "isn-vessel",
        _extension_id("89127494-3e6f-4d87-a97e-f2bd159fa32d"),
        ("imo", "registration", "country"),
        "Vessel",
    ),
    "identity_document": ObjectType(
        "isn-identity-document",
        _extension_id("36b9f0dd-9a53-434e-be61-275693e4f7e0"),
        ("doc_type", "country", "number"),
        "Identity document",
    ),
    "bank_account": ObjectType(
        "isn-bank-account", _extension_id("995c7d7d-4293-44cf-9cf0-5b24550266e8"), ("number", "country"), "Bank account"
    ),
    "wallet": ObjectType(
        "isn-crypto-wallet",
        _extension_id("86c92205-779b-488c-89bd-b4e97ce729ae"),
        ("chain", "address"),
        "Crypto wallet",
    ),
    "seizure": ObjectType(
        "isn-seizure",
        _extension_id("49be1c83-4a88-4dc8-b5aa-2888b60a403f"),
        ("substance", "logo", "lab_profile"),
        "Seizure",
    ),
    "precursor": ObjectType(
        "isn-precursor", _extension_id("3630414c-76fa-4195-9ad2-1252dcf80dd0"), ("cas",), "Precursor chemical"
    ),
}
STIX_TYPES = {"person": "identity", "company": "identity", "location": "location"} | {
    entity_type: object_type.stix_type for entity_type, object_type in OBJECT_TYPES.items()
}

# --- the types and extensions, registered with the stix2 library once ------------------------------------------------

CUSTOM_CLASSES: dict[str, Any] = {}
for _entity_type, _object_type in OBJECT_TYPES.items():

    def _register(object_type: ObjectType) -> Any:
        properties = [("name", StringProperty())] + [(name, StringProperty()) for name in object_type.fields]

        @CustomObject(object_type.stix_type, properties, extension_name=object_type.extension_id)
        class _Entity:
            pass

        return _Entity

    CUSTOM_CLASSES[_entity_type] = _register(_object_type)


@CustomExtension(
    ITEM_EXTENSION_ID,
    [
        ("source_reliability", StringProperty(required=True)),
        ("info_credibility", IntegerProperty(required=True)),
        ("grading", StringProperty(required=True)),
        ("category", StringProperty()),
        ("priority", StringProperty()),
        ("handling_code", StringProperty()),
        ("border_crossing", StringProperty()),
        ("review_date", StringProperty()),
        ("content_version", IntegerProperty()),
        ("status", StringProperty()),
        ("released_countries", ListProperty(StringProperty)),
    ],
)
class _ItemExtension:
    extension_type = "property-extension"


@CustomExtension(
    ENTITY_EXTENSION_ID,
    [
        ("entity_type", StringProperty(required=True)),
        ("aliases", ListProperty(StringProperty)),
        ("birth_date", StringProperty()),
        ("registration_number", StringProperty()),
        ("country", StringProperty()),
        ("address", StringProperty()),
        ("latitude", FloatProperty()),
        ("longitude", FloatProperty()),
    ],
)
class _EntityExtension:
    extension_type = "property-extension"


@CustomExtension(
    RELEASE_EXTENSION_ID,
    [
        ("originator_country", StringProperty(required=True)),
        ("permitted_countries", ListProperty(StringProperty, required=True)),
        ("further_sharing", StringProperty(required=True)),
    ],
)
class _ReleaseExtension:
    extension_type = "property-extension"


# --- definitions: ISN's identity, the extension definitions, the TLP markings -----------------------------------------


def _schema(title: str, properties: dict[str, Any], *, required: Sequence[str] = ()) -> str:
    """A JSON schema (draft 2020-12) as text: the extension definition's normative ``schema``."""
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        "type": "object",
        "properties": properties,
        "required": list(required),
    }
    return json.dumps(schema, sort_keys=True)


_TEXT = {"type": "string"}


def isn_identity() -> stix2.v21.Identity:
    return stix2.v21.Identity(
        id=ISN_IDENTITY_ID,
        created=ISN_IDENTITY_CREATED,
        modified=ISN_IDENTITY_CREATED,
        name="Mekong Information Sharing Network (ISN)",
        identity_class="system",
        description="Defines ISN's STIX extensions and release markings.",
    )


def extension_definitions() -> list[stix2.v21.ExtensionDefinition]:
    """Every extension ISN uses, with its JSON schema; fixed ids, one version."""

    def definition(ext_id: str, name: str, types: list[str], schema: str, description: str) -> Any:
        return stix2.v21.ExtensionDefinition(
            id=ext_id,
            created_by_ref=ISN_IDENTITY_ID,
            created=ISN_IDENTITY_CREATED,
            modified=ISN_IDENTITY_CREATED,
            name=name,
            description=description,
            schema=schema,
            version=ISN_VERSION,
            extension_types=types,
        )

    definitions = [
        definition(
            ITEM_EXTENSION_ID,
            "ISN item",
            ["property-extension"],
            _schema(
                "ISN item",
                {
                    "extension_type": {"const": "property-extension"},
                    "source_reliability": {"enum": ["A", "B", "C", "D", "E", "X"]},
                    "info_credibility": {"type": "integer", "minimum": 1, "maximum": 5},
                    "grading": {"type": "string", "pattern": "^[A-EX][1-5]$"},
                    "category": _TEXT,
                    "priority": {"enum": ["routine", "priority", "flash"]},
                    "handling_code": {"enum": list(TLP2_IDS)},
                    "border_crossing": _TEXT,
                    "review_date": {"type": "string", "format": "date"},
                    "content_version": {"type": "integer", "minimum": 1},
                    "status": {"enum": ["active", "withdrawn", "expired"]},
                    "released_countries": {"type": "array", "items": _TEXT},
                },
                required=["extension_type", "source_reliability", "info_credibility", "grading"],
            ),
            "An ISN item's exact Admiralty grading (source reliability A-E or X, information credibility 1-5) and "
            "its other metadata; released_countries only in the originating agency's own copy.",
        ),
        definition(
            ENTITY_EXTENSION_ID,
            "ISN entity",
            ["property-extension"],
            _schema(
                "ISN entity",
                {
                    "extension_type": {"const": "property-extension"},
                    "entity_type": _TEXT,
                    "aliases": {"type": "array", "items": _TEXT},
                    "birth_date": _TEXT,
                    "registration_number": _TEXT,
                    "country": _TEXT,
                    "address": _TEXT,
                    "latitude": {"type": "number"},
                    "longitude": {"type": "number"},
                },
                required=["extension_type", "entity_type"],
            ),
            "The fields of an entity an ISN item names (a person or company as an identity, a place as a location) "
            "that STIX has no property for.",
        ),
        definition(
            RELEASE_EXTENSION_ID,
            "ISN release",
            ["property-extension"],
            _schema(
                "ISN release",
                {
                    "extension_type": {"const": "property-extension"},
                    "originator_country": _TEXT,
                    "permitted_countries": {"type": "array", "items": _TEXT},
                    "further_sharing": {"enum": ["originator-consent"]},
                },
                required=["extension_type", "originator_country", "permitted_countries", "further_sharing"],
            ),
            "The release of an ISN item as its reader may see it (in the spirit of ISA ACS permitted_nationalities "
            "and further_sharing): the countries the reader may know it reaches, and that sharing it further needs "
            "the originating agency's consent.",
        ),
    ]
    for object_type in OBJECT_TYPES.values():
        properties = {"type": {"const": object_type.stix_type}, "name": _TEXT}
        properties |= dict.fromkeys(object_type.fields, _TEXT)
        definitions.append(
            definition(
                object_type.extension_id,
                f"ISN {object_type.title.lower()}",
                ["new-sdo"],
                _schema(f"ISN {object_type.title.lower()}", properties, required=["type"]),
                f"{object_type.title} named in an ISN item. Every field is optional: a revoked version has none.",
            )
        )
    return definitions


def tlp_marking(handling_code: str) -> stix2.v21.MarkingDefinition:
    return stix2.v21.MarkingDefinition(
        id=TLP2_IDS[handling_code],
        created=TLP2_CREATED,
        name=f"TLP:{_TLP2_NAMES[handling_code].upper()}",
        extensions={TLP2_EXTENSION_ID: {"extension_type": "property-extension", "tlp_2_0": _TLP2_NAMES[handling_code]}},
        allow_custom=True,
    )


def release_marking(marking_id: str, *, created: datetime, originator: str, countries: Sequence[str]) -> Any:
    return stix2.v21.MarkingDefinition(
        id=marking_id,
        created=created,
        created_by_ref=ISN_IDENTITY_ID,
        name=f"ISN release: {', '.join(countries)}; further sharing with the originator's consent",
        extensions={
            RELEASE_EXTENSION_ID: {
                "extension_type": "property-extension",
                "originator_country": originator,
                "permitted_countries": list(countries),
                "further_sharing": "originator-consent",
            }
        },
    )


def agency_identity(identity_id: str, *, created: datetime, name: str, country: str) -> stix2.v21.Identity:
    return stix2.v21.Identity(
        id=identity_id,
        created=created,
        modified=created,
        name=name,
        identity_class="organization",
        sectors=["government"],
        description=f"An ISN member agency of {country}.",
    )


# --- an item ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemStix:
    """What the builder needs of one item, for one reader: its kept ids, and its content unless revoked."""

    report_id: str
    identity_id: str
    release_marking_id: str
    created: datetime
    modified: datetime
    revoked: bool
    # entity STIX ids, in the order of ``entities`` (or, revoked, every id ever exported for the item)
    entity_ids: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    body: str = ""
    language: str = ""
    handling_code: str = ""
    info_credibility: int = 0
    entities: list[dict[str, Any]] = field(default_factory=list)


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value not in (None, "", [])}


def _coordinate(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _entity_object(stix_id: str, entity: dict[str, Any], common: dict[str, Any]) -> Any:
    kind = entity.get("type", "")
    fields = {name: value for name, value in entity.items() if name != "type"}
    if kind in ("person", "company"):
        extension = _clean(
            {
                "entity_type": kind,
                "aliases": fields.get("aliases"),
                "birth_date": fields.get("birth_date"),
                "registration_number": fields.get("registration_number"),
                "country": fields.get("country"),
            }
        )
        return stix2.v21.Identity(
            id=stix_id,
            name=fields.get("name") or REVOKED_ENTITY_NAME,
            identity_class="individual" if kind == "person" else "organization",
            extensions={ENTITY_EXTENSION_ID: {"extension_type": "property-extension", **extension}},
            **common,
        )
    if kind == "location":
        latitude, longitude = _coordinate(fields.get("latitude")), _coordinate(fields.get("longitude"))
        place = _clean({"name": fields.get("name"), "street_address": fields.get("address")})
        country = fields.get("country")
        if country and len(country) == 2:
            place["country"] = country
        if latitude is not None and longitude is not None and -90 <= latitude <= 90 and -180 <= longitude <= 180:
            place |= {"latitude": latitude, "longitude": longitude}
        if "country" not in place and "latitude" not in place:
            place["region"] = NEUTRAL_REGION
        extension = _clean({"entity_type": kind, "country": None if "country" in place else country})
        return stix2.v21.Location(
            id=stix_id,
            extensions={ENTITY_EXTENSION_ID: {"extension_type": "property-extension", **extension}},
            **place,
            **common,
        )
    object_type = OBJECT_TYPES[kind]
    values = _clean({name: fields.get(name) for name in object_type.fields})
    return CUSTOM_CLASSES[kind](id=stix_id, **values, **common)


def _revoked_entity(stix_id: str, common: dict[str, Any]) -> Any:
    stix_type = stix_id.split("--", 1)[0]
    if stix_type == "identity":
        return stix2.v21.Identity(id=stix_id, name=REVOKED_ENTITY_NAME, revoked=True, **common)
    if stix_type == "location":
        return stix2.v21.Location(id=stix_id, region=NEUTRAL_REGION, revoked=True, **common)
    for kind, object_type in OBJECT_TYPES.items():
        if object_type.stix_type == stix_type:
            return CUSTOM_CLASSES[kind](id=stix_id, revoked=True, **common)
    raise ValueError(f"not an ISN entity type: {stix_type}")


def item_objects(view: ItemStix) -> list[Any]:
    """The item's own objects for one reader: its entities, then its report (the report refers to them)."""
    common: dict[str, Any] = {
        "created": view.created,
        "modified": view.modified,
        "created_by_ref": view.identity_id,
    }
    if view.revoked:
        entities = [_revoked_entity(stix_id, common) for stix_id in view.entity_ids]
        report = stix2.v21.Report(
            id=view.report_id,
            name=REVOKED_NAME,
            published=view.created,
            report_types=["threat-report"],
            object_refs=[view.identity_id],
            revoked=True,
            **common,
        )
        return [*entities, report]
    markings = {"object_marking_refs": [TLP2_IDS[view.handling_code], view.release_marking_id]}
    entities = [
        _entity_object(stix_id, entity, common | markings)
        for stix_id, entity in zip(view.entity_ids, view.entities, strict=True)
    ]
    confidence = ADMIRALTY_CONFIDENCE.get(view.info_credibility)
    report = stix2.v21.Report(
        id=view.report_id,
        name=view.title,
        description=view.body,
        published=view.created,
        lang=view.language,
        report_types=["threat-report"],
        object_refs=[entity.id for entity in entities] or [view.identity_id],
        extensions={ITEM_EXTENSION_ID: {"extension_type": "property-extension", **_clean(view.metadata)}},
        **({"confidence": confidence} if confidence is not None else {}),
        **common,
        **markings,
    )
    return [*entities, report]
