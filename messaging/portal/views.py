"""The portal's pages for items, notifications and statistics: thin views over messaging's selectors and services.

Every page goes through ``agencies.portal.portal_view`` (signed in with both factors, a member, domain errors as
pages). An item the viewer may not see answers 404, exactly like one that does not exist; a page the viewer's role
does not allow answers 403. Every read, list and act is recorded by the service that does it. Pages work without
JavaScript: every act is a plain form with its CSRF token, answered by a redirect.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _

from agencies.models import Agency, Membership
from agencies.portal import portal_view
from agencies.selectors import agencies_visible_to, offices_visible_to
from isn.errors import Conflict, InvalidInput
from isn.paging import keyset_page
from isn.views import portal_url
from messaging.delivery.notifications import notification_list, notification_mark_read, notifications_for
from messaging.items.acknowledgement import AlreadyAcknowledged, item_acknowledge, item_deliveries_view
from messaging.items.attachments import attachment_add, attachment_download
from messaging.items.changes import item_change, item_withdraw
from messaging.items.hits import item_hits_view
from messaging.items.lifecycle import item_access_view, item_create, item_list, item_read
from messaging.matching.discovery import related_items
from messaging.models import Item, ItemStatus, Notification, NotificationKind, Priority
from messaging.portal.entities import entities_for_display, entity_formset
from messaging.portal.forms import (
    AcknowledgeForm,
    AttachmentForm,
    ComposeForm,
    InboxFilter,
    NarrowForm,
    StatisticsPeriodForm,
    WithdrawForm,
    add_service_errors,
)
from messaging.portal.sharing_views import (
    content_member,
    item_sharing,
)
from messaging.selectors.items import (
    agency_acknowledgement,
    flash_awaiting_acknowledgement,
    item_get_as_originator,
    item_release,
    items_for_listing,
)
from messaging.selectors.statistics import Period, statistics_scope
from messaging.statistics import Report, statistics_export, statistics_view

PAGE_SIZE = 50
PINNED_LIMIT = 20
ACCESS_PAGE_SIZE = 100


def _content_membership(request: HttpRequest) -> Membership:
    return content_member(request, "Only officers of a member agency read and post items.")


# --- the inbox -----------------------------------------------------------------------------------------------------


def _flash_awaiting(request: HttpRequest, membership: Membership) -> QuerySet[Item]:
    """Active FLASH items routed to the viewer's agency that it has not acknowledged yet: pinned on top of the inbox
    whatever the filters, so a filter can never hide one. Driven by the deliveries' partial index, not by items."""
    waiting = flash_awaiting_acknowledgement(request.user)
    return items_for_listing(request.user).filter(status=ItemStatus.ACTIVE, pk__in=waiting)


@portal_view(("GET",))
def inbox(request: HttpRequest) -> HttpResponse:
    """Items the viewer may read, newest first, FLASH awaiting the agency's acknowledgement pinned above."""
    membership = _content_membership(request)
    pinned_query = _flash_awaiting(request, membership)
    pinned = list(pinned_query.order_by("-created_at", "-pk")[:PINNED_LIMIT])
    filterset = InboxFilter(request.GET, queryset=items_for_listing(request.user), request=request)
    page: list[Item] = []
    next_cursor = None
    if filterset.is_valid():
        listed = filterset.qs.exclude(pk__in=[item.pk for item in pinned])
        page, next_cursor = keyset_page(listed, request.GET.get("before"), PAGE_SIZE)
    # One recorded list naming every item shown, pinned ones included; titles opened with the viewer's country key.
    summaries = item_list(actor=request.user, items=[*pinned, *page])
    context = {
        "pinned": summaries[: len(pinned)],
        "items": summaries[len(pinned) :],
        "filter": filterset,
        "filters_used": filterset.used(),
        "next_cursor": next_cursor,
        "is_first_page": not request.GET.get("before"),
        "crossings": _crossings(request),
    }
    return render(request, "messaging/inbox.html", context)


def _crossings(request: HttpRequest) -> list[str]:
    """The network's border crossings, offered as suggestions (a datalist: typing anything else still works)."""
    return sorted(
        set(offices_visible_to(request.user).exclude(border_crossing="").values_list("border_crossing", flat=True))
    )


# --- one item ------------------------------------------------------------------------------------------------------


def _acknowledgement_state(membership: Membership, item: Item) -> dict[str, Any]:
    """Whether the viewer's agency may acknowledge the item it has just read, and its acknowledgement if any.

    Called only after ``item_read`` opened the item for this viewer, and only about the viewer's own agency.
    """
    if membership.agency_id == item.originator_agency_id:
        return {"can_acknowledge": False, "acknowledgement": None}
    # An agency that can see an item may acknowledge it, routed yet or not (item_acknowledge).
    acknowledgement = agency_acknowledgement(item, agency_id=membership.agency_id)
    return {
        "can_acknowledge": acknowledgement is None and item.status == ItemStatus.ACTIVE,
        "acknowledgement": acknowledgement,
    }


@portal_view(("GET",))
def item_detail(request: HttpRequest, item_id: Any) -> HttpResponse:
    """One item opened for the viewer (recorded), with what they may do to it."""
    membership = _content_membership(request)
    content = item_read(actor=request.user, item_id=item_id)
    item = content.item
    originator = content.release is not None
    release_agencies = (content.release or {}).get("agencies", [])
    context = {
        "content": content,
        "entities": entities_for_display(content.entities),
        "item": item,
        "is_originator": originator,
        "is_active": item.status == ItemStatus.ACTIVE,
        "release_agencies": release_agencies,
        "acknowledge_form": AcknowledgeForm(),
        "attachment_form": AttachmentForm() if originator else None,
        **_acknowledgement_state(membership, item),
        "sharing": item_sharing(request.user, item),
        # "Also in 2 items you can read": other items sharing an identifier with this one.
        "related": related_items(request.user, item) if getattr(item, "has_entities", True) else [],
    }
    return render(request, "messaging/item.html", context)


@portal_view(("POST",))
def item_acknowledge_view(request: HttpRequest, item_id: Any) -> HttpResponse:
    """Acknowledge for the viewer's agency, then back to the item (a plain form: works without JavaScript)."""
    _content_membership(request)
    form = AcknowledgeForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("The acknowledgement was not stored: check the note."))
        return redirect("portal:item", item_id)
    try:
        item_acknowledge(actor=request.user, item_id=item_id, **form.cleaned_data)
    except AlreadyAcknowledged:
        messages.info(request, _("Your agency has already acknowledged this item."))
    except (InvalidInput, Conflict) as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("Acknowledged for your agency. The originator can see it now."))
    return redirect("portal:item", item_id)


@portal_view(("GET",))
def item_attachment(request: HttpRequest, item_id: Any, attachment_id: Any) -> HttpResponse:
    """One attachment, opened with the viewer's country's key (recorded); always a download, never shown inline."""
    _content_membership(request)
    file = attachment_download(actor=request.user, item_id=item_id, attachment_id=attachment_id)
    response = HttpResponse(file.content, content_type=file.content_type)
    response["Content-Disposition"] = content_disposition_header(True, file.filename)
    response["Cache-Control"] = "no-store"
    response["Content-Length"] = str(len(file.content))
    return response


def _upload_too_large(request: HttpRequest) -> bool:
    """Uploads are held in memory only (settings): a larger request arrives without its files, so say why."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    return not declared.isdigit() or int(declared) > settings.FILE_UPLOAD_MAX_MEMORY_SIZE


def _too_large_message() -> str:
    megabytes = settings.ISN_ATTACHMENT_MAX_BYTES / (1024 * 1024)
    return _("Attachments may add up to %(size).0f MB per upload. Attach larger sets one file at a time.") % {
        "size": megabytes
    }


@portal_view(("POST",))
def item_attach(request: HttpRequest, item_id: Any) -> HttpResponse:
    """The originator attaches one more file."""
    item = item_get_as_originator(request.user, item_id=item_id)
    form = AttachmentForm(request.POST, request.FILES)
    if _upload_too_large(request):
        messages.error(request, _too_large_message())
    elif not form.is_valid():
        messages.error(request, _("Choose a file to attach."))
    else:
        upload = form.cleaned_data["file"]
        try:
            attachment_add(actor=request.user, item_id=item.pk, filename=upload.name, content=upload.read())
        except (InvalidInput, Conflict) as error:
            messages.error(request, error.message)
        else:
            messages.success(request, _("The file is attached."))
    return redirect("portal:item", item.pk)


class _Rollback(Exception):
    """Leaves the compose transaction without keeping the half-made item."""


@portal_view(("GET", "POST"))
def compose(request: HttpRequest) -> HttpResponse:
    """Post a new item, with its attachments, in one transaction: all of it is stored, or none."""
    membership = _content_membership(request)
    office_crossing = membership.office.border_crossing if membership.office is not None else ""
    options = {
        "own_country": membership.agency.country_id,
        "agencies": agencies_visible_to(request.user),
        "border_crossing": office_crossing,
    }
    form = ComposeForm(
        request.POST if request.method == "POST" else None,
        request.FILES if request.method == "POST" else None,
        initial={"language": request.LANGUAGE_CODE} if request.LANGUAGE_CODE in dict(settings.LANGUAGES) else {},
        **options,
    )
    entity_rows, entity_action = entity_formset(
        request.POST if request.method == "POST" else None, own_country=membership.agency.country_id
    )
    entity_problems: list[str] = []
    if request.method == "POST" and entity_action:
        # "Add another entity" or "Show the fields": the same form again with everything typed, not yet judged and
        # nothing posted (files cannot be carried over: the page says so).
        return _compose_page(request, form.typed_again(**options), entity_rows, entity_problems, reshown=True)
    if request.method == "POST":
        too_large = _upload_too_large(request)
        rows_valid = entity_rows.is_valid()
        entity_problems = entity_rows.summaries()
        if form.is_valid() and rows_valid and not too_large:
            try:
                with transaction.atomic():
                    content = item_create(actor=request.user, **form.service_fields(), entities=entity_rows.entities())
                    for upload in form.cleaned_data["attachments"]:
                        try:
                            attachment_add(
                                actor=request.user, item_id=content.item.pk, filename=upload.name, content=upload.read()
                            )
                        except InvalidInput as error:
                            form.add_error("attachments", f"{upload.name}: {error.message}")
                            raise _Rollback from error
            except _Rollback:
                pass
            except InvalidInput as error:
                fields = error.extra.get("fields", {})
                entity_problems = entity_rows.add_service_errors(fields)
                others = {name: problems for name, problems in fields.items() if not name.startswith("entities")}
                if others or not fields:
                    add_service_errors(form, others, error.message)
            else:
                if content.item.priority == Priority.FLASH:
                    messages.success(request, _("FLASH item posted. Its recipients are being alerted now."))
                else:
                    messages.success(request, _("Item posted."))
                return redirect("portal:item", content.item.pk)
        if too_large:
            form.add_error("attachments", _too_large_message())
    return _compose_page(request, form, entity_rows, entity_problems)


def _compose_page(
    request: HttpRequest, form: ComposeForm, entity_rows: Any, entity_problems: list[str], *, reshown: bool = False
) -> HttpResponse:
    context = {
        "form": form,
        "entity_rows": entity_rows,
        "entity_problems": entity_problems,
        "reshown": reshown,
        "crossings": _crossings(request),
    }
    return render(request, "messaging/compose.html", context)


@portal_view(("GET", "POST"))
def item_narrow(request: HttpRequest, item_id: Any) -> HttpResponse:
    """The originator narrows the release: those removed lose the item at once (their keys are destroyed)."""
    item = item_get_as_originator(request.user, item_id=item_id)
    if item.status != ItemStatus.ACTIVE:
        raise Conflict(f"This item is {item.status}; its release can no longer change.")
    form = NarrowForm(
        request.POST if request.method == "POST" else None,
        item=item,
        release=item_release(item),
        agencies=agencies_visible_to(request.user),
    )
    if request.method == "POST" and form.is_valid():
        changes = form.changes()
        if not changes:
            messages.info(request, _("Nothing changed."))
            return redirect("portal:item", item.pk)
        try:
            item_change(actor=request.user, item_id=item.pk, **changes)
        except InvalidInput as error:
            add_service_errors(form, error.extra.get("fields", {}), error.message)
        else:
            messages.success(request, _("The release is narrowed: whoever was removed has lost the item."))
            return redirect("portal:item", item.pk)
    return render(request, "messaging/narrow.html", {"item": item, "form": form})


@portal_view(("GET", "POST"))
def item_withdraw_view(request: HttpRequest, item_id: Any) -> HttpResponse:
    """The originator withdraws the item, after a confirmation that works without JavaScript."""
    item = item_get_as_originator(request.user, item_id=item_id)
    form = WithdrawForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        item_withdraw(actor=request.user, item_id=item.pk)
        messages.success(request, _("The item is withdrawn. Every recipient has lost it."))
        return redirect("portal:item", item.pk)
    return render(request, "messaging/withdraw.html", {"item": item, "form": form})


@portal_view(("GET",))
def item_tracking(request: HttpRequest, item_id: Any) -> HttpResponse:
    """The originator's view: per recipient agency, routed, read and acknowledged; every read; and the hits of other
    agencies' identifier checks on it (all recorded)."""
    item = item_get_as_originator(request.user, item_id=item_id)
    deliveries = item_deliveries_view(actor=request.user, item_id=item.pk)
    events = item_access_view(actor=request.user, item_id=item.pk)
    before = request.GET.get("before", "")
    if before.isdigit():
        events = events.filter(pk__lt=int(before))
    rows = list(events[: ACCESS_PAGE_SIZE + 1])
    next_before = rows[ACCESS_PAGE_SIZE - 1].pk if len(rows) > ACCESS_PAGE_SIZE else None
    rows = rows[:ACCESS_PAGE_SIZE]
    agencies = Agency.objects.in_bulk({event.actor_agency_id for event in rows if event.actor_agency_id})
    reads = [(event, agencies.get(event.actor_agency_id)) for event in rows]
    context = {
        "item": item,
        "deliveries": deliveries,
        "reads": reads,
        "next_before": next_before,
        "hits": item_hits_view(actor=request.user, item_id=item.pk),
    }
    return render(request, "messaging/tracking.html", context)


# --- notifications -------------------------------------------------------------------------------------------------


def notification_link(notification: Notification) -> str | None:
    """Where a notification leads: its request for information, consent request or item, once that page exists.
    A removed item leads nowhere: the reader no longer has it."""
    if notification.hit_id:
        return portal_url("portal:item_tracking", notification.item_id)
    if notification.rfi_id:
        return portal_url("portal:rfi", notification.rfi_id)
    if notification.consent_id:
        return portal_url("portal:consent", notification.consent_id)
    if notification.item_id and notification.kind != NotificationKind.REVOKED:
        return portal_url("portal:item", notification.item_id)
    return None


@portal_view(("GET",))
def notifications_page(request: HttpRequest) -> HttpResponse:
    """The viewer's own notifications, newest first (the list is recorded)."""
    rows, next_cursor = keyset_page(notifications_for(request.user), request.GET.get("before"), PAGE_SIZE)
    notification_list(actor=request.user, notifications=rows)
    entries = [(notification, notification_link(notification)) for notification in rows]
    return render(request, "messaging/notifications.html", {"entries": entries, "next_cursor": next_cursor})


@portal_view(("POST",))
def notification_read(request: HttpRequest, notification_id: int) -> HttpResponse:
    """Mark one of the viewer's notifications read and open what it is about."""
    notification = notification_mark_read(actor=request.user, notification_id=notification_id)
    return redirect(notification_link(notification) or reverse("portal:notifications"))


# --- statistics ----------------------------------------------------------------------------------------------------


def _share(value: float | None, largest: float) -> int:
    """``value`` as a whole percentage of ``largest``: a bar's length (at least 1 when there is anything)."""
    if not value or not largest:
        return 0
    return max(1, round(100 * value / largest))


def _charts(report: Report) -> dict[str, Any]:
    """What the statistics page draws: totals per month, per pair, and the bars of the other indicators."""
    per_month: dict[Any, int] = defaultdict(int)
    per_pair: dict[tuple[str, str], int] = defaultdict(int)
    for row in report.exchanged:
        per_month[row.month] += row.count
        per_pair[(row.from_country, row.to_country)] += row.count
    months = report.period.months()
    highest = max(per_month.values(), default=0)
    columns = []
    for index, month in enumerate(months):
        height = _share(per_month.get(month, 0), highest)
        columns.append({"month": month, "count": per_month.get(month, 0), "x": index * 10 + 1, "y": 100 - height,
                        "height": height})  # fmt: skip
    pairs = sorted(per_pair.items(), key=lambda entry: (-entry[1], entry[0]))
    largest_pair = pairs[0][1] if pairs else 0
    flash_longest = max((entry.median or 0 for entry in report.flash), default=0)
    rfi_longest = max((entry.median or 0 for entry in report.rfis), default=0)
    consent_most = max((entry.count for entry in report.consents), default=0)
    return {
        "columns": columns,
        "chart_width": max(len(months) * 10, 10),
        "total": sum(per_month.values()),
        "pairs": [(source, target, count, _share(count, largest_pair)) for (source, target), count in pairs],
        "flash": [(entry, _share(entry.median, flash_longest)) for entry in report.flash],
        "rfis": [(entry, _share(entry.median, rfi_longest)) for entry in report.rfis],
        "consents": [(entry, _share(entry.count, consent_most)) for entry in report.consents],
    }


def _csv_response(rows: Sequence[Sequence[Any]], period: Period) -> HttpResponse:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    name = f"isn-statistics-{period.since:%Y-%m}-{period.until:%Y-%m}.csv"
    response["Content-Disposition"] = content_disposition_header(True, name)
    response["Cache-Control"] = "no-store"
    return response


@portal_view(("GET",))
def statistics_page(request: HttpRequest) -> HttpResponse:
    """The MOU's indicators within the viewer's scope, drawn here (no outside service) or as CSV (both recorded)."""
    scope = statistics_scope(request.user)
    if scope is None:
        raise DjangoPermissionDenied
    form = StatisticsPeriodForm(request.GET)
    if not form.is_valid():
        return render(request, "messaging/statistics.html", {"form": form, "scope": scope}, status=400)
    period = Period(since=form.cleaned_data["since"], until=form.cleaned_data["until"])
    if request.GET.get("format") == "csv":
        return _csv_response(statistics_export(actor=request.user, period=period), period)
    report = statistics_view(actor=request.user, period=period)
    context = {"form": form, "scope": scope, "report": report, **_charts(report)}
    return render(request, "messaging/statistics.html", context)
