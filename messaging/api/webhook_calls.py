"""The calls ISN makes to an agency's webhook, documented under the schema's ``webhooks`` (OpenAPI 3.1) so that a
receiver can be generated or checked from the same document as the API (``messaging.delivery.webhooks`` sends them).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, OpenApiWebhook, extend_schema
from rest_framework import serializers

from messaging.delivery.feed import WEBHOOK_KINDS
from messaging.delivery.flash import WEBHOOK_ESCALATED, WEBHOOK_ESCALATED_NATIONAL
from messaging.delivery.hits import WEBHOOK_HIT_ON_ITEM
from messaging.delivery.routing import WEBHOOK_REVOKED, WEBHOOK_ROUTED
from messaging.sharing.forwards import WEBHOOK_FORWARDED

ITEM_EVENTS = sorted(
    {WEBHOOK_ROUTED, WEBHOOK_FORWARDED, WEBHOOK_REVOKED, WEBHOOK_ESCALATED, WEBHOOK_ESCALATED_NATIONAL}
    | {kind for kind in WEBHOOK_KINDS if kind.startswith("item.")}
)
CONSENT_EVENTS = sorted(kind for kind in WEBHOOK_KINDS if kind.startswith("consent."))
RFI_EVENTS = sorted(kind for kind in WEBHOOK_KINDS if kind.startswith("rfi."))

HEADERS = (
    'Signed with HMAC-SHA256 under the agency\'s webhook secret over `X-ISN-Timestamp + "." + body`, sent as '
    "`X-ISN-Signature: sha256=<hex>`; reject a timestamp more than five minutes old. `X-ISN-Event` repeats the "
    "event; `X-ISN-Delivery` is the same on every retry of one call (drop a repeat). Answer 2xx within the timeout; "
    "anything else is retried with back-off, then dead-lettered. Ids and codes only, never content: fetch what the "
    'call names through the API. README, "Webhooks", has a verifier to copy.'
)


class ItemFactsSerializer(serializers.Serializer):
    item_id = serializers.UUIDField()
    priority = serializers.CharField()
    category = serializers.CharField(allow_null=True, help_text="Null for TLP:RED items: it never leaves ISN.")
    originator_country = serializers.CharField()
    link = serializers.URLField(help_text="The item in the portal.")


class _CallSerializer(serializers.Serializer):
    delivery = serializers.CharField(help_text="Same on every retry of this call.")
    agency = serializers.IntegerField(help_text="Your agency's id.")


class ItemCallSerializer(_CallSerializer):
    event = serializers.ChoiceField(choices=ITEM_EVENTS)
    item = ItemFactsSerializer()


class ConsentCallSerializer(_CallSerializer):
    event = serializers.ChoiceField(choices=CONSENT_EVENTS)
    item = ItemFactsSerializer()
    consent = serializers.UUIDField(help_text="The consent request: GET /api/v1/consents/{id}/.")


class HitCallSerializer(_CallSerializer):
    event = serializers.ChoiceField(choices=[WEBHOOK_HIT_ON_ITEM])
    item = ItemFactsSerializer(help_text="Your agency's item that a check hit.")
    hit_reference = serializers.CharField(
        help_text="The hit's reference: GET /api/v1/hits/?direction=on_our_items says who asked; a request for "
        "information from the asker may quote it."
    )


class RfiCallSerializer(_CallSerializer):
    event = serializers.ChoiceField(choices=RFI_EVENTS)
    item = ItemFactsSerializer(allow_null=True, help_text="The item the request is about, if any.")
    rfi = serializers.UUIDField(help_text="The request for information: GET /api/v1/rfis/{id}/.")


def _webhook(name: str, serializer: type[serializers.Serializer], summary: str) -> OpenApiWebhook:
    return OpenApiWebhook(
        name=name,
        decorator=extend_schema(
            summary=summary,
            description=HEADERS,
            request=serializer,
            responses={200: OpenApiResponse(description="Received (any 2xx).")},
        ),
    )


ITEM_WEBHOOK = _webhook("item", ItemCallSerializer, "An item reached, changed for, or left your agency")
CONSENT_WEBHOOK = _webhook("consent", ConsentCallSerializer, "A consent request your agency asked or must decide")
RFI_WEBHOOK = _webhook("rfi", RfiCallSerializer, "A request for information your agency asked or was asked")
HIT_WEBHOOK = _webhook("hit", HitCallSerializer, "A check of identifiers by another agency hit an item of your agency")
