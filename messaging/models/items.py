"""Intelligence items, sealed under a per-item data key, and the grants and wrapped keys that say who may open them.

An item's title, body and attachments are sealed with its own random data key (AES-256-GCM, associated data binding
item id, field and content version). The data key is stored only wrapped, once per country the item is released to
(``ItemKey``), under that country's key-encryption key: deleting a country's ``ItemKey`` is crypto-shredding.
Visibility is decided by indexed grant rows (country, agency) and, for named individuals, by django-guardian's
direct foreign-key object permissions; ``messaging.selectors.items.items_visible_to`` turns them into one SQL query.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from guardian.models import UserObjectPermissionBase

TITLE_MAX_LENGTH = 300
BODY_MAX_LENGTH = 50_000
BORDER_CROSSING_MAX_LENGTH = 200
FILENAME_MAX_LENGTH = 200


class Category(models.TextChoices):
    METH_PILLS = "meth_pills", _("Methamphetamine pills")
    METH_CRYSTAL = "meth_crystal", _("Crystal methamphetamine")
    HEROIN_OPIUM = "heroin_opium", _("Heroin / opium")
    KETAMINE = "ketamine", _("Ketamine")
    CANNABIS = "cannabis", _("Cannabis")
    NPS = "nps", _("New psychoactive substances")
    PRECURSORS = "precursors", _("Precursor chemicals")
    HUMAN_TRAFFICKING = "human_trafficking", _("Human trafficking")
    WILDLIFE = "wildlife", _("Wildlife")
    TIMBER = "timber", _("Timber")
    CYBER_FRAUD = "cyber_fraud", _("Cyber-enabled fraud / scam compounds")
    MONEY_LAUNDERING = "money_laundering", _("Money laundering")
    OTHER = "other", _("Other")


class Priority(models.TextChoices):
    ROUTINE = "routine", _("Routine")
    PRIORITY = "priority", _("Priority")
    FLASH = "flash", _("Flash")


class SourceReliability(models.TextChoices):
    """Admiralty grading of the source."""

    A = "A", _("A: completely reliable")
    B = "B", _("B: usually reliable")
    C = "C", _("C: fairly reliable")
    D = "D", _("D: not usually reliable")
    E = "E", _("E: unreliable")
    X = "X", _("X: reliability cannot be judged")


class InfoCredibility(models.IntegerChoices):
    """Admiralty grading of the information itself."""

    CONFIRMED = 1, _("1: confirmed by other sources")
    PROBABLY_TRUE = 2, _("2: probably true")
    POSSIBLY_TRUE = 3, _("3: possibly true")
    DOUBTFUL = 4, _("4: doubtful")
    IMPROBABLE = 5, _("5: improbable")


class HandlingCode(models.TextChoices):
    """Traffic Light Protocol 2.0."""

    CLEAR = "clear", _("TLP:CLEAR")
    GREEN = "green", _("TLP:GREEN")
    AMBER = "amber", _("TLP:AMBER")
    AMBER_STRICT = "amber_strict", _("TLP:AMBER+STRICT")
    RED = "red", _("TLP:RED")


class ItemStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    WITHDRAWN = "withdrawn", _("Withdrawn by the originator")
    EXPIRED = "expired", _("Expired at its review date")


class Item(models.Model):
    """A piece of intelligence posted by an agency. Its text is stored only sealed; see the module docstring."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    originator_agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="items")
    originator_office = models.ForeignKey(
        "agencies.Office", on_delete=models.PROTECT, null=True, blank=True, related_name="items"
    )
    originator_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="items")
    # Denormalised from the agency: filters and audit targets use it without a join.
    originator_country = models.CharField(max_length=2, db_index=True)
    title_sealed = models.BinaryField(editable=False)
    body_sealed = models.BinaryField(editable=False)
    # Part of every seal's associated data: a correction re-seals under the next version, so an older ciphertext
    # put back in place no longer opens.
    content_version = models.PositiveIntegerField(default=1)
    language = models.CharField(max_length=10)
    category = models.CharField(max_length=32, choices=Category.choices)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.ROUTINE)
    source_reliability = models.CharField(max_length=1, choices=SourceReliability.choices)
    info_credibility = models.PositiveSmallIntegerField(choices=InfoCredibility.choices)
    handling_code = models.CharField(max_length=16, choices=HandlingCode.choices)
    border_crossing = models.CharField(max_length=BORDER_CROSSING_MAX_LENGTH, blank=True)
    review_date = models.DateField(help_text=_("After this date the item expires and its keys are shredded."))
    status = models.CharField(max_length=10, choices=ItemStatus.choices, default=ItemStatus.ACTIVE)
    # Whether officers who may not read the item may learn that it holds an identifier they check (hit/no-hit):
    # the originator's explicit choice at posting, never a default; a TLP:RED item never is.
    discoverable = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="item_newest_first_idx"),
            models.Index(fields=["status", "review_date"], name="item_status_review_idx"),
            models.Index(fields=["originator_agency", "-created_at"], name="item_originator_agency_idx"),
        ]

    def __str__(self) -> str:
        # Never the title: it is intelligence content.
        return f"item {self.pk} ({self.originator_country}, {self.get_priority_display()})"


class ItemKey(models.Model):
    """The item's data key wrapped by one country's key-encryption key. Deleting it shreds that country's copy."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="keys")
    country = models.ForeignKey("agencies.Country", on_delete=models.PROTECT, related_name="+")
    kek_version = models.PositiveIntegerField()
    wrapped_key = models.BinaryField(editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "country"], name="item_key_one_per_country")]
        # Rotation re-wraps a country's keys version by version.
        indexes = [models.Index(fields=["country", "kek_version"], name="item_key_country_version_idx")]

    def __str__(self) -> str:
        return f"key of {self.item_id} for {self.country_id} (v{self.kek_version})"


class ItemCountryGrant(models.Model):
    """The item is released to this country (the originator's own country always has one)."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="country_grants")
    country = models.ForeignKey("agencies.Country", on_delete=models.PROTECT, related_name="+")
    # Set when the country was added by an approved consent request (the third-party rule), not by the originator.
    consent = models.ForeignKey(
        "messaging.ConsentRequest", on_delete=models.PROTECT, null=True, blank=True, related_name="country_grants"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "country"], name="item_country_grant_unique")]
        indexes = [models.Index(fields=["country", "item"], name="item_country_grant_inbox_idx")]

    def __str__(self) -> str:
        return f"{self.item_id} -> {self.country_id}"


class ItemAgencyGrant(models.Model):
    """Within a released country, only the agencies named by such rows see the item (when there is at least one)."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="agency_grants")
    agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="+")
    # Denormalised from the agency so "is this country restricted?" is one index probe.
    country = models.ForeignKey("agencies.Country", on_delete=models.PROTECT, related_name="+")
    # Set when an approved consent request named one agency of its country.
    consent = models.ForeignKey(
        "messaging.ConsentRequest", on_delete=models.PROTECT, null=True, blank=True, related_name="agency_grants"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "agency"], name="item_agency_grant_unique")]
        indexes = [
            models.Index(fields=["item", "country"], name="item_agency_grant_country_idx"),
            models.Index(fields=["agency", "item"], name="item_agency_grant_agency_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.item_id} -> agency {self.agency_id}"


class ItemUserObjectPermission(UserObjectPermissionBase):
    """A named individual (need-to-know), as a django-guardian direct foreign-key permission (``view_item``)."""

    content_object = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="named_grants")

    class Meta(UserObjectPermissionBase.Meta):
        indexes = [models.Index(fields=["user", "content_object"], name="item_named_grant_user_idx")]


class Attachment(models.Model):
    """A file attached by the originator, sealed under the item's data key. Its type was sniffed from its bytes."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="attachments")
    # A file name can itself be intelligence ("suspect passport.jpg"): sealed like the content.
    filename_sealed = models.BinaryField(editable=False)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64, help_text=_("SHA-256 of the plaintext, hex."))
    content_sealed = models.BinaryField(editable=False)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"attachment {self.pk} of {self.item_id}"


class ItemRead(models.Model):
    """When a user first opened an item: drives the ``unread`` filter. The audit trail holds every read."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="reads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    first_read_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "item"], name="item_read_once_per_user")]

    def __str__(self) -> str:
        return f"{self.user_id} read {self.item_id}"


# --- routing and notifications ---------------------------------------------------------------------------------------
