"""Subscriptions: which offices and people of an agency receive the items that match their criteria.

Routing (``messaging.delivery.routing``) delivers an item released to an agency to the offices and people whose active
subscriptions match it (category, priority, originating country, border crossing, province of the posting office;
a blank criterion matches anything). Officers, supervisors and focal points manage their own subscriptions; an
agency admin (or the agency's system, by a key with the admin scope) manages every subscription of their agency, for
its offices and its people. Auditors read no content, so they neither have nor see any. A subscription without a
single criterion would route every item released to the agency to its subscriber, and is refused.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet

from agencies.models import CountryCode, Membership, Office
from agencies.selectors import delivery_admin_membership, membership_for
from audit.services import record
from isn.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from messaging.core.people import NO_CONTENT_ROLES
from messaging.models import BORDER_CROSSING_MAX_LENGTH, Category, Priority, Subscription

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

NOT_FOUND_MESSAGE = "No such subscription."
CRITERIA = ("category", "priority", "originator_country", "border_crossing", "province")
# The free-text criteria: place names, compared case-insensitively by routing.
TEXT_CRITERIA = {"border_crossing": BORDER_CROSSING_MAX_LENGTH, "province": 100}
_CHOICES = {
    "category": frozenset(Category.values),
    "priority": frozenset(Priority.values),
    "originator_country": frozenset(CountryCode.values),
}
# Control characters, line and paragraph separators: a criterion is one short line.
_NOT_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MAX_ID = 2**63 - 1


def subscriptions_visible_to(viewer: AbstractBaseUser | AnonymousUser) -> QuerySet[Subscription]:
    """An agency admin (or admin-scoped key): every subscription of their agency; anyone else who reads content:
    their own; else none."""
    membership = membership_for(viewer)
    if membership is None or membership.role in NO_CONTENT_ROLES:
        return Subscription.objects.none()
    subscriptions = Subscription.objects.filter(agency_id=membership.agency_id)
    if delivery_admin_membership(viewer) is None:
        subscriptions = subscriptions.filter(user_id=viewer.pk)
    return subscriptions.select_related("office", "user").order_by("pk")


def _manager(actor: AbstractBaseUser) -> Membership:
    membership = membership_for(actor)
    if membership is None or membership.role in NO_CONTENT_ROLES:
        raise PermissionDenied("Only members who receive items may have subscriptions.")
    return membership


def _criteria(values: dict[str, Any]) -> dict[str, str]:
    """The criteria given, cleaned, or InvalidInput naming each bad one."""
    cleaned: dict[str, str] = {}
    errors: dict[str, list[str]] = {}
    for name in CRITERIA:
        if name not in values:
            continue
        value = values[name]
        value = "" if value is None else str(value).strip()
        if name in _CHOICES and value and value not in _CHOICES[name]:
            errors[name] = [f"Not a valid choice: {', '.join(sorted(_CHOICES[name]))}."]
        elif name in TEXT_CRITERIA and len(value) > TEXT_CRITERIA[name]:
            errors[name] = [f"At most {TEXT_CRITERIA[name]} characters."]
        elif name in TEXT_CRITERIA and _NOT_ONE_LINE.search(value):
            errors[name] = ["One line of text, without control characters."]
        cleaned[name] = value
    if errors:
        raise InvalidInput("The subscription's criteria are not valid.", extra={"fields": errors})
    return cleaned


def _require_a_criterion(subscription: Subscription) -> None:
    if not any(getattr(subscription, name) for name in CRITERIA):
        raise InvalidInput(
            "Give at least one criterion (category, priority, originator country, border crossing or province): "
            "a subscription without any would route every item released to your agency here.",
            extra={"fields": {"category": ["At least one criterion is required."]}},
        )


def _subscriber(
    membership: Membership, actor: AbstractBaseUser, office_id: int | None, username: str | None
) -> tuple[Office | None, Any]:
    """The office or person the new subscription is for: the caller unless an agency admin names another."""
    if office_id is not None and username:
        raise InvalidInput("Name an office or a person, not both.", extra={"fields": {"office": ["Not both."]}})
    is_admin = delivery_admin_membership(actor) is not None
    if office_id is not None:
        if not is_admin:
            raise PermissionDenied("Only an agency admin may subscribe an office.")
        office = Office.objects.filter(pk=office_id, agency_id=membership.agency_id, is_active=True).first()
        if office is None:
            raise InvalidInput("Not an active office of your agency.", extra={"fields": {"office": ["Unknown."]}})
        return office, None
    if not username or username == actor.get_username():
        return None, actor
    if not is_admin:
        raise PermissionDenied("You may only subscribe yourself; an agency admin subscribes others.")
    person = (
        get_user_model()
        .objects.filter(
            username=username,
            is_active=True,
            membership__is_active=True,
            membership__agency_id=membership.agency_id,
        )
        .exclude(membership__role__in=NO_CONTENT_ROLES)
        .first()
    )
    if person is None:
        raise InvalidInput("Not a person of your agency who receives items.", extra={"fields": {"user": ["Unknown."]}})
    return None, person


def _details(subscription: Subscription, **extra: Any) -> dict[str, Any]:
    """Ids and codes only: the free-text criteria are place names, left out all the same (only whether set)."""
    return {
        "subscription_id": subscription.pk,
        "agency_id": subscription.agency_id,
        "office_id": subscription.office_id,
        "user_id": subscription.user_id,
        "category": subscription.category,
        "priority": subscription.priority,
        "originator_country": subscription.originator_country,
        "border_crossing_set": bool(subscription.border_crossing),
        "province_set": bool(subscription.province),
        "is_active": subscription.is_active,
        **extra,
    }


def _find_duplicate(subscription: Subscription) -> bool:
    same = {name: getattr(subscription, name) for name in CRITERIA if name not in TEXT_CRITERIA}
    same |= {f"{name}__iexact": getattr(subscription, name) for name in TEXT_CRITERIA}
    return (
        Subscription.objects.filter(
            agency_id=subscription.agency_id,
            office_id=subscription.office_id,
            user_id=subscription.user_id,
            is_active=True,
            **same,
        )
        .exclude(pk=subscription.pk)
        .exists()
    )


@transaction.atomic
def subscription_create(
    *,
    actor: AbstractBaseUser,
    office: int | None = None,
    user: str | None = None,
    is_active: bool = True,
    **criteria: Any,
) -> Subscription:
    """Subscribe an office or a person of the caller's agency (by default the caller) to items matching criteria."""
    membership = _manager(actor)
    unknown = set(criteria) - set(CRITERIA)
    if unknown:
        raise InvalidInput(f"Unknown criteria: {', '.join(sorted(unknown))}.")
    subscriber_office, person = _subscriber(membership, actor, office, user)
    subscription = Subscription(
        agency_id=membership.agency_id,
        office=subscriber_office,
        user=person,
        is_active=is_active,
        **_criteria(criteria),
    )
    _require_a_criterion(subscription)
    if subscription.is_active and _find_duplicate(subscription):
        raise Conflict("An identical subscription exists already.")
    subscription.save()
    record(
        action="messaging.subscription.create",
        actor=actor,
        target=subscription,
        target_country=membership.agency.country_id,
        details=_details(subscription),
    )
    return subscription


def _visible(actor: AbstractBaseUser, subscription_id: object, *, lock: bool) -> tuple[Membership, Subscription]:
    """The subscription if the actor may see it; one NotFound for "no such id", "not yours" and "not an id"."""
    text = str(subscription_id)
    if not text.isdigit() or int(text) > _MAX_ID:
        raise NotFound(NOT_FOUND_MESSAGE)
    subscriptions = subscriptions_visible_to(actor)
    if lock:
        subscriptions = subscriptions.select_for_update(of=("self",))
    subscription = subscriptions.filter(pk=int(text)).first()
    membership = membership_for(actor)
    if subscription is None or membership is None:
        raise NotFound(NOT_FOUND_MESSAGE)
    return membership, subscription


@transaction.atomic
def subscription_update(
    *, actor: AbstractBaseUser, subscription_id: object, is_active: bool | None = None, **criteria: Any
) -> Subscription:
    """Change a visible subscription's criteria or switch it on or off; the subscriber stays the same."""
    membership, subscription = _visible(actor, subscription_id, lock=True)
    unknown = set(criteria) - set(CRITERIA)
    if unknown:
        raise InvalidInput(f"Unknown criteria: {', '.join(sorted(unknown))}.")
    changes: dict[str, Any] = _criteria(criteria)
    if is_active is not None:
        changes["is_active"] = bool(is_active)
    changed = sorted(name for name, value in changes.items() if getattr(subscription, name) != value)
    for name in changed:
        setattr(subscription, name, changes[name])
    _require_a_criterion(subscription)
    if not changed:
        return subscription
    if subscription.is_active and _find_duplicate(subscription):
        raise Conflict("An identical subscription exists already.")
    subscription.save(update_fields=changed)
    record(
        action="messaging.subscription.change",
        actor=actor,
        target=subscription,
        target_country=membership.agency.country_id,
        details=_details(subscription, changed=changed),
    )
    return subscription


@transaction.atomic
def subscription_delete(*, actor: AbstractBaseUser, subscription_id: object) -> None:
    """Delete a visible subscription; routing stops using it at once."""
    membership, subscription = _visible(actor, subscription_id, lock=True)
    record(
        action="messaging.subscription.delete",
        actor=actor,
        target=subscription,
        target_country=membership.agency.country_id,
        details=_details(subscription),
    )
    subscription.delete()


@transaction.atomic
def subscription_list(*, actor: AbstractBaseUser, subscriptions: list[Subscription]) -> list[Subscription]:
    """A page of the caller's visible subscriptions, recorded by id."""
    record(
        action="messaging.subscription.list",
        actor=actor,
        target_type="messaging.subscription",
        details={"ids": [s.pk for s in subscriptions], "count": len(subscriptions)},
    )
    return subscriptions


@transaction.atomic
def subscription_read(*, actor: AbstractBaseUser, subscription_id: object) -> Subscription:
    """One visible subscription, recorded; anything else is NotFound."""
    membership, subscription = _visible(actor, subscription_id, lock=False)
    record(
        action="messaging.subscription.read",
        actor=actor,
        target=subscription,
        target_country=membership.agency.country_id,
        details={"subscription_id": subscription.pk},
    )
    return subscription


def subscriptions_cut_off(*, user_id: int) -> dict[str, list[int]]:
    """The leaver rule's part here (``agencies.leavers``): a person cut off keeps no active subscription; restoring
    their membership does not bring any back. Returns the ids switched off, for the caller's audit event."""
    ids = list(
        Subscription.objects.select_for_update()
        .filter(user_id=user_id, is_active=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if ids:
        Subscription.objects.filter(pk__in=ids).update(is_active=False)
    return {"subscription_ids": ids}
