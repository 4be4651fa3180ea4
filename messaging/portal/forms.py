"""The portal's forms for items: the inbox filters, composing, acknowledging, narrowing, withdrawing, attaching, and
the statistics period. They only parse and check input; the services decide and record."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any

import django_filters
from django import forms
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from agencies.models import Agency, CountryCode
from messaging.models import (
    ACKNOWLEDGEMENT_TEXT_MAX_LENGTH,
    BODY_MAX_LENGTH,
    BORDER_CROSSING_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    AcknowledgementNote,
    Category,
    HandlingCode,
    InfoCredibility,
    Item,
    Priority,
    SourceReliability,
)
from messaging.models.hits import HIT_REFERENCE_LENGTH
from messaging.selectors.filters import ItemFilter

# --- the inbox -----------------------------------------------------------------------------------------------------


class _ReadStateSelect(forms.NullBooleanSelect):
    """The API's ``unread`` filter (true/false), with words a reader understands."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs)
        self.choices = [("unknown", _("Read and unread")), ("true", _("Unread only")), ("false", _("Read only"))]


class InboxFilter(ItemFilter):
    """The API's item filters (same names, same meaning), with the portal's labels and a border crossing search."""

    border_crossing = django_filters.CharFilter(lookup_expr="icontains", max_length=BORDER_CROSSING_MAX_LENGTH)

    # Shown in this order; the API's other filters (created_after, created_before) still work in the address.
    shown = ("priority", "category", "originator_country", "border_crossing", "unread", "status")

    _LABELS = {
        "priority": pgettext_lazy("field label", "Priority"),
        "category": _("Category"),
        "originator_country": _("From country"),
        "border_crossing": _("Border crossing"),
        "unread": _("Read or not"),
        "status": _("Status"),
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, label in self._LABELS.items():
            self.filters[name].label = label
        for name in ("priority", "category", "originator_country", "status"):
            self.filters[name].extra["empty_label"] = _("Any")
        self.filters["unread"].extra["widget"] = _ReadStateSelect
        self.filters["border_crossing"].extra["widget"] = forms.TextInput(attrs={"list": "crossings"})

    def used(self) -> dict[str, str]:
        """The filters given a value, by name: what the inbox shows as active and records."""
        data = self.form.cleaned_data if self.is_bound and self.form.is_valid() else {}
        return {name: str(value) for name, value in data.items() if value not in (None, "", [])}

    def visible_fields(self) -> list[forms.BoundField]:
        return [self.form[name] for name in self.shown]


# --- composing -----------------------------------------------------------------------------------------------------


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files from one input (Django's documented recipe); an empty list when none."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data if item]
        return [single(data, initial)] if data else []


def _agency_choices(agencies: Iterable[Agency]) -> list[tuple[str, list[tuple[int, str]]]]:
    """Agencies grouped under their country's name, for grouped checkboxes."""
    groups: dict[str, list[tuple[int, str]]] = {}
    for agency in agencies:
        label = CountryCode(agency.country_id).label if agency.country_id in CountryCode.values else agency.country_id
        groups.setdefault(str(label), []).append((agency.pk, f"{agency.short_name}: {agency.name}"))
    return list(groups.items())


def _usernames(text: str) -> list[str]:
    return sorted({name for name in re.split(r"[\s,;]+", text or "") if name})


class ComposeForm(forms.Form):
    """A new item. The service checks everything again; this form gives the errors a person can fix before that."""

    title = forms.CharField(label=_("Title"), max_length=TITLE_MAX_LENGTH)
    body = forms.CharField(
        label=_("Text"), max_length=BODY_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 8}), strip=False
    )
    language = forms.ChoiceField(label=_("Written in"), choices=())
    category = forms.ChoiceField(label=_("Category"), choices=Category.choices)
    priority = forms.ChoiceField(
        label=pgettext_lazy("field label", "Priority"),
        choices=Priority.choices,
        initial=Priority.ROUTINE,
        widget=forms.RadioSelect,
    )
    flash_confirmed = forms.BooleanField(
        label=_(
            "I confirm this is FLASH: every agency it reaches must acknowledge it at once, and it escalates if not."
        ),
        required=False,
    )
    source_reliability = forms.ChoiceField(label=_("Source reliability"), choices=SourceReliability.choices)
    info_credibility = forms.TypedChoiceField(
        label=_("Information credibility"), choices=InfoCredibility.choices, coerce=int
    )
    handling_code = forms.ChoiceField(
        label=_("Handling code"),
        choices=HandlingCode.choices,
        initial=HandlingCode.AMBER,
        help_text=_(
            "Who recipients may share it with (Traffic Light Protocol): inside their own country as the code allows; "
            "sharing with another country always needs your consent."
        ),
    )
    border_crossing = forms.CharField(
        label=_("Border crossing"),
        max_length=BORDER_CROSSING_MAX_LENGTH,
        required=False,
        widget=forms.TextInput(attrs={"list": "crossings"}),
    )
    review_date = forms.DateField(
        label=_("Review date"),
        help_text=_("After this date the item expires and its keys are destroyed."),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    countries = forms.MultipleChoiceField(
        label=_("Release to countries"),
        choices=CountryCode.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Your own country is always included. Nobody else sees the item."),
    )
    agencies = forms.TypedMultipleChoiceField(
        label=_("Only these agencies"),
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_(
            "Optional. Within a country, only the agencies ticked here see the item; none ticked: all of them."
        ),
    )
    named_users = forms.CharField(
        label=_("Also named people"),
        required=False,
        max_length=2000,
        help_text=_("Optional usernames, separated by commas, who need to know (their country must be released)."),
    )
    attachments = MultipleFileField(label=_("Attachments"), required=False)
    # Never a default: the originator says, for each item, whether others may learn that it holds an identifier.
    discoverable = forms.TypedChoiceField(
        label=_("Discoverable"),
        choices=[("yes", _("Yes: officers who cannot read it may learn it exists and ask us")), ("no", _("No"))],
        coerce=lambda value: value == "yes",
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose whether the item is discoverable.")},
        help_text=_(
            "Discoverable: an officer who checks an identifier this item holds learns only that your agency has "
            "something on it, and may ask you. You are told of every such hit. A TLP:RED item never is."
        ),
    )

    def __init__(
        self, *args: Any, own_country: str, agencies: QuerySet[Agency], border_crossing: str = "", **kwargs: Any
    ):
        super().__init__(*args, **kwargs)
        self.own_country = own_country
        self.fields["language"].choices = settings.LANGUAGES
        self.fields["agencies"].choices = _agency_choices(agencies)
        self.initial.setdefault("countries", [own_country])
        self.initial.setdefault("border_crossing", border_crossing)
        self.initial.setdefault("review_date", timezone.localdate() + timedelta(days=90))

    def clean_countries(self) -> list[str]:
        countries = self.cleaned_data["countries"]
        if self.own_country not in countries:
            raise forms.ValidationError(_("The release must include your own country."))
        return countries

    def clean_named_users(self) -> list[str]:
        return _usernames(self.cleaned_data.get("named_users", ""))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("priority") == Priority.FLASH and not data.get("flash_confirmed"):
            self.add_error(
                "flash_confirmed", _("Tick the confirmation to post a FLASH item, or choose another priority.")
            )
        if data.get("discoverable") is True and data.get("handling_code") == HandlingCode.RED:
            self.add_error(
                "discoverable", _("A TLP:RED item is never discoverable: choose No, or another handling code.")
            )
        return data

    def typed_again(self, **options: Any) -> ComposeForm:
        """An unjudged form showing what was typed into this bound one (files aside): the page re-rendered to add an
        entity row must not greet the officer with errors about fields not filled in yet."""
        typed = {
            name: field.widget.value_from_datadict(self.data, self.files, self.add_prefix(name))
            for name, field in self.fields.items()
            if name != "attachments"
        }
        return ComposeForm(initial=typed, **options)

    def service_fields(self) -> dict[str, Any]:
        """The cleaned input as ``item_create`` takes it."""
        data = self.cleaned_data
        return {
            name: data[name]
            for name in (
                "title",
                "body",
                "language",
                "category",
                "priority",
                "source_reliability",
                "info_credibility",
                "handling_code",
                "border_crossing",
                "review_date",
                "countries",
                "agencies",
                "named_users",
                "discoverable",
            )
        }


def add_service_errors(form: forms.Form, fields: dict[str, Sequence[str]], summary: str) -> None:
    """A service's per-field problems (``InvalidInput.extra["fields"]``) shown on the form's own fields."""
    for name, problems in (fields or {}).items():
        target = name if name in form.fields else None
        for problem in problems or [summary]:
            form.add_error(target, str(problem))
    if not fields:
        form.add_error(None, summary)


# --- acting on an item ---------------------------------------------------------------------------------------------


class AcknowledgeForm(forms.Form):
    note = forms.ChoiceField(
        label=_("What your agency is doing"),
        choices=[("", _("No note")), *AcknowledgementNote.choices],
        required=False,
    )
    note_text = forms.CharField(
        label=_("Message to the originator"),
        max_length=ACKNOWLEDGEMENT_TEXT_MAX_LENGTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Optional. Stored encrypted like the item."),
    )


class AttachmentForm(forms.Form):
    file = forms.FileField(label=_("File"))


class WithdrawForm(forms.Form):
    confirm = forms.BooleanField(
        label=_("I understand: every recipient loses this item at once, and this cannot be undone."),
        error_messages={"required": _("Tick the confirmation to withdraw the item.")},
    )


class NarrowForm(forms.Form):
    """The release as it is, to untick: countries, agency restrictions and named people. It can only narrow."""

    countries = forms.MultipleChoiceField(label=_("Countries"), widget=forms.CheckboxSelectMultiple, required=False)
    agencies = forms.TypedMultipleChoiceField(
        label=_("Only these agencies"),
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Within a country, only ticked agencies keep the item; none ticked: all of them."),
    )
    named_users = forms.MultipleChoiceField(
        label=_("Named people"), widget=forms.CheckboxSelectMultiple, required=False
    )

    def __init__(
        self, *args: Any, item: Item, release: dict[str, list[Any]], agencies: QuerySet[Agency], **kwargs: Any
    ):
        super().__init__(*args, **kwargs)
        self.item = item
        countries = release["countries"]
        self.fields["countries"].choices = [
            (code, CountryCode(code).label if code in CountryCode.values else code) for code in countries
        ]
        self.fields["agencies"].choices = _agency_choices(agencies.filter(country_id__in=countries))
        self.fields["named_users"].choices = [(name, name) for name in release["named_users"]]
        self.initial = {
            "countries": countries,
            "agencies": [agency["id"] for agency in release["agencies"]],
            "named_users": release["named_users"],
        }

    def clean_countries(self) -> list[str]:
        countries = self.cleaned_data["countries"]
        if self.item.originator_country not in countries:
            raise forms.ValidationError(_("Your own country stays: to remove the item for everyone, withdraw it."))
        return countries

    def changes(self) -> dict[str, list[Any]]:
        """Only what differs from the release as it was: ``item_change`` takes these as the complete new lists."""
        changed: dict[str, list[Any]] = {}
        for name in ("countries", "agencies", "named_users"):
            before = {str(value) for value in self.initial[name]}
            after = {str(value) for value in self.cleaned_data[name]}
            if before != after:
                changed[name] = list(self.cleaned_data[name])
        return changed


# --- statistics ----------------------------------------------------------------------------------------------------

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def _month(text: str) -> date:
    match = _MONTH.match(text or "")
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 2000:
        raise forms.ValidationError(_("A month as YYYY-MM."))
    return date(int(match.group(1)), int(match.group(2)), 1)


class MonthField(forms.CharField):
    widget = forms.TextInput(attrs={"type": "month", "placeholder": "YYYY-MM"})

    def to_python(self, value: Any) -> date | None:  # type: ignore[override]
        value = super().to_python(value)
        return _month(value) if value else None

    def prepare_value(self, value: Any) -> Any:
        return value.strftime("%Y-%m") if isinstance(value, date) else value


def months_back(today: date, count: int) -> date:
    """The first day of the month ``count`` months before ``today``'s."""
    index = today.year * 12 + today.month - 1 - count
    return date(index // 12, index % 12 + 1, 1)


class StatisticsPeriodForm(forms.Form):
    since = MonthField(label=_("From month"), required=False)
    until = MonthField(label=_("To month"), required=False)

    MAX_MONTHS = 36

    def __init__(self, data: Any = None, **kwargs: Any) -> None:
        # The last twelve months unless asked otherwise, filled in so the page shows the period it counts.
        if data is not None:
            data = data.copy()
            this_month = timezone.now().date().replace(day=1)
            data["until"] = data.get("until") or this_month.strftime("%Y-%m")
            if not data.get("since"):
                try:
                    until = _month(data["until"])
                except forms.ValidationError:
                    until = this_month
                data["since"] = months_back(until, 11).strftime("%Y-%m")
        super().__init__(data, **kwargs)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since is None or until is None:
            return data
        if since > until:
            raise forms.ValidationError(_("The first month must not be after the last."))
        if (until.year - since.year) * 12 + until.month - since.month >= self.MAX_MONTHS:
            raise forms.ValidationError(_("At most %(months)s months at a time.") % {"months": self.MAX_MONTHS})
        data["since"], data["until"] = since, until
        return data


# --- sharing: forwarding, consent requests and requests for information (messaging.portal.sharing_views) ---
# Kept together, with their own imports, so the item forms above and these can change without touching each other.

from datetime import datetime, time  # noqa: E402 - with the forms they serve
from zoneinfo import ZoneInfo  # noqa: E402

from agencies.models import Office  # noqa: E402
from messaging.models import (  # noqa: E402
    CONSENT_TEXT_MAX_LENGTH,
    FORWARD_REASON_MAX_LENGTH,
    RFI_SUBJECT_MAX_LENGTH,
    RFI_TEXT_MAX_LENGTH,
    ConsentStatus,
    RfiStatus,
)


def _country_label(code: str) -> str:
    return str(CountryCode(code).label) if code in CountryCode.values else code


class _RecipientChoiceField(forms.ChoiceField):
    """One select for "an agency, or one of its offices": values ``a<id>`` and ``o<id>``, grouped by agency or
    country, so the office always belongs to the agency (no second select to keep in step without JavaScript)."""

    def recipient(self, value: str) -> tuple[int, int | None]:
        """(agency id, office id or None) of a value this field accepted."""
        return self.targets[value]

    def set_targets(self, groups: list[tuple[str, list[tuple[str, str, int, int | None]]]]) -> None:
        self.targets: dict[str, tuple[int, int | None]] = {}
        choices: list[Any] = [("", _("Choose…"))]
        for group, options in groups:
            if not options:
                continue
            choices.append((group, [(value, label) for value, label, _agency, _office in options]))
            for value, _label, agency_id, office_id in options:
                self.targets[value] = (agency_id, office_id)
        self.choices = choices


class ForwardForm(forms.Form):
    """Forward an item inside the viewer's own country: the choices already follow the item's handling code; the
    service judges again and refuses with the rule broken."""

    recipient = _RecipientChoiceField(label=_("Forward to"))
    reason = forms.CharField(
        label=_("Why they need it"),
        max_length=FORWARD_REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        strip=False,
        help_text=_("Stored encrypted like the item: only your agency and the originating agency read it."),
    )

    def __init__(
        self,
        *args: Any,
        agencies: Iterable[Agency],
        offices: Iterable[Office],
        own_agency_id: int,
        own_office_id: int | None,
        whole_agencies: bool,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        by_agency: dict[int, list[Office]] = {}
        for office in offices:
            if office.pk != own_office_id:
                by_agency.setdefault(office.agency_id, []).append(office)
        groups = []
        for agency in agencies:
            options = []
            # Your own agency has the item already: only one of its offices can be a recipient.
            if whole_agencies and agency.pk != own_agency_id:
                options.append((f"a{agency.pk}", str(_("%(agency)s: the whole agency") % {"agency": agency.short_name}),
                                agency.pk, None))  # fmt: skip
            options += [(f"o{office.pk}", office.name, agency.pk, office.pk) for office in by_agency.get(agency.pk, [])]
            groups.append((f"{agency.short_name}: {agency.name}", options))
        self.fields["recipient"].set_targets(groups)

    def has_choices(self) -> bool:
        return bool(self.fields["recipient"].targets)

    def service_fields(self) -> dict[str, Any]:
        """The cleaned input as ``item_forward`` takes it."""
        agency_id, office_id = self.fields["recipient"].recipient(self.cleaned_data["recipient"])
        return {"to_agency": agency_id, "to_office": office_id, "reason": self.cleaned_data["reason"]}


class ConsentRequestForm(forms.Form):
    """Ask the originating agency's consent to share an item with a country outside its release."""

    target_country = forms.ChoiceField(label=_("Share with"))
    target_agency = forms.TypedChoiceField(
        label=_("Only this agency there"),
        coerce=int,
        required=False,
        empty_value=None,
        help_text=_("Optional. Without one, the item reaches that country as the routing rules decide."),
    )
    justification = forms.CharField(
        label=_("Why they need it"),
        max_length=CONSENT_TEXT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4}),
        strip=False,
        help_text=_("Stored encrypted like the item: only your agency and the originating agency read it."),
    )

    def __init__(self, *args: Any, countries: Sequence[str], agencies: Iterable[Agency], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.countries = list(countries)
        self.fields["target_country"].choices = [("", _("Choose…"))] + [
            (code, _country_label(code)) for code in countries
        ]
        wanted = set(countries)
        self.agency_countries = {agency.pk: agency.country_id for agency in agencies if agency.country_id in wanted}
        self.fields["target_agency"].choices = [("", _("Any agency")), *_agency_choices(
            agency for agency in agencies if agency.country_id in wanted
        )]  # fmt: skip

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        agency = data.get("target_agency")
        if (
            agency is not None
            and data.get("target_country")
            and self.agency_countries.get(agency) != data.get("target_country")
        ):
            self.add_error("target_agency", _("Choose an agency of the country you share with, or none."))
        return data


class ConsentDeclineForm(forms.Form):
    reason = forms.CharField(
        label=_("Why not"),
        max_length=CONSENT_TEXT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        strip=False,
        help_text=_("Required. Stored encrypted: only the two agencies read it."),
    )


class ConsentListFilter(forms.Form):
    status = forms.ChoiceField(label=_("Status"), choices=[("", _("Any")), *ConsentStatus.choices], required=False)


RFI_SENT, RFI_RECEIVED = "sent", "received"


class RfiListFilter(forms.Form):
    direction = forms.ChoiceField(
        label=_("Sent or received"),
        choices=[("", _("Both")), (RFI_SENT, _("Sent by your agency")), (RFI_RECEIVED, _("Received by your agency"))],
        required=False,
    )
    status = forms.ChoiceField(label=_("Status"), choices=[("", _("Any")), *RfiStatus.choices], required=False)

    def used(self) -> dict[str, str]:
        data = self.cleaned_data if self.is_valid() else {}
        return {name: value for name, value in data.items() if value}


class RfiForm(forms.Form):
    """A new request for information. The service checks everything again."""

    target = _RecipientChoiceField(
        label=_("Ask"),
        help_text=_("Your office's counterparts across the border come first; any agency of another country follows."),
    )
    priority = forms.ChoiceField(
        label=pgettext_lazy("field label", "Priority"),
        choices=Priority.choices,
        initial=Priority.ROUTINE,
        widget=forms.RadioSelect,
    )
    due_date = forms.DateField(
        label=_("Answer needed by"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("Optional: the end of that day. Without a date, the usual time for the priority applies."),
    )
    subject = forms.CharField(label=_("Subject"), max_length=RFI_SUBJECT_MAX_LENGTH)
    question = forms.CharField(
        label=_("Question"), max_length=RFI_TEXT_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 6}), strip=False
    )
    item = forms.UUIDField(required=False, widget=forms.HiddenInput)
    # A request opened from a hit goes to the agency holding the item hit: the reference replaces the choice of target.
    hit_reference = forms.CharField(required=False, max_length=HIT_REFERENCE_LENGTH, widget=forms.HiddenInput)

    def __init__(
        self,
        *args: Any,
        counterparts: Iterable[Office],
        agencies: Iterable[Agency],
        own_country: str,
        timezone_name: str | None,
        hit_reference: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.timezone_name = timezone_name
        self.hit_reference = hit_reference
        if hit_reference:
            del self.fields["target"]
            self.initial["hit_reference"] = hit_reference
            return
        counterpart_options = [
            (f"o{office.pk}", f"{office.name} ({office.agency.short_name}, {_country_label(office.agency.country_id)})",
             office.agency_id, office.pk)
            for office in counterparts
            if office.agency.country_id != own_country
        ]  # fmt: skip
        groups: list[tuple[str, list[tuple[str, str, int, int | None]]]] = [
            (str(_("Your office's counterparts")), counterpart_options)
        ]
        by_country: dict[str, list[tuple[str, str, int, int | None]]] = {}
        for agency in agencies:
            if agency.country_id != own_country:
                by_country.setdefault(agency.country_id, []).append(
                    (f"a{agency.pk}", f"{agency.short_name}: {agency.name}", agency.pk, None)
                )
        groups += [(_country_label(code), options) for code, options in by_country.items()]
        self.fields["target"].set_targets(groups)
        if counterpart_options and not self.is_bound:
            self.initial.setdefault("target", counterpart_options[0][0])

    def service_fields(self) -> dict[str, Any]:
        """The cleaned input as ``rfi_create`` takes it; a due date is the end of that day where the viewer works."""
        data = self.cleaned_data
        if self.hit_reference:
            agency_id, office_id = None, None
        else:
            agency_id, office_id = self.fields["target"].recipient(data["target"])
        due_at = None
        if data.get("due_date"):
            zone = ZoneInfo(self.timezone_name) if self.timezone_name else timezone.get_current_timezone()
            due_at = datetime.combine(data["due_date"], time(23, 59), tzinfo=zone)
        return {
            "target_agency": agency_id,
            "target_office": office_id,
            "item_id": data.get("item"),
            "hit_reference": self.hit_reference,
            "subject": data["subject"],
            "question": data["question"],
            "priority": data["priority"],
            "due_at": due_at,
        }


class RfiReplyForm(forms.Form):
    body = forms.CharField(
        label=_("Your reply"), max_length=RFI_TEXT_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 4}), strip=False
    )
    # A select offering the viewer's agency's items released to the other side; any id is accepted here and judged by
    # the service, so posting a reply does not have to open those titles again.
    item = forms.CharField(
        label=_("Attach an item your agency posted"),
        required=False,
        max_length=64,
        widget=forms.Select,
        help_text=_("Optional. Only active items already released to the other side are offered."),
    )

    def __init__(self, *args: Any, items: Sequence[tuple[str, str]] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["item"].widget.choices = [("", _("No item")), *items]
