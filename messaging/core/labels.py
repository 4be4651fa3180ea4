"""Names of the kinds of entity in the chosen language, for the portal's pages (the model's codes stay English)."""

from __future__ import annotations

from django.utils.translation import pgettext_lazy

from messaging.models import EntityType

ENTITY_TYPE_LABELS = {
    EntityType.PERSON: pgettext_lazy("entity type", "Person"),
    EntityType.IDENTITY_DOCUMENT: pgettext_lazy("entity type", "Identity document"),
    EntityType.PHONE: pgettext_lazy("entity type", "Phone number"),
    EntityType.EMAIL: pgettext_lazy("entity type", "E-mail address"),
    EntityType.VEHICLE: pgettext_lazy("entity type", "Vehicle"),
    EntityType.VESSEL: pgettext_lazy("entity type", "Vessel"),
    EntityType.COMPANY: pgettext_lazy("entity type", "Company"),
    EntityType.BANK_ACCOUNT: pgettext_lazy("entity type", "Bank account"),
    EntityType.WALLET: pgettext_lazy("entity type", "Crypto wallet"),
    EntityType.LOCATION: pgettext_lazy("entity type", "Location"),
    EntityType.SEIZURE: pgettext_lazy("entity type", "Seizure"),
    EntityType.PRECURSOR: pgettext_lazy("entity type", "Precursor chemical"),
}


def entity_type_label(code: str) -> str:
    """The kind of entity in the chosen language; an unknown code as it is."""
    try:
        return str(ENTITY_TYPE_LABELS[EntityType(code)])
    except ValueError:
        return code
