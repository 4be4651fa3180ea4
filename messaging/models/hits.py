"""Hit/no-hit discovery: the checks officers and agency systems make, and the hits they get on items they may not read.

A check (``MatchCheck``) counts its identifiers against the daily quotas of the person, the key and the agency; it
holds no value and no token. A hit (``Hit``) says that one identifier of one check matched an active discoverable item
the caller may not read. Its ``reference`` is random and fresh for every check and identifier, so two identifiers of
one item cannot be linked through their references; only the item's originating agency resolves a reference to its
item. Hits are kept ``ISN_HIT_RETENTION_DAYS`` and then deleted (recorded).
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

from messaging.models.entities import EntityType
from messaging.models.items import Item

HIT_REFERENCE_LENGTH = 20
IDENTIFIERS_PER_CHECK_MAX = 50


def new_hit_reference() -> str:
    """``HIT-`` and 16 random hex digits: unguessable, and saying nothing of the item."""
    return "HIT-" + secrets.token_hex(8).upper()


class CheckOrigin(models.TextChoices):
    """Why identifiers were checked: an explicit check, or the entities of a discoverable item being posted."""

    CHECK = "check"
    POST = "post"


class MatchCheck(models.Model):
    """One check of up to ``IDENTIFIERS_PER_CHECK_MAX`` identifiers: who asked, when, how many; never what."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    api_key = models.ForeignKey("agencies.ApiKey", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="+")
    country = models.CharField(max_length=2)
    origin = models.CharField(max_length=8, choices=CheckOrigin.choices, default=CheckOrigin.CHECK)
    identifiers = models.PositiveSmallIntegerField()
    hits = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["user", "created_at"], name="match_check_user_idx"),
            models.Index(fields=["api_key", "created_at"], name="match_check_key_idx"),
            models.Index(fields=["agency", "created_at"], name="match_check_agency_idx"),
        ]

    def __str__(self) -> str:
        return f"check of {self.identifiers} identifiers by {self.user_id}"


class Hit(models.Model):
    """One identifier of one check matched an item its asker may not read."""

    id = models.BigAutoField(primary_key=True)
    reference = models.CharField(max_length=HIT_REFERENCE_LENGTH, unique=True, default=new_hit_reference)
    match_check = models.ForeignKey(MatchCheck, on_delete=models.CASCADE, related_name="hit_rows")
    # Which identifier of the check (its position in the request), so the asker's answer lines up.
    position = models.PositiveSmallIntegerField()
    entity_type = models.CharField(max_length=32, choices=EntityType.choices)
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="hits")
    # Denormalised at the time of the hit: what the asker is shown, and what the holder's lists filter on.
    holder_agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="+")
    holder_country = models.CharField(max_length=2)
    asker_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    asker_agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="+")
    asker_country = models.CharField(max_length=2)
    # Set when the originator was told: at once for FLASH and PRIORITY items, in the daily digest otherwise.
    notified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["holder_agency", "-created_at"], name="hit_holder_idx"),
            models.Index(fields=["asker_agency", "-created_at"], name="hit_asker_idx"),
            models.Index(fields=["item", "-created_at"], name="hit_item_idx"),
            models.Index(fields=["created_at"], name="hit_created_idx"),
        ]

    def __str__(self) -> str:
        # Never the item: only its holder may know which item a reference names.
        return f"hit {self.reference}"
