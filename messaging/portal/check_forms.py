"""The "Check identifiers" form: rows of a type, a value, a country where the type has one, and one more detail
where the type needs it (a person's date of birth, a document's type, a wallet's chain, a seizure's substance).

Each row becomes an identifier shaped like an entity (``messaging.matching.entities``); the service checks and
normalises it and names any problem ``identifiers[i].<field>``, which ``row_errors`` puts back on the row's own input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django import forms
from django.forms import formset_factory
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from agencies.models import CountryCode
from messaging.core.labels import ENTITY_TYPE_LABELS
from messaging.models import IDENTIFIERS_PER_CHECK_MAX, EntityType

ROWS_FIRST = 5
ROWS_MORE = 5
VALUE_MAX_LENGTH = 500

# A location never matches: it is not offered.
CHECKABLE = [code for code in EntityType if code != EntityType.LOCATION]

# For each type: the entity field the row's value fills, the one its country fills (None: no country), and the one its
# detail fills (None: no detail).
SHAPES: dict[str, tuple[str, str | None, str | None]] = {
    EntityType.PERSON: ("name", None, "birth_date"),
    EntityType.IDENTITY_DOCUMENT: ("number", "country", "doc_type"),
    EntityType.PHONE: ("number", "country", None),
    EntityType.EMAIL: ("address", None, None),
    EntityType.VEHICLE: ("plate", "country", None),
    EntityType.VESSEL: ("registration", "country", None),  # an IMO number is recognised: see identifier()
    EntityType.COMPANY: ("registration_number", "country", None),
    EntityType.BANK_ACCOUNT: ("number", "country", None),
    EntityType.WALLET: ("address", None, "chain"),
    EntityType.SEIZURE: ("logo", None, "substance"),
    EntityType.PRECURSOR: ("cas", None, None),
}


class CheckRowForm(forms.Form):
    """One identifier; a row left empty is skipped."""

    entity_type = forms.ChoiceField(
        label=_("Type"),
        required=False,
        choices=[("", "—"), *[(code.value, ENTITY_TYPE_LABELS[code]) for code in CHECKABLE]],
    )
    value = forms.CharField(
        label=pgettext_lazy("identifier", "Value"),
        required=False,
        max_length=VALUE_MAX_LENGTH,
        help_text=_(
            "The number, plate, name, address... as you have it. Person: the name; seizure: the tablet logo or stamp."
        ),
    )
    country = forms.ChoiceField(
        label=_("Country"),
        required=False,
        choices=[("", "—"), *CountryCode.choices],
        help_text=_("The identifier's own country: where the phone, plate, document or account is from."),
    )
    detail = forms.CharField(
        label=_("Detail"),
        required=False,
        max_length=VALUE_MAX_LENGTH,
        help_text=_(
            "Person: date of birth (a Buddhist-era year is understood). Identity document: its type (passport, "
            "national ID...). Wallet: its chain (BTC, ETH, TRON). Seizure: the substance."
        ),
    )

    def is_blank(self) -> bool:
        data = self.cleaned_data if hasattr(self, "cleaned_data") else {}
        return not (data.get("value") or "").strip()

    def identifier(self) -> dict[str, Any]:
        """The row as an entity-shaped identifier (blank parts left out, so the service says what is missing)."""
        data = self.cleaned_data
        entity_type = data.get("entity_type") or ""
        identifier: dict[str, Any] = {"type": entity_type}
        value_field, country_field, detail_field = SHAPES.get(entity_type, ("value", None, None))
        value = (data.get("value") or "").strip()
        if entity_type == EntityType.VESSEL and value.upper().replace(" ", "").startswith("IMO"):
            value_field, country_field = "imo", None
        identifier[value_field] = value
        if country_field and data.get("country"):
            identifier[country_field] = data["country"]
        if detail_field and (data.get("detail") or "").strip():
            identifier[detail_field] = data["detail"].strip()
        return identifier

    def field_for(self, entity_field: str) -> str | None:
        """Which input of this row an entity field's problem belongs on."""
        entity_type = self.cleaned_data.get("entity_type") or ""
        value_field, country_field, detail_field = SHAPES.get(entity_type, ("value", None, None))
        if entity_field == "type":
            return "entity_type"
        if entity_field in (value_field, "imo", "registration"):
            return "value"
        if entity_field in (country_field, "country"):
            return "country"
        if entity_field == detail_field:
            return "detail"
        return None


class _BaseCheckFormSet(forms.BaseFormSet):
    def filled(self) -> list[tuple[int, CheckRowForm]]:
        """(row index, form) of the rows with a value, in order: the identifiers checked, by position."""
        return [(index, form) for index, form in enumerate(self.forms) if not form.is_blank()]  # type: ignore[attr-defined]

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        if not self.filled():
            raise forms.ValidationError(_("Type at least one identifier to check."))
        for _index, form in self.filled():
            if not form.cleaned_data.get("entity_type"):
                form.add_error("entity_type", _("Choose what type of identifier this is."))


CheckFormSet = formset_factory(
    CheckRowForm,
    formset=_BaseCheckFormSet,
    extra=0,
    max_num=IDENTIFIERS_PER_CHECK_MAX,
    absolute_max=IDENTIFIERS_PER_CHECK_MAX,
    validate_max=True,
)


def row_errors(formset: Any, positions: Sequence[int], fields: Mapping[str, Sequence[str]]) -> list[str]:
    """The service's problems (``identifiers[i].field``) shown on the row of identifier ``i`` and its own input;
    returns those that belong to no row (for the top of the form)."""
    unplaced: list[str] = []
    for name, problems in (fields or {}).items():
        head, _sep, entity_field = name.partition(".")
        position = head.removeprefix("identifiers[").removesuffix("]")
        if head.startswith("identifiers[") and position.isdigit() and int(position) < len(positions):
            form = formset.forms[positions[int(position)]]
            target = form.field_for(entity_field) if entity_field else None
            for problem in problems:
                form.add_error(target, str(problem))
        else:
            unplaced.extend(str(problem) for problem in problems)
    return unplaced
