"""Bench-only views in front of ISN's own URLs.

Two equivalent reads of an office by a member, one plain, one audited in the same transaction (bench.throughput);
and an item's detail served as plaintext without decrypting or auditing (bench.items_bench), to set against the
real ``GET /api/v1/items/{id}/``.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from agencies.selectors import offices_visible_to
from audit.services import record
from isn.crypto import new_key, seal
from isn.errors import NotFound
from messaging.api.items import ItemDetailSerializer
from messaging.items.lifecycle import ItemContent
from messaging.selectors.items import NOT_FOUND_MESSAGE, items_visible_to, parse_item_id

BENCH_USERNAME = "vn.officer"


def _read_office(pk: int) -> tuple[object, dict[str, object]]:
    # A member looked up per request, standing in for the session user (no login round-trip in the measurement).
    viewer = get_user_model().objects.get(username=BENCH_USERNAME)
    office = offices_visible_to(viewer).get(pk=pk)
    body = {
        "id": office.pk,
        "name": office.name,
        "agency": office.agency.short_name,
        "country": office.agency.country_id,
        "counterparts": [counterpart.pk for counterpart in office.counterparts.all()],
    }
    return viewer, body


def office_plain(request: HttpRequest, pk: int) -> JsonResponse:
    _, body = _read_office(pk)
    return JsonResponse(body)


def office_audited(request: HttpRequest, pk: int) -> JsonResponse:
    with transaction.atomic():
        viewer, body = _read_office(pk)
        record(
            action="agencies.office.read",
            actor=viewer,
            target_type="agencies.office",
            target_id=pk,
            target_country=str(body["country"]),
        )
    return JsonResponse(body)


# What sealing adds to a plaintext's length (format byte, nonce, tag): the plaintext's length without opening it.
_SEAL_OVERHEAD = len(seal(new_key(), b"", aad=b""))


def _stand_in(sealed: bytes) -> str:
    return "x" * (len(bytes(sealed)) - _SEAL_OVERHEAD)


@api_view(["GET"])
def item_plain(request: Request, pk: str) -> Response:
    """The item detail endpoint's shape and row (same authentication, same selector, same serializer), with a
    plaintext of the same length in place of the decrypted text, and no audit event or read mark."""
    item = (
        items_visible_to(request.user)
        .select_related("originator_agency", "originator_office", "originator_user")
        .filter(pk=parse_item_id(pk))
        .first()
    )
    if item is None:
        raise NotFound(NOT_FOUND_MESSAGE)
    content = ItemContent(item=item, title=_stand_in(item.title_sealed), body=_stand_in(item.body_sealed))
    return Response(ItemDetailSerializer(content).data)


urlpatterns = [
    path("plain/offices/<int:pk>/", office_plain),
    path("audited/offices/<int:pk>/", office_audited),
    path("plain/items/<str:pk>/", item_plain),
    path("", include("isn.urls")),
]
