"""The STIX ids ISN mints for what it exports (messaging.interop), and keeps.

Every id is random (uuid4), minted the first time the thing is exported and kept from then on, so that a consumer
holding an object recognises its next version (and its revocation) by the same id. None is derived from a value:
STIX's deterministic ids for cyber observables would let anyone who sees an id confirm a guessed phone number or
address for ever.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from messaging.models.items import Item

STIX_KEY_MAX_LENGTH = 200


class StixKind(models.TextChoices):
    """What a kept STIX id names."""

    REPORT = "report"  # an item (key empty)
    ENTITY = "entity"  # one entity of an item (key: its position and type)
    IDENTITY = "identity"  # an agency (no item; key: the agency's id)
    RELEASE = "release"  # a release marking as one audience is shown it (no item; key: what it says)


class StixId(models.Model):
    """One STIX id minted by ISN: the uuid part of ``<type>--<uuid>``, for an item, an entity of it, an agency or a
    release marking."""

    stix_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=16, choices=StixKind.choices)
    item = models.ForeignKey(Item, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    key = models.CharField(max_length=STIX_KEY_MAX_LENGTH, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "item", "key"], condition=models.Q(item__isnull=False), name="stix_id_per_item_thing"
            ),
            models.UniqueConstraint(
                fields=["kind", "key"], condition=models.Q(item__isnull=True), name="stix_id_per_shared_thing"
            ),
        ]

    def __str__(self) -> str:
        return f"stix {self.kind} {self.stix_id}"
