"""Reach: after a narrowing, withdrawal or expiry, every forward and consent whose holder lost the item is cut off."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from audit.services import record
from messaging.core.release import Release, release_of
from messaging.delivery.feed import feed_tell_consent
from messaging.models import (
    ChangeKind,
    ConsentRequest,
    ConsentStatus,
    Forward,
    Item,
    ItemAgencyGrant,
    ItemCountryGrant,
    ItemKey,
    ItemUserObjectPermission,
)

if TYPE_CHECKING:
    from typing import TypeAlias

    from django.contrib.auth.models import AbstractBaseUser

    Actor: TypeAlias = AbstractBaseUser


@dataclass(frozen=True)
class Reach:
    """What a narrowing, withdrawal or expiry cut off beyond the release itself."""

    forward_ids: list[int] = field(default_factory=list)
    consent_ids: list[str] = field(default_factory=list)
    # Countries shared by a consent that was cut off: their grants and wrapped keys went with it.
    countries: list[str] = field(default_factory=list)

    def details(self) -> dict[str, list[Any]]:
        """For the act's audit event: only what was cut off (ids and codes)."""
        found: dict[str, list[Any]] = {
            "revoked_forwards": self.forward_ids,
            "revoked_consents": self.consent_ids,
            "consented_countries_cut": self.countries,
        }
        return {name: ids for name, ids in found.items() if ids}


def forwards_that_stay(item: Item, release: Release, before: Release | None, forwards: Sequence[Forward]) -> set[int]:
    """Ids of the forwards that still hold under ``release``, followed outwards from those who hold it themselves.

    A forward holds while its country keeps its grant, its receiving agency was not cut out by this very change
    (it saw the item under ``before`` and does not under ``release``), and its forwarding agency holds the item: as
    the originator, under the release, or by a forward that itself holds (a person named on an item forwards
    nothing: ``sharing.forwards.item_forward``). Following from the
    holders outwards (not checking each forward alone) is what lets a chain, or a cycle, of forwards fall together.
    """
    if not release.active:
        return set()

    def cut_out(agency_id: int, country: str) -> bool:
        return (
            before is not None
            and before.agency_may_see(agency_id, country)
            and not release.agency_may_see(agency_id, country)
        )

    candidates = [
        f for f in forwards if f.country_id in release.countries and not cut_out(f.to_agency_id, f.country_id)
    ]
    holders = {item.originator_agency_id}
    kept: set[int] = set()
    progress = True
    while progress:
        progress = False
        for forward in candidates:
            if forward.pk in kept:
                continue
            if forward.from_agency_id in holders or release.agency_may_see(forward.from_agency_id, forward.country_id):
                kept.add(forward.pk)
                holders.add(forward.to_agency_id)
                progress = True
    return kept


def consent_holds(consent: ConsentRequest, release: Release, holders: set[int]) -> bool:
    """A consent request stands while its requesting agency holds the item and, once approved, its country is
    still released (the originator removing that country revokes the consent)."""
    if consent.status == ConsentStatus.APPROVED and consent.target_country_id not in release.countries:
        return False
    requester_country = consent.requester_agency.country_id
    return release.active and (
        consent.requester_agency_id in holders
        or release.person_may_see(consent.requester_user_id, consent.requester_agency_id, requester_country)
    )


def release_follow(item: Item, *, before: Release | None, actor: Actor | None) -> Reach:
    """After a narrowing, withdrawal or expiry, cut off every forward and consent whose holder lost the item.

    Revoked forwards get ``revoked_at``; revoked consent requests (approved or pending) become REVOKED, and an
    approved one's country grant and wrapped key go (the caller re-keys the item, as for any removed country).
    Removing a consented country can cut off more (a forward inside it, a consent it asked for), so this runs until
    nothing changes. Deliveries are marked, and their holders told, by the ``item.revoke`` outbox row the caller
    writes. Every revocation is recorded, filed under the country it happened in so its auditors see it.

    Long because cutting off and recording must see the same rows: the loop and the records share its state.
    """
    now = timezone.now()
    forwards_cut: list[Forward] = []
    consents_cut: list[ConsentRequest] = []
    countries_cut: list[str] = []
    while True:
        release = release_of(item)
        forwards = list(Forward.objects.select_for_update().filter(item=item, revoked_at__isnull=True).order_by("pk"))
        kept = forwards_that_stay(item, release, before, forwards)
        holders = {item.originator_agency_id} | {f.to_agency_id for f in forwards if f.pk in kept}
        lost_forwards = [f for f in forwards if f.pk not in kept]
        consents = list(
            ConsentRequest.objects.select_for_update(of=("self",))
            .filter(item=item, status__in=[ConsentStatus.PENDING, ConsentStatus.APPROVED])
            .select_related("requester_agency")
            .order_by("created_at", "pk")
        )
        lost_consents = [c for c in consents if not consent_holds(c, release, holders)]
        # Only a country the consent itself gave goes with it: one approved while the originator had released it
        # already keeps the originator's own grant.
        approved_lost = [c.pk for c in lost_consents if c.status == ConsentStatus.APPROVED]
        countries = sorted(
            set(
                ItemCountryGrant.objects.filter(item=item, consent_id__in=approved_lost).values_list(
                    "country_id", flat=True
                )
            )
            & set(release.countries)
        )
        Forward.objects.filter(pk__in=[f.pk for f in lost_forwards]).update(revoked_at=now)
        ConsentRequest.objects.filter(pk__in=[c.pk for c in lost_consents]).update(
            status=ConsentStatus.REVOKED, revoked_at=now
        )
        if countries:
            countries_remove(item, countries)
        forwards_cut += lost_forwards
        consents_cut += lost_consents
        countries_cut += countries
        if not countries:
            break
    by_country: dict[str, list[int]] = {}
    for forward in forwards_cut:
        by_country.setdefault(forward.country_id, []).append(forward.pk)
    for country_code, forward_ids in sorted(by_country.items()):
        record(
            action="messaging.forward.revoke",
            actor=actor,
            target=item,
            target_country=country_code,
            details={"forward_ids": forward_ids},
        )
    for consent in consents_cut:
        feed_tell_consent(ChangeKind.CONSENT_REVOKED, consent)
        record(
            action="messaging.consent.revoke",
            actor=actor,
            target=consent,
            # The requesting side's country; the originator's auditors see the act through its actor, or through
            # the narrowing, withdrawal or expiry event that lists it.
            target_country=consent.requester_agency.country_id,
            details={
                "item_id": str(item.pk),
                "target_country": consent.target_country_id,
                "was": consent.status,
                "country_cut": consent.target_country_id in countries_cut,
            },
        )
    return Reach(
        forward_ids=[f.pk for f in forwards_cut],
        consent_ids=[str(c.pk) for c in consents_cut],
        countries=sorted(countries_cut),
    )


def countries_remove(item: Item, codes: Sequence[str]) -> None:
    ItemKey.objects.filter(item=item, country_id__in=codes).delete()
    ItemCountryGrant.objects.filter(item=item, country_id__in=codes).delete()
    ItemAgencyGrant.objects.filter(item=item, country_id__in=codes).delete()
    ItemUserObjectPermission.objects.filter(
        content_object=item, user__membership__agency__country_id__in=codes
    ).delete()
