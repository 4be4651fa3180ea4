"""A TAXII 2.1 server at ``/taxii2/`` (read side): discovery, one API root, and two collections per caller.

``inbox`` holds what the caller may read, exactly as the REST inbox decides, plus a revoked version of each item
they held and lost (the change feed told them); ``posted`` holds what the caller's agency originated. Thin views over
``messaging.interop.export``; authentication (API keys, also as HTTP Basic), permissions and rate limits are the REST
API's own, and an object the caller may not read is the REST API's 404.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.urls import reverse
from django.utils.dateparse import parse_datetime
from rest_framework import renderers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agencies.authentication import ApiKeyAuthentication, ApiKeyBasicAuthentication
from isn.authentication import VerifiedSessionAuthentication
from isn.errors import InvalidInput, NotFound
from isn.throttling import AnonymousThrottleGate
from messaging.interop import export
from messaging.interop.stix import MEDIA_TYPE as STIX_MEDIA_TYPE
from messaging.selectors.items import NOT_FOUND_MESSAGE

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
PAGE_DEFAULT = 100
MAX_CONTENT_LENGTH = 10 * 1024 * 1024

# Fixed ids: every caller has an inbox and a posted collection, each holding only what is theirs.
COLLECTION_IDS = {
    export.INBOX: "c0b5f7a2-3c0e-4a53-9d3e-6a1f0f6f1d01",
    export.POSTED: "c0b5f7a2-3c0e-4a53-9d3e-6a1f0f6f1d02",
}
COLLECTION_NAMES = {collection_id: name for name, collection_id in COLLECTION_IDS.items()}
_DESCRIPTIONS = {
    export.INBOX: "Every item you may read, as STIX 2.1; items you held and lost come back revoked.",
    export.POSTED: "The items your agency posted, as STIX 2.1; withdrawn and expired ones revoked.",
}


class TaxiiRenderer(renderers.JSONRenderer):
    # Without its version parameter, so that DRF also matches an Accept of */* or none; every answer still says
    # version=2.1 (``TaxiiView.finalize_response``).
    media_type = "application/taxii+json"
    format = "taxii"
    charset = None


class TaxiiView(APIView):
    authentication_classes = [
        ApiKeyAuthentication,
        ApiKeyBasicAuthentication,
        VerifiedSessionAuthentication,
        AnonymousThrottleGate,
    ]
    renderer_classes = [TaxiiRenderer]
    schema = None  # TAXII is its own standard, not part of the REST API's OpenAPI schema

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(response, Response) and response.status_code < 400:
            response.content_type = TAXII_MEDIA_TYPE
        return response

    def _root_url(self, request: Request) -> str:
        return request.build_absolute_uri(reverse("taxii-api-root"))


class DiscoveryView(TaxiiView):
    def get(self, request: Request) -> Response:
        root = self._root_url(request)
        return Response(
            {
                "title": "ISN TAXII 2.1",
                "description": "The Mekong Information Sharing Network's intelligence, as STIX 2.1.",
                "default": root,
                "api_roots": [root],
            }
        )


class ApiRootView(TaxiiView):
    def get(self, request: Request) -> Response:
        return Response(
            {
                "title": "ISN",
                "description": "One API root; its collections are per caller.",
                "versions": [TAXII_MEDIA_TYPE],
                "max_content_length": MAX_CONTENT_LENGTH,
            }
        )


def _collection(name: str) -> dict[str, Any]:
    return {
        "id": COLLECTION_IDS[name],
        "title": name,
        "description": _DESCRIPTIONS[name],
        "can_read": True,
        "can_write": False,
        "media_types": [STIX_MEDIA_TYPE],
    }


class CollectionsView(TaxiiView):
    def get(self, request: Request) -> Response:
        return Response({"collections": [_collection(name) for name in export.COLLECTIONS]})


def _name(collection_id: str) -> str:
    name = COLLECTION_NAMES.get(collection_id)
    if name is None:
        raise NotFound("No such collection.")
    return name


class CollectionView(TaxiiView):
    def get(self, request: Request, collection_id: str) -> Response:
        return Response(_collection(_name(collection_id)))


def _list(request: Request, name: str) -> list[str]:
    values = [value for raw in request.query_params.getlist(name) for value in raw.split(",") if value]
    return values


def _query(request: Request, *, object_id: str | None = None) -> tuple[export.Query, int, str | None]:
    added_after: datetime | None = None
    raw = request.query_params.get("added_after")
    if raw:
        added_after = parse_datetime(raw)
        if added_after is None or added_after.tzinfo is None:
            raise InvalidInput("added_after: a timestamp such as 2026-01-31T12:00:00.000Z.")
    try:
        limit = int(request.query_params.get("limit", PAGE_DEFAULT))
    except ValueError:
        raise InvalidInput(f"limit: a whole number from 1 to {export.PAGE_MAX}.") from None
    if not 1 <= limit <= export.PAGE_MAX:
        raise InvalidInput(f"limit: a whole number from 1 to {export.PAGE_MAX}.")
    spec_versions = _list(request, "match[spec_version]")
    ids = [object_id] if object_id else _list(request, "match[id]")
    query = export.Query(
        added_after=added_after,
        ids=frozenset(ids),
        types=frozenset(_list(request, "match[type]")),
        versions=frozenset(_list(request, "match[version]")),
        # STIX 2.1 only: asking for anything else finds nothing.
        nothing=bool(spec_versions) and "2.1" not in spec_versions,
    )
    return query, limit, request.query_params.get("next") or None


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _envelope(page: export.Page, body: dict[str, Any]) -> Response:
    body = {"more": True, "next": page.next, **body} if page.more and page.next else {"more": False, **body}
    headers = {}
    if page.added:
        headers["X-TAXII-Date-Added-First"] = _utc(min(page.added))
        headers["X-TAXII-Date-Added-Last"] = _utc(max(page.added))
    return Response(body, headers=headers)


def _serialised(obj: Any) -> dict[str, Any]:
    return json.loads(obj.serialize())


class ObjectsView(TaxiiView):
    def get(self, request: Request, collection_id: str, object_id: str | None = None) -> Response:
        name = _name(collection_id)
        query, limit, next_ = _query(request, object_id=object_id)
        page = export.collection_page(actor=request.user, collection=name, query=query, limit=limit, next_=next_)
        if object_id and not page.objects:
            raise NotFound(NOT_FOUND_MESSAGE)
        return _envelope(page, {"objects": [_serialised(obj) for obj in page.objects]} if page.objects else {})


class ManifestView(TaxiiView):
    def get(self, request: Request, collection_id: str) -> Response:
        name = _name(collection_id)
        query, limit, next_ = _query(request)
        page = export.collection_page(
            actor=request.user, collection=name, query=query, limit=limit, next_=next_, manifest=True
        )
        entries = [
            {
                "id": obj["id"],
                "date_added": _utc(added),
                "version": export.version_of(obj),
                "media_type": STIX_MEDIA_TYPE,
            }
            for obj, added in zip(page.objects, page.added, strict=True)
        ]
        return _envelope(page, {"objects": entries} if entries else {})


class VersionsView(TaxiiView):
    def get(self, request: Request, collection_id: str, object_id: str) -> Response:
        name = _name(collection_id)
        query, limit, next_ = _query(request, object_id=object_id)
        query = export.Query(added_after=query.added_after, ids=query.ids, versions=frozenset({"all"}))
        page = export.collection_page(
            actor=request.user, collection=name, query=query, limit=limit, next_=next_, manifest=True
        )
        if not page.objects:
            raise NotFound(NOT_FOUND_MESSAGE)
        return _envelope(page, {"versions": sorted({export.version_of(obj) for obj in page.objects})})
