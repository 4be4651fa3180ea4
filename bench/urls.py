"""Two equivalent reads of an office by a member: one plain, one audited in the same transaction."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.urls import path

from agencies.selectors import offices_visible_to
from audit.services import record

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


urlpatterns = [
    path("plain/offices/<int:pk>/", office_plain),
    path("audited/offices/<int:pk>/", office_audited),
]
