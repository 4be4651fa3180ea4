"""The entity editors of the compose form, and an item's entities as the item page shows them.

Without JavaScript: each row is a type select and, once a type is chosen, that type's fields. Choosing a type and
pressing "Show the fields" (or "Add another entity") sends the form back re-rendered with everything typed kept: the
values of every row, of every type (a row whose type changed keeps its other type's values as hidden inputs), and
the rest of the form. Only "Post the item" posts. The service checks everything again; this only parses, labels and
says what a person can fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import phonenumbers
from django import forms
from django.http import QueryDict
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from agencies.models import CountryCode
from messaging.matching.entities import ENTITY_FIELDS
from messaging.matching.normalise import CHAINS
from messaging.models import ENTITIES_MAX, EntityType

PREFIX = "entities"
ACTION = "entity_action"
ACTION_ADD, ACTION_SHOW = "add", "show"

TYPE_LABELS: dict[str, Promise] = {
    EntityType.PERSON: _("Person"),
    EntityType.IDENTITY_DOCUMENT: _("Identity document"),
    EntityType.PHONE: _("Phone number"),
    EntityType.EMAIL: _("E-mail address"),
    EntityType.VEHICLE: _("Vehicle"),
    EntityType.VESSEL: _("Vessel"),
    EntityType.COMPANY: _("Company"),
    EntityType.BANK_ACCOUNT: _("Bank account"),
    EntityType.WALLET: _("Crypto wallet"),
    EntityType.LOCATION: _("Location"),
    EntityType.SEIZURE: _("Seizure"),
    EntityType.PRECURSOR: _("Precursor chemical"),
}

FIELD_LABELS: dict[str, Promise] = {
    "name": _("Name"),
    "aliases": _("Other names (one per line)"),
    "birth_date": _("Date of birth"),
    "nationality": _("Nationality"),
    "sex": _("Sex"),
    "doc_type": _("Document type"),
    "country": _("Country"),
    "number": _("Number"),
    "address": _("Address"),
    "plate": _("Plate"),
    "make": _("Make"),
    "model": _("Model"),
    "colour": _("Colour"),
    "imo": _("IMO number"),
    "registration": _("Registration"),
    "registration_number": _("Registration number"),
    "bank": _("Bank"),
    "holder": _("Account holder"),
    "chain": _("Chain"),
    "latitude": _("Latitude"),
    "longitude": _("Longitude"),
    "substance": _("Substance"),
    "quantity": _("Quantity"),
    "unit": _("Unit"),
    "place": _("Place"),
    "date": _("Date"),
    "logo": _("Tablet logo or stamp"),
    "packaging": _("Packaging markings"),
    "lab_profile": _("Laboratory profile reference"),
    "cas": _("CAS number"),
}
# Where a field means something more precise for one type.
TYPE_FIELD_LABELS: dict[tuple[str, str], Promise] = {
    (EntityType.IDENTITY_DOCUMENT, "country"): _("Issuing country"),
    (EntityType.PHONE, "number"): _("Phone number"),
    (EntityType.PHONE, "country"): _("Country of the number"),
    (EntityType.EMAIL, "address"): _("E-mail address"),
    (EntityType.VEHICLE, "country"): _("Country of the plate"),
    (EntityType.VESSEL, "name"): _("Vessel name"),
    (EntityType.VESSEL, "country"): _("Flag"),
    (EntityType.COMPANY, "name"): _("Company name"),
    (EntityType.BANK_ACCOUNT, "number"): _("Account number"),
    (EntityType.WALLET, "address"): _("Wallet address"),
    (EntityType.LOCATION, "name"): _("Place name"),
    (EntityType.PRECURSOR, "name"): _("Chemical name"),
    (EntityType.SEIZURE, "colour"): _("Tablet colour"),
}

SEX_LABELS: dict[str, Promise] = {"female": _("Female"), "male": _("Male")}
UNIT_LABELS: dict[str, Promise] = {
    "kg": _("kilograms"),
    "g": _("grams"),
    "l": _("litres"),
    "ml": _("millilitres"),
    "tablets": _("tablets"),
    "pieces": _("pieces"),
    "packages": _("packages"),
}
DOCUMENT_TYPES: dict[str, Promise] = {
    "passport": _("Passport"),
    "national_id": _("National identity card"),
    "driving_licence": _("Driving licence"),
    "border_pass": _("Border pass"),
}
SUBSTANCES: dict[str, Promise] = {
    "methamphetamine": _("Methamphetamine"),
    "heroin": _("Heroin"),
    "opium": _("Opium"),
    "ketamine": _("Ketamine"),
    "cannabis": _("Cannabis"),
    "cocaine": _("Cocaine"),
    "mdma": _("MDMA (ecstasy)"),
    "nps": _("New psychoactive substance"),
}
CHAIN_NAMES = sorted(set(CHAINS.values()))
# Values that stand for a word of the reader's language on the item page.
VALUE_LABELS: dict[str, Mapping[str, Promise]] = {
    "sex": SEX_LABELS,
    "unit": UNIT_LABELS,
    "doc_type": DOCUMENT_TYPES,
    "substance": SUBSTANCES,
}
COUNTRY_FIELDS = ("country", "nationality")
DATE_FIELDS = ("birth_date", "date")
REQUIRED: dict[str, tuple[str, ...]] = {
    EntityType.PERSON: ("name",),
    EntityType.IDENTITY_DOCUMENT: ("doc_type", "country", "number"),
    EntityType.PHONE: ("number", "country"),
    EntityType.EMAIL: ("address",),
    EntityType.VEHICLE: ("plate", "country"),
    EntityType.COMPANY: ("name",),
    EntityType.BANK_ACCOUNT: ("number", "country"),
    EntityType.WALLET: ("chain", "address"),
    EntityType.SEIZURE: ("substance",),
    EntityType.PRECURSOR: ("cas",),
}


def field_label(entity_type: str, name: str) -> Promise:
    return TYPE_FIELD_LABELS.get((entity_type, name), FIELD_LABELS.get(name, name))


def country_label(code: str) -> str:
    return str(CountryCode(code).label) if code in CountryCode.values and code != "UN" else code


def _country_choices(*, dialling: bool) -> list[Any]:
    """The six MOU members by name first, then every other country by its code (with its dialling code for a
    phone): whatever country a number, plate or flag belongs to can be chosen."""
    members = [(code, country_label(code)) for code in CountryCode.values if code != "UN"]
    others = []
    for code in sorted(phonenumbers.SUPPORTED_REGIONS - set(CountryCode.values)):
        label = f"{code} (+{phonenumbers.country_code_for_region(code)})" if dialling else code
        others.append((code, label))
    return [("", "—"), (_("Mekong MOU countries"), members), (_("Other countries"), others)]


def _select(labels: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [("", "—"), *labels.items()]


def _name(entity_type: str, field: str) -> str:
    return f"{entity_type}__{field}"


class EntityForm(forms.Form):
    """One row: a type, and every type's fields (only the chosen type's are shown; the others are kept)."""

    type = forms.ChoiceField(
        label=_("Type of entity"), choices=(), required=False, widget=forms.Select(attrs={"data-entity-type": ""})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["type"].choices = [("", _("None: choose a type")), *TYPE_LABELS.items()]
        for entity_type, names in ENTITY_FIELDS.items():
            for field in names:
                self.fields[_name(entity_type, field)] = self._field(entity_type, field)
        # A document type or substance given through the API, not among the usual ones, stays choosable.
        for entity_type, field in ((EntityType.IDENTITY_DOCUMENT, "doc_type"), (EntityType.SEIZURE, "substance")):
            bound = self[_name(entity_type, field)]
            value = bound.value()
            if value and value not in dict(bound.field.choices):
                bound.field.choices = [*bound.field.choices, (value, value)]

    def _field(self, entity_type: str, field: str) -> forms.Field:
        label = field_label(entity_type, field)
        if field in COUNTRY_FIELDS:
            choices = _country_choices(dialling=entity_type == EntityType.PHONE)
            return forms.ChoiceField(label=label, choices=choices, required=False)
        if field == "chain":
            return forms.ChoiceField(label=label, choices=_select({name: name for name in CHAIN_NAMES}), required=False)
        if field == "sex":
            return forms.ChoiceField(label=label, choices=_select(SEX_LABELS), required=False)
        if field == "unit":
            return forms.ChoiceField(label=label, choices=_select(UNIT_LABELS), required=False)
        if field in ("doc_type", "substance"):
            labels = DOCUMENT_TYPES if field == "doc_type" else SUBSTANCES
            return _OpenChoiceField(label=label, choices=_select(labels), required=False)
        if field == "aliases":
            return forms.CharField(label=label, required=False, widget=forms.Textarea(attrs={"rows": 2}))
        attrs: dict[str, str] = {}
        if field in DATE_FIELDS:
            attrs = {"placeholder": "DD/MM/YYYY", "inputmode": "numeric"}
        elif field in ("latitude", "longitude", "quantity"):
            attrs = {"inputmode": "decimal"}
        elif entity_type == EntityType.PHONE and field == "number":
            attrs = {"type": "tel", "inputmode": "tel"}
        elif entity_type == EntityType.EMAIL:
            attrs = {"type": "email"}
        return forms.CharField(label=label, required=False, max_length=500, widget=forms.TextInput(attrs=attrs))

    @property
    def chosen_type(self) -> str:
        value = (self.data.get(self.add_prefix("type")) if self.is_bound else self.initial.get("type")) or ""
        return value if value in ENTITY_FIELDS else ""

    def shown_fields(self) -> list[forms.BoundField]:
        """The chosen type's fields, in the order the type lists them."""
        entity_type = self.chosen_type
        return [self[_name(entity_type, field)] for field in ENTITY_FIELDS.get(entity_type, ())]

    def kept_fields(self) -> list[forms.BoundField]:
        """The other types' fields holding something: kept as hidden inputs, so changing the type loses nothing."""
        shown = {bound.name for bound in self.shown_fields()}
        return [
            self[name]
            for name in self.fields
            if name != "type" and name not in shown and self.is_bound and self.data.get(self.add_prefix(name))
        ]

    def type_label(self) -> Any:
        return TYPE_LABELS.get(self.chosen_type, "")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        entity_type = data.get("type") or ""
        self.entity: dict[str, Any] | None = None
        if not entity_type:
            return data
        values = {field: data.get(_name(entity_type, field)) or "" for field in ENTITY_FIELDS[entity_type]}
        # A type chosen and nothing typed (a country picked by default aside) is a row left blank.
        if not any(value.strip() for field, value in values.items() if field not in COUNTRY_FIELDS):
            return data
        for field in REQUIRED.get(entity_type, ()):
            if not values[field].strip():
                self.add_error(_name(entity_type, field), _("Required for this type of entity."))
        entity: dict[str, Any] = {"type": entity_type}
        for field, value in values.items():
            if field == "aliases":
                aliases = [line.strip() for line in value.splitlines() if line.strip()]
                if aliases:
                    entity["aliases"] = aliases
            elif value.strip():
                entity[field] = value.strip()
        self.entity = entity
        return data


class _OpenChoiceField(forms.ChoiceField):
    """A select of the usual values that also keeps a value typed elsewhere (the API takes any word)."""

    def valid_value(self, value: Any) -> bool:
        return True


class BaseEntityFormSet(forms.BaseFormSet):
    def __init__(self, *args: Any, own_country: str, **kwargs: Any) -> None:
        self.own_country = own_country
        super().__init__(*args, **kwargs)

    def _construct_form(self, i: int, **kwargs: Any) -> forms.Form:
        form = super()._construct_form(i, **kwargs)
        form.fields[_name(EntityType.PHONE, "country")].initial = self.own_country
        return form

    def entities(self) -> list[dict[str, Any]]:
        """The rows that name an entity, as ``item_create`` takes them (call after ``is_valid``)."""
        return [form.entity for form in self.forms if getattr(form, "entity", None)]

    def rows(self) -> list[int]:
        """The row index of each entity ``entities`` returns, in the same order."""
        return [index for index, form in enumerate(self.forms) if getattr(form, "entity", None)]

    def add_service_errors(self, fields: Mapping[str, Sequence[str]]) -> list[str]:
        """Put the service's ``entities[i].field`` problems on their rows; returns the summaries to show above the
        form, each naming the entity (its number and type) and the field."""
        rows = self.rows()
        summaries = []
        for key, problems in fields.items():
            if not key.startswith("entities"):
                continue
            index_text, _dot, field = key.removeprefix("entities").removeprefix("[").partition("]")
            field = field.removeprefix(".")
            if not index_text.isdigit() or int(index_text) >= len(rows):
                summaries.extend(str(problem) for problem in problems)
                continue
            row = rows[int(index_text)]
            form = self.forms[row]
            entity_type = form.chosen_type
            name = _name(entity_type, field)
            for problem in problems:
                if name in form.fields:
                    form.add_error(name, str(problem))
                else:
                    form.add_error(None, str(problem))
                summaries.append(entity_problem(row, entity_type, field, str(problem)))
        return summaries

    def summaries(self) -> list[str]:
        """Every row's own problems, each naming the entity and the field."""
        found = []
        for row, form in enumerate(self.forms):
            for name, problems in form.errors.items():
                _type, _sep, field = name.partition("__")
                for problem in problems:
                    found.append(entity_problem(row, form.chosen_type, field or "", str(problem)))
        return found


def entity_problem(row: int, entity_type: str, field: str, problem: str) -> str:
    where = _("Entity %(number)s (%(type)s)") % {"number": row + 1, "type": TYPE_LABELS.get(entity_type, "")}
    if field and field != "type" and entity_type:
        return f"{where}, {field_label(entity_type, field)}: {problem}"
    return f"{where}: {problem}"


EntityFormSet = forms.formset_factory(
    EntityForm,
    formset=BaseEntityFormSet,
    extra=1,
    max_num=ENTITIES_MAX,
    absolute_max=ENTITIES_MAX,
    validate_max=True,
)


def entity_formset(data: QueryDict | None, *, own_country: str) -> tuple[BaseEntityFormSet, str]:
    """The entity rows of a compose form, and what the officer asked of them: ``ACTION_ADD`` (one more row),
    ``ACTION_SHOW`` (re-render with the chosen types' fields) or ``""`` (post)."""
    if data is None:
        return EntityFormSet(prefix=PREFIX, own_country=own_country), ""
    action = data.get(ACTION, "")
    total_key = f"{PREFIX}-TOTAL_FORMS"
    data = data.copy()
    if total_key not in data:
        # A post without the entity rows at all (an older page, a script): none.
        data[total_key], data[f"{PREFIX}-INITIAL_FORMS"] = "0", "0"
    total = data.get(total_key, "")
    if total.isdigit():
        total_rows = min(int(total), ENTITIES_MAX)
        # The phone's country, not shown until the type was chosen, starts as the officer's own.
        for row in range(total_rows):
            data.setdefault(f"{PREFIX}-{row}-{_name(EntityType.PHONE, 'country')}", own_country)
        if action == ACTION_ADD and total_rows < ENTITIES_MAX:
            data[total_key] = str(total_rows + 1)
            data.setdefault(f"{PREFIX}-{total_rows}-{_name(EntityType.PHONE, 'country')}", own_country)
    action = action if action in (ACTION_ADD, ACTION_SHOW) else ""
    return EntityFormSet(data, prefix=PREFIX, own_country=own_country), action


def entity_rows_initial(entities: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """An item's entities (as ``item_read`` opens them) as the rows' initial values: what a correction page hands to
    ``EntityFormSet(initial=...)`` so that the originator edits the list as it is."""
    rows = []
    for entity in entities:
        entity_type = str(entity.get("type", ""))
        row: dict[str, Any] = {"type": entity_type}
        for field in ENTITY_FIELDS.get(entity_type, ()):
            value = entity.get(field)
            if value not in (None, "", []):
                row[_name(entity_type, field)] = "\n".join(value) if isinstance(value, list) else value
        rows.append(row)
    return rows


def entities_for_display(entities: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """An item's entities as the item page shows them: the type's label, then each field's label and value, in the
    reader's language where the value stands for a word (a country, a unit, a substance...)."""
    shown = []
    for entity in entities:
        entity_type = str(entity.get("type", ""))
        rows = []
        for field in ENTITY_FIELDS.get(entity_type, ()):
            value = entity.get(field)
            if value in (None, "", []):
                continue
            if isinstance(value, list):
                text = ", ".join(str(part) for part in value)
            elif field in COUNTRY_FIELDS:
                text = country_label(str(value).upper())
            elif field in VALUE_LABELS and str(value) in VALUE_LABELS[field]:
                text = str(VALUE_LABELS[field][str(value)])
            else:
                text = str(value)
            rows.append((field_label(entity_type, field), text))
        shown.append({"type": entity_type, "label": TYPE_LABELS.get(entity_type, entity_type), "fields": rows})
    return shown
