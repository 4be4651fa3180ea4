"""The portal's pages for sharing beyond the inbox: forwarding inside one's own country, consent requests (the
third-party rule) and requests for information. Thin views over ``messaging.sharing`` and
``messaging.rfis.services``.

Every page goes through ``agencies.portal.portal_view`` (signed in with both factors, a member, domain errors as
pages). A consent request or a request for information the viewer's agency is not a side of answers 404, exactly like
one that does not exist; a page the viewer's role does not allow answers 403. Every read, list and act is recorded by
the service that does it. Pages work without JavaScript: every act is a plain POST form with its CSRF token, answered
by a redirect (or by the same page with the form's errors).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from django.contrib import messages
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from agencies.models import Membership
from agencies.portal import portal_view
from agencies.selectors import agencies_visible_to, countries_visible_to, offices_visible_to
from agencies.templatetags.member_tags import country_name
from isn.errors import Conflict, InvalidInput
from isn.errors import PermissionDenied as DomainPermissionDenied
from isn.paging import keyset_page
from messaging.core.people import content_membership
from messaging.items.lifecycle import item_list
from messaging.models import (
    ConsentRequest,
    ConsentStatus,
    HandlingCode,
    Item,
    ItemStatus,
    Rfi,
    RfiStatus,
)
from messaging.portal.forms import (
    RFI_RECEIVED,
    RFI_SENT,
    ConsentDeclineForm,
    ConsentListFilter,
    ConsentRequestForm,
    ForwardForm,
    RfiForm,
    RfiListFilter,
    RfiReplyForm,
    add_service_errors,
)
from messaging.rfis.services import (
    hit_received,
    rfi_close,
    rfi_create,
    rfi_list,
    rfi_read,
    rfi_reply,
    rfis_for_listing,
    rfis_in_direction,
)
from messaging.selectors.items import (
    is_originator,
    item_get,
    own_items_released_to,
    released_countries,
)
from messaging.selectors.sharing import consent_get, consents_visible_to, forwards_visible_to
from messaging.sharing.consents import (
    DECIDING_ROLES,
    consent_cancel,
    consent_decline,
    consent_grant,
    consent_list,
    consent_read,
    consent_request_create,
    decision_refusal,
    known_holders,
    may_decide,
)
from messaging.sharing.forwards import item_forward, item_forwards_view

CONSENTS_PER_SECTION = 50
RFIS_PER_PAGE = 50
ATTACHABLE_ITEMS = 20


def content_member(request: HttpRequest, refusal: str) -> Membership:
    """The viewer's membership when they may hold content (officers, supervisors...), or a 403 saying ``refusal``:
    auditors and admins read no items."""
    membership = content_membership(request.user)
    if membership is None:
        raise DomainPermissionDenied(refusal)
    return membership


def _membership(request: HttpRequest) -> Membership:
    return content_member(request, "Only officers of a member agency share items and ask questions.")


# --- the item page's sharing block (messaging/_item_sharing.html, filled by the item page's view) ---


def forward_rule(item: Item, country: str) -> str:
    """What the item's handling code allows, in words (shown above the forward form and when a forward is refused)."""
    if item.handling_code == HandlingCode.RED:
        return _(
            "TLP:RED: for its named recipients only, never forwarded. Ask the originating agency if others need it."
        )
    if item.handling_code == HandlingCode.AMBER_STRICT:
        return _("TLP:AMBER+STRICT: it may be forwarded only to offices of your own agency.")
    return _(
        "%(code)s: it may be forwarded to any agency or office of %(country)s. Another country gets it only with "
        "the originating agency's consent."
    ) % {"code": item.get_handling_code_display(), "country": country_name(country)}


def forward_form(viewer: AbstractBaseUser, membership: Membership, item: Item, data: Any = None) -> ForwardForm | None:
    """The forward form, its choices following the handling code: None when the code allows no forward at all."""
    if item.handling_code == HandlingCode.RED:
        return None
    strict = item.handling_code == HandlingCode.AMBER_STRICT
    agencies = (
        agencies_visible_to(viewer)
        .filter(country_id=membership.agency.country_id)
        .exclude(pk=item.originator_agency_id)
        .order_by("short_name")
    )
    if strict:
        agencies = agencies.filter(pk=membership.agency_id)
    agencies = list(agencies)
    offices = (
        offices_visible_to(viewer)
        .prefetch_related(None)
        .filter(agency_id__in=[agency.pk for agency in agencies])
        .order_by("name")
    )
    return ForwardForm(
        data,
        agencies=agencies,
        offices=offices,
        own_agency_id=membership.agency_id,
        own_office_id=membership.office_id,
        whole_agencies=not strict,
    )


def consent_form(viewer: AbstractBaseUser, membership: Membership, item: Item, data: Any = None) -> ConsentRequestForm:
    """Ask consent for any country but those the viewer knows hold the item (optionally one of its agencies): for a
    recipient every other country, released or not, as the service takes them all alike."""
    known = known_holders(viewer, item, membership)
    countries = [code for code in countries_visible_to(viewer).values_list("code", flat=True) if code not in known]
    agencies = agencies_visible_to(viewer).filter(country_id__in=countries).order_by("country_id", "short_name")
    return ConsentRequestForm(data, countries=countries, agencies=agencies)


def item_sharing(viewer: AbstractBaseUser | AnonymousUser, item: Item) -> dict[str, Any]:
    """What the item page's sharing block shows this viewer, who has just opened ``item`` (``item_read``)."""
    membership = content_membership(viewer)
    if membership is None:
        return {"member": False}
    originator = is_originator(viewer, item)
    active = item.status == ItemStatus.ACTIVE
    forwards: list[Any] = []
    # The reasons are sealed: opening them is a recorded read, so only when there is something to open.
    if forwards_visible_to(viewer, item=item).exists():
        forwards = item_forwards_view(actor=viewer, item_id=item.pk)
    consents = list(consents_visible_to(viewer).filter(item=item)[:CONSENTS_PER_SECTION])
    if consents:  # listing them is a read like any list of consent requests, and recorded as one
        consent_list(actor=viewer, consents=consents)
    form = forward_form(viewer, membership, item) if active else None
    asking = consent_form(viewer, membership, item) if active and not originator else None
    return {
        "member": True,
        "country": membership.agency.country_id,
        "is_originator": originator,
        "active": active,
        "forward_rule": forward_rule(item, membership.agency.country_id),
        "forward_form": form if form is not None and form.has_choices() else None,
        "consent_form": asking if asking is not None and asking.countries else None,
        "forwards": forwards,
        "consents": consents,
    }


# --- forwarding ----------------------------------------------------------------------------------------------------


def _service_fields(error: InvalidInput, names: dict[str, str | None]) -> dict[str, list[str]]:
    """A service's per-field problems under the form's own field names (None: the form as a whole)."""
    fields: dict[str, list[str]] = {}
    for name, problems in (error.extra.get("fields") or {}).items():
        fields.setdefault(names.get(name, name) or "__all__", []).extend(str(problem) for problem in problems)
    return fields


@portal_view(("GET", "POST"))
def item_forward_view(request: HttpRequest, item_id: Any) -> HttpResponse:
    """Forward an item inside the viewer's own country, as its handling code allows."""
    membership = _membership(request)
    item = item_get(request.user, item_id=item_id)
    form = forward_form(request.user, membership, item, request.POST if request.method == "POST" else None)
    rule = forward_rule(item, membership.agency.country_id)
    if request.method == "POST" and form is None:
        messages.error(request, rule)
        return redirect("portal:item", item.pk)
    if request.method == "POST" and form is not None and form.is_valid():
        try:
            item_forward(actor=request.user, item_id=item.pk, **form.service_fields())
        except DomainPermissionDenied as error:
            form.add_error(None, rule)
            form.add_error(None, error.message)
        except InvalidInput as error:
            add_service_errors(
                form, _service_fields(error, {"to_agency": "recipient", "to_office": "recipient"}), error.message
            )
        except Conflict as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, _("Forwarded. They are being told now; you and the originator see it below."))
            return redirect("portal:item", item.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "messaging/sharing/forward.html", {"item": item, "form": form, "rule": rule}, status=status)


# --- consent requests ----------------------------------------------------------------------------------------------


@portal_view(("GET", "POST"))
def item_consent_view(request: HttpRequest, item_id: Any) -> HttpResponse:
    """Ask the originating agency's consent to share an item with a country outside its release."""
    membership = _membership(request)
    item = item_get(request.user, item_id=item_id)
    form = consent_form(request.user, membership, item, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            view = consent_request_create(actor=request.user, item_id=item.pk, **form.cleaned_data)
        except InvalidInput as error:
            add_service_errors(form, _service_fields(error, {}), error.message)
        except Conflict as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, _("Consent requested. The originating agency's supervisors are asked to decide."))
            return redirect("portal:consent", view.consent.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "messaging/consents/ask.html", {"item": item, "form": form}, status=status)


def _unique(consents: Sequence[ConsentRequest]) -> list[ConsentRequest]:
    """Each request once, in order (an agency may ask about its own item: then it is on both sides)."""
    return list(dict.fromkeys(consents))


@portal_view(("GET",))
def consents_page(request: HttpRequest) -> HttpResponse:
    """Consent requests waiting for the viewer's decision, about the agency's items, and asked by the agency."""
    membership = _membership(request)
    agency = membership.agency_id
    visible = consents_visible_to(request.user)
    filter_form = ConsentListFilter(request.GET)
    chosen = visible
    if filter_form.is_valid() and filter_form.cleaned_data["status"]:
        chosen = visible.filter(status=filter_form.cleaned_data["status"])
    decider = membership.role in DECIDING_ROLES
    waiting: list[ConsentRequest] = []
    if decider:
        waiting = list(
            visible.filter(status=ConsentStatus.PENDING, item__originator_agency_id=agency).exclude(
                requester_user=request.user  # four eyes: someone else decides what they asked for
            )[:CONSENTS_PER_SECTION]
        )
    about_ours = list(
        chosen.filter(item__originator_agency_id=agency).exclude(pk__in=[c.pk for c in waiting])[:CONSENTS_PER_SECTION]
    )
    asked = list(chosen.filter(requester_agency_id=agency)[:CONSENTS_PER_SECTION])
    consent_list(actor=request.user, consents=_unique([*waiting, *about_ours, *asked]))
    context = {
        "decider": decider,
        "waiting": waiting,
        "about_ours": about_ours,
        "asked": asked,
        "filter": filter_form,
        "limit": CONSENTS_PER_SECTION,
    }
    return render(request, "messaging/consents/list.html", context)


def _consent_page(
    request: HttpRequest, consent_id: Any, decline_form: ConsentDeclineForm | None = None
) -> HttpResponse:
    membership = _membership(request)
    view = consent_read(actor=request.user, consent_id=consent_id)
    consent = view.consent
    pending = consent.status == ConsentStatus.PENDING
    deciding = may_decide(membership, consent)
    originator = membership.agency_id == consent.item.originator_agency_id
    context = {
        "view": view,
        "consent": consent,
        "item": consent.item,
        "is_requester": membership.agency_id == consent.requester_agency_id,
        "is_originator": originator,
        "can_decide": pending and deciding,
        "can_cancel": pending and membership.agency_id == consent.requester_agency_id,
        # For the originating agency only, which sees its release anyway: the asker could not know.
        "already_released": originator and consent.target_country_id in released_countries(consent.item),
        "decline_form": decline_form or ConsentDeclineForm(),
    }
    return render(request, "messaging/consents/detail.html", context, status=400 if decline_form else 200)


@portal_view(("GET",))
def consent_detail(request: HttpRequest, consent_id: Any) -> HttpResponse:
    """One consent request, its justification (and decline reason) opened for its two sides (recorded)."""
    return _consent_page(request, consent_id)


@portal_view(("POST",))
def consent_approve(request: HttpRequest, consent_id: Any) -> HttpResponse:
    """A supervisor or national focal point of the originating agency approves: the item is shared at once."""
    _membership(request)
    try:
        view = consent_grant(actor=request.user, consent_id=consent_id)
    except Conflict as error:
        messages.error(request, error.message)
    else:
        country = country_name(view.consent.target_country_id)
        messages.success(request, _("Approved. The item is being shared with %(country)s now.") % {"country": country})
    return redirect("portal:consent", consent_id)


@portal_view(("POST",))
def consent_decline_view(request: HttpRequest, consent_id: Any) -> HttpResponse:
    """Decline, with a reason the requesting agency reads."""
    membership = _membership(request)
    # Refused before the reason is judged: someone who may not decide learns nothing from the form's errors.
    consent = consent_get(request.user, consent_id=consent_id)
    refusal = decision_refusal(membership, consent)
    if refusal:
        raise DomainPermissionDenied(refusal)
    form = ConsentDeclineForm(request.POST)
    if not form.is_valid():
        return _consent_page(request, consent_id, decline_form=form)
    try:
        consent_decline(actor=request.user, consent_id=consent_id, reason=form.cleaned_data["reason"])
    except InvalidInput as error:
        add_service_errors(form, _service_fields(error, {}), error.message)
        return _consent_page(request, consent_id, decline_form=form)
    except Conflict as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("Declined. The requesting agency is told, with your reason."))
    return redirect("portal:consent", consent_id)


@portal_view(("POST",))
def consent_cancel_view(request: HttpRequest, consent_id: Any) -> HttpResponse:
    """The requesting agency withdraws its pending request."""
    _membership(request)
    try:
        consent_cancel(actor=request.user, consent_id=consent_id)
    except Conflict as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("Your request is cancelled."))
    return redirect("portal:consent", consent_id)


# --- requests for information ----------------------------------------------------------------------------------------


@portal_view(("GET",))
def rfis_page(request: HttpRequest) -> HttpResponse:
    """Requests for information the viewer's agency sent and received, newest first (the list is recorded)."""
    _membership(request)
    filter_form = RfiListFilter(request.GET)
    rfis = rfis_for_listing(request.user)
    used = filter_form.used()
    if used.get("direction"):
        rfis = rfis_in_direction(rfis, request.user, used["direction"])
    if used.get("status"):
        rfis = rfis.filter(status=used["status"])
    page, next_cursor = keyset_page(rfis, request.GET.get("before"), RFIS_PER_PAGE)
    context = {
        "summaries": rfi_list(actor=request.user, rfis=page),
        "filter": filter_form,
        "filters_used": used,
        "next_cursor": next_cursor,
        "is_first_page": not request.GET.get("before"),
        "sent": RFI_SENT,
        "received": RFI_RECEIVED,
    }
    return render(request, "messaging/rfis/list.html", context)


def _item_id(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


@portal_view(("GET", "POST"))
def rfi_new(request: HttpRequest) -> HttpResponse:
    """Ask another country's agency, or a counterpart office across the border, a question (optionally about an
    item: the other side sees only its id)."""
    membership = _membership(request)
    counterparts = []
    if membership.office_id is not None:
        office = offices_visible_to(request.user).filter(pk=membership.office_id).first()
        counterparts = list(office.counterparts.all()) if office is not None else []
    item_id = _item_id(request.GET.get("item"))
    # From a hit ("Ask them"): the reference must be one the viewer's agency received, else 404 and nothing else.
    reference = (request.POST.get("hit_reference") if request.method == "POST" else request.GET.get("hit")) or ""
    hit = hit_received(membership, reference) if reference.strip() else None
    form = RfiForm(
        request.POST if request.method == "POST" else None,
        counterparts=counterparts,
        agencies=agencies_visible_to(request.user).order_by("country_id", "short_name"),
        own_country=membership.agency.country_id,
        timezone_name=membership.agency.country.timezone,
        hit_reference=hit.reference if hit is not None else None,
        initial={"item": item_id} if item_id else {},
    )
    if request.method == "POST" and form.is_valid():
        try:
            content = rfi_create(actor=request.user, **form.service_fields())
        except InvalidInput as error:
            names = {"target_agency": "target", "target_office": "target", "due_at": "due_date", "item": None}
            add_service_errors(form, _service_fields(error, names), error.message)
        else:
            messages.success(request, _("Request sent. The other side is told now."))
            return redirect("portal:rfi", content.rfi.pk)
    about = form["item"].value() if form.is_bound else item_id
    context = {"form": form, "about": _item_id(str(about)) if about else None, "hit": hit}
    return render(request, "messaging/rfis/new.html", context, status=400 if form.is_bound else 200)


def _attachable_items(viewer: AbstractBaseUser, membership: Membership, rfi: Rfi) -> list[tuple[str, str]]:
    """The viewer's agency's active items already released to the other side, newest first, titles opened (one
    recorded list): what a reply may attach."""
    other_agency = rfi.target_agency if membership.agency_id == rfi.requester_agency_id else rfi.requester_agency
    items = list(own_items_released_to(viewer, other_agency)[:ATTACHABLE_ITEMS])
    if not items:
        return []
    return [
        (str(summary.item.pk), summary.title or str(summary.item.pk))
        for summary in item_list(actor=viewer, items=items)
    ]


def _rfi_detail_page(request: HttpRequest, rfi_id: Any, reply_form: RfiReplyForm | None = None) -> HttpResponse:
    membership = _membership(request)
    content = rfi_read(actor=request.user, rfi_id=rfi_id)
    rfi = content.rfi
    party = membership.agency_id in (rfi.requester_agency_id, rfi.target_agency_id)
    can_reply = party and rfi.status != RfiStatus.CLOSED
    if can_reply and reply_form is None:
        reply_form = RfiReplyForm(items=_attachable_items(request.user, membership, rfi))
    elif can_reply and reply_form is not None:
        chosen = reply_form["item"].value()
        reply_form.fields["item"].widget.choices = [
            *reply_form.fields["item"].widget.choices,
            *([(chosen, chosen)] if chosen else []),
        ]
    context = {
        "content": content,
        "rfi": rfi,
        "is_asker": membership.agency_id == rfi.requester_agency_id,
        "can_reply": can_reply,
        "can_close": membership.agency_id == rfi.requester_agency_id and rfi.status != RfiStatus.CLOSED,
        "reply_form": reply_form if can_reply else None,
        "sent": RFI_SENT,
    }
    status = 400 if reply_form is not None and reply_form.is_bound else 200
    return render(request, "messaging/rfis/detail.html", context, status=status)


@portal_view(("GET",))
def rfi_detail(request: HttpRequest, rfi_id: Any) -> HttpResponse:
    """A request for information and its thread, opened for the viewer's agency (recorded)."""
    return _rfi_detail_page(request, rfi_id)


@portal_view(("POST",))
def rfi_reply_view(request: HttpRequest, rfi_id: Any) -> HttpResponse:
    """Reply in the thread, optionally attaching an item the viewer's agency posted."""
    _membership(request)
    form = RfiReplyForm(request.POST)
    if form.is_valid():
        try:
            rfi_reply(
                actor=request.user, rfi_id=rfi_id, body=form.cleaned_data["body"], item_id=form.cleaned_data["item"]
            )
        except InvalidInput as error:
            add_service_errors(form, _service_fields(error, {}), error.message)
        except Conflict as error:
            messages.error(request, error.message)
            return redirect("portal:rfi", rfi_id)
        else:
            messages.success(request, _("Reply sent. The other side is told now."))
            return redirect("portal:rfi", rfi_id)
    return _rfi_detail_page(request, rfi_id, reply_form=form)


@portal_view(("POST",))
def rfi_close_view(request: HttpRequest, rfi_id: Any) -> HttpResponse:
    """The asking agency closes its request: no more replies."""
    _membership(request)
    try:
        rfi_close(actor=request.user, rfi_id=rfi_id)
    except Conflict as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("The request is closed."))
    return redirect("portal:rfi", rfi_id)
