"""An item's entities (the people, phones, plates, wallets... it names) and their blind match tokens.

An entity's fields are sealed as JSON under the item's data key, like its title and body (associated data binding
item id, entity id and content version), so shredding the item's wrapped keys shreds its entities too. What can match
is kept only as ``MatchToken`` rows: HMAC-SHA256 tokens of the normalised values under the match key
(``agencies.keyring.match_tokens``), never the values; a withdrawn or expired item's tokens are deleted at once.
"""

from __future__ import annotations

import uuid

from django.db import models

from messaging.models.items import Item

ENTITIES_MAX = 50
MATCH_TOKEN_LENGTH = 32


class EntityType(models.TextChoices):
    """The kinds of entity an item may name (``messaging.matching.normalise`` reads each one's fields)."""

    PERSON = "person"
    IDENTITY_DOCUMENT = "identity_document"
    PHONE = "phone"
    EMAIL = "email"
    VEHICLE = "vehicle"
    VESSEL = "vessel"
    COMPANY = "company"
    BANK_ACCOUNT = "bank_account"
    WALLET = "wallet"
    LOCATION = "location"
    SEIZURE = "seizure"
    PRECURSOR = "precursor"


class ItemEntity(models.Model):
    """One entity of an item; its fields sealed under the item's data key."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="entities")
    position = models.PositiveSmallIntegerField()
    entity_type = models.CharField(max_length=32, choices=EntityType.choices)
    fields_sealed = models.BinaryField(editable=False)

    class Meta:
        ordering = ["item", "position"]
        constraints = [models.UniqueConstraint(fields=["item", "position"], name="item_entity_position_unique")]

    def __str__(self) -> str:
        return f"{self.entity_type} #{self.position} of {self.item_id}"


class MatchToken(models.Model):
    """A blind token of one matchable value of an entity: the HMAC only, with the match key version that made it."""

    id = models.BigAutoField(primary_key=True)
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="match_tokens")
    entity = models.ForeignKey(ItemEntity, on_delete=models.CASCADE, related_name="match_tokens")
    kind = models.CharField(max_length=32)
    token = models.BinaryField(max_length=MATCH_TOKEN_LENGTH, editable=False)
    key_version = models.PositiveIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["token"], name="match_token_idx"),
            models.Index(fields=["key_version"], name="match_token_version_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} token of {self.item_id}"
