"""The portal's "Download as STIX" for an item's reader: the export service's bundle as a file (recorded as a read
and as an export)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.http import content_disposition_header

from agencies.portal import portal_view
from messaging.interop.export import item_export
from messaging.interop.stix import MEDIA_TYPE


@portal_view(("GET",))
def item_stix_download(request: HttpRequest, item_id: Any) -> HttpResponse:
    bundle = item_export(actor=request.user, item_id=item_id)
    response = HttpResponse(bundle.serialize(pretty=True), content_type=MEDIA_TYPE)
    # The file name is the item's id, never its title (content).
    response["Content-Disposition"] = content_disposition_header(True, f"isn-item-{item_id}.stix.json")
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
