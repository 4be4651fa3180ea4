"""Narrowing, withdrawal and expiry reach every forwarded and consented copy: forwards whose holder lost the item are
revoked (chains included), consents whose requester lost it are revoked with their country's grant and key, and the
holders cut off are told while those who still hold the item are not."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from rest_framework.test import APIClient

from audit.models import AuditEvent
from isn.errors import NotFound
from messaging.items.changes import item_change, item_withdraw, items_expire
from messaging.items.lifecycle import item_read
from messaging.models import (
    ConsentStatus,
    Forward,
    ItemAgencyGrant,
    ItemCountryGrant,
    ItemKey,
    NotificationKind,
)
from messaging.models.delivery import Delivery
from messaging.sharing.consents import consent_grant, consent_read, consent_request_create
from messaging.sharing.forwards import item_forward, item_forwards_view
from tests.messaging.network import Sharing, build_sharing, notified, post_item, run_outbox

REASON = "For the customs team at the border"
JUSTIFICATION = "The same network operates across the Mekong"


@pytest.fixture
def s(db) -> Sharing:
    return build_sharing()


def forward(s: Sharing, item: Any, by: str, to_agency: Any, to_office: Any = None) -> Forward:
    return item_forward(
        actor=s.user(by), item_id=item.pk, to_agency=to_agency, to_office=to_office, reason=REASON
    ).forward


def shared(s: Sharing, item: Any, country: str, by: str = "kh.officer", **extra: Any) -> Any:
    """A consent request by ``by``, approved by Viet Nam's supervisor and routed."""
    consent = consent_request_create(
        actor=s.user(by), item_id=item.pk, target_country=country, justification=JUSTIFICATION, **extra
    ).consent
    consent_grant(actor=s.user("vn.supervisor"), consent_id=consent.pk)
    run_outbox()
    consent.refresh_from_db()
    return consent


def reads(s: Sharing, name: str, item: Any) -> bool:
    try:
        item_read(actor=s.user(name), item_id=item.pk)
    except NotFound:
        return False
    return True


def revoked(*forwards: Forward) -> list[bool]:
    return [Forward.objects.get(pk=f.pk).revoked_at is not None for f in forwards]


def event(action: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).latest("id")


# --- forwards -------------------------------------------------------------------------------------------------------


def test_removing_a_country_cuts_off_the_forwards_inside_it_and_tells_their_holders(s):
    item = post_item(s.user("vn.officer"), countries=["VN", "KH", "LA"], agencies=[s.net.kh.pk])
    run_outbox()
    to_customs = forward(s, item, "kh.officer", s.net.kh_customs)
    run_outbox()
    assert reads(s, "kh.customs", item)

    item_change(actor=s.user("vn.officer"), item_id=item.pk, countries=["VN", "LA"])

    assert revoked(to_customs) == [True]
    assert not reads(s, "kh.customs", item)
    assert not ItemKey.objects.filter(item=item, country_id="KH").exists()
    assert event("messaging.item.release_narrow").details["revoked_forwards"] == [to_customs.pk]
    revoke = event("messaging.forward.revoke")
    assert (revoke.target_country, revoke.details) == ("KH", {"forward_ids": [to_customs.pk]})
    run_outbox()
    assert not Delivery.objects.filter(item=item, agency=s.net.kh_customs, revoked_at__isnull=True).exists()
    assert {"kh.customs", "kh.officer"} <= notified(NotificationKind.REVOKED, item=item)


def test_a_forwarded_holder_that_still_holds_the_item_is_not_told_and_keeps_reading(s):
    item = post_item(s.user("vn.officer"), countries=["VN", "KH", "LA"], agencies=[s.net.kh.pk])
    run_outbox()
    to_customs = forward(s, item, "kh.officer", s.net.kh_customs)
    run_outbox()

    item_change(actor=s.user("vn.officer"), item_id=item.pk, countries=["VN", "KH"])  # Laos goes, and is re-keyed
    run_outbox()

    assert revoked(to_customs) == [False]
    assert reads(s, "kh.customs", item)
    assert Delivery.objects.get(item=item, agency=s.net.kh_customs).revoked_at is None
    assert notified(NotificationKind.REVOKED, item=item) == {"la.supervisor"}
    assert "revoked_forwards" not in event("messaging.item.release_narrow").details
    # The item was re-keyed: the forward's reason moved with it.
    [view] = item_forwards_view(actor=s.user("vn.officer"), item_id=item.pk)
    assert view.reason == REASON


def test_cutting_out_the_forwarding_agency_cuts_its_forwards_and_the_chain_behind_them(s):
    item = post_item(s.user("vn.officer"), countries=["VN", "KH"], agencies=[s.net.kh.pk, s.kh_military.pk])
    first = forward(s, item, "kh.officer", s.net.kh_customs)  # ADD -> GDCE
    second = forward(s, item, "kh.customs", s.kh_police)  # GDCE -> CNP: GDCE has it only by forward
    assert reads(s, "kh.police", item)

    item_change(actor=s.user("vn.officer"), item_id=item.pk, agencies=[s.kh_military.pk])

    assert revoked(first, second) == [True, True]
    assert not any(reads(s, name, item) for name in ("kh.officer", "kh.customs", "kh.police"))
    assert reads(s, "kh.military", item)
    assert sorted(event("messaging.item.release_narrow").details["revoked_forwards"]) == sorted([first.pk, second.pk])


def test_a_forward_from_an_agency_that_still_holds_the_item_stays(s):
    item = post_item(s.user("vn.officer"), countries=["VN", "KH"], agencies=[s.net.kh.pk, s.kh_military.pk])
    from_add = forward(s, item, "kh.officer", s.net.kh_customs)
    from_cmp = forward(s, item, "kh.military", s.kh_police)

    item_change(actor=s.user("vn.officer"), item_id=item.pk, agencies=[s.kh_military.pk])

    assert revoked(from_add, from_cmp) == [True, False]
    assert reads(s, "kh.police", item)
    assert not reads(s, "kh.customs", item)


def test_cutting_out_the_receiving_agency_cuts_its_forward(s):
    item = post_item(s.user("vn.officer"), countries=["VN", "KH"], agencies=[s.net.kh.pk, s.net.kh_customs.pk])
    to_customs = forward(s, item, "kh.officer", s.net.kh_customs)  # an agency that has it anyway: a nudge

    item_change(actor=s.user("vn.officer"), item_id=item.pk, agencies=[s.net.kh.pk])

    assert revoked(to_customs) == [True]
    assert not reads(s, "kh.customs", item)  # the originator's cut is not undone by the forward


def test_a_forward_made_by_a_person_named_on_the_item_is_cut_at_the_next_narrowing(s):
    """Forwards made before named persons lost the right to forward (``item_forward`` refuses them now) do not
    outlive the next change of the release: the person's agency never held the item."""
    item = post_item(
        s.user("vn.officer"), countries=["VN", "KH", "LA"], agencies=[s.net.kh.pk], named_users=["kh.customs"]
    )
    by_named = Forward.objects.create(
        item=item,
        from_agency=s.net.kh_customs,
        from_user=s.user("kh.customs"),
        to_agency=s.kh_police,
        country_id="KH",
        reason_sealed=b"",
    )
    assert reads(s, "kh.police", item)

    item_change(actor=s.user("vn.officer"), item_id=item.pk, countries=["VN", "KH"])

    assert revoked(by_named) == [True]
    assert not reads(s, "kh.police", item)
    assert reads(s, "kh.customs", item)  # still named: the person keeps their own copy


# --- consents -------------------------------------------------------------------------------------------------------


def test_the_requester_losing_the_item_revokes_its_consent_and_shreds_the_consented_key(s):
    item = post_item(s.user("vn.officer"), countries=["VN", "KH"], agencies=[s.net.kh.pk, s.kh_military.pk])
    run_outbox()
    consent = shared(s, item, "TH")
    assert reads(s, "th.officer", item)
    assert Delivery.objects.filter(item=item, agency=s.net.th, revoked_at__isnull=True).exists()

    item_change(actor=s.user("vn.officer"), item_id=item.pk, agencies=[s.kh_military.pk])  # ADD, the requester, goes

    consent.refresh_from_db()
    assert (consent.status, consent.revoked_at is not None) == (ConsentStatus.REVOKED, True)
    assert not ItemKey.objects.filter(item=item, country_id="TH").exists()
    assert not ItemCountryGrant.objects.filter(item=item, country_id="TH").exists()
    assert not reads(s, "th.officer", item)
    details = event("messaging.item.release_narrow").details
    assert (details["revoked_consents"], details["consented_countries_cut"]) == ([str(consent.pk)], ["TH"])
    revoke = event("messaging.consent.revoke")
    assert (revoke.target_id, revoke.target_country, revoke.details["was"]) == (str(consent.pk), "KH", "approved")
    run_outbox()
    assert not Delivery.objects.filter(item=item, agency=s.net.th, revoked_at__isnull=True).exists()
    assert "th.officer" in notified(NotificationKind.REVOKED, item=item)
    # The item was re-keyed; the justification moved with it, and Cambodia (still released) opens it too.
    assert consent_read(actor=s.user("vn.officer"), consent_id=consent.pk).justification == JUSTIFICATION
    # The requesting side still opens its own words: Cambodia keeps a key, for the agency left in its release.
    assert consent_read(actor=s.user("kh.officer"), consent_id=consent.pk).justification == JUSTIFICATION


def test_removing_a_consented_country_revokes_its_consent(s):
    item = post_item(s.user("vn.officer"), countries=["VN", "KH"])
    consent = shared(s, item, "TH")

    item_change(actor=s.user("vn.officer"), item_id=item.pk, countries=["VN", "KH"])  # the list without Thailand

    consent.refresh_from_db()
    assert consent.status == ConsentStatus.REVOKED
    assert not ItemKey.objects.filter(item=item, country_id="TH").exists()
    details = event("messaging.item.release_narrow").details
    assert (details["removed_countries"], details["revoked_consents"]) == (["TH"], [str(consent.pk)])
    # Cambodia's requester still holds the item and can read why it asked.
    assert consent_read(actor=s.user("kh.officer"), consent_id=consent.pk).justification == JUSTIFICATION


def test_consents_and_forwards_built_on_a_revoked_consent_fall_with_it(s):
    item = post_item(s.user("vn.officer"), countries=["VN", "KH"], agencies=[s.net.kh.pk, s.kh_military.pk])
    to_thailand = shared(s, item, "TH", target_agency=s.net.th)  # Thailand: ONCB only
    inside_thailand = forward(s, item, "th.officer", s.th_police, to_office=s.th_police.offices.get())
    to_laos = shared(s, item, "LA", by="th.officer")  # asked by ONCB, which has it by consent
    assert reads(s, "th.police", item)
    assert reads(s, "la.officer", item)

    # The agencies list is complete: Thailand's consented restriction is named again, Cambodia's ADD is not.
    item_change(actor=s.user("vn.officer"), item_id=item.pk, agencies=[s.kh_military.pk, s.net.th.pk])

    to_thailand.refresh_from_db()
    to_laos.refresh_from_db()
    assert (to_thailand.status, to_laos.status) == (ConsentStatus.REVOKED, ConsentStatus.REVOKED)
    assert revoked(inside_thailand) == [True]
    assert sorted(ItemKey.objects.filter(item=item).values_list("country_id", flat=True)) == ["KH", "VN"]
    assert not any(reads(s, name, item) for name in ("th.officer", "th.police", "la.officer"))
    details = event("messaging.item.release_narrow").details
    assert details["consented_countries_cut"] == ["LA", "TH"]
    assert sorted(details["revoked_consents"]) == sorted([str(to_thailand.pk), str(to_laos.pk)])


def test_a_narrowing_by_agency_leaves_a_consented_restriction_it_does_not_name_as_it_is(s):
    item = post_item(s.user("vn.officer"), countries=["VN", "KH"], agencies=[s.net.kh.pk, s.kh_military.pk])
    to_thailand = shared(s, item, "TH", target_agency=s.net.th)  # Thailand: ONCB only, by consent

    # Cambodia's CMP goes; Thailand is not named, so its consented restriction stays rather than being "dropped".
    item_change(actor=s.user("vn.officer"), item_id=item.pk, agencies=[s.net.kh.pk])

    assert sorted(ItemAgencyGrant.objects.filter(item=item).values_list("agency_id", flat=True)) == sorted(
        [s.net.kh.pk, s.net.th.pk]
    )
    to_thailand.refresh_from_db()
    assert to_thailand.status == ConsentStatus.APPROVED
    assert (reads(s, "th.officer", item), reads(s, "th.police", item), reads(s, "kh.military", item)) == (
        True,
        False,
        False,
    )
    details = event("messaging.item.release_narrow").details
    assert (details["removed_agencies"], details["restricted_to_agencies"]) == ([s.kh_military.pk], [])


def test_a_narrowing_may_still_change_a_consented_restriction_only_by_narrowing_it(s):
    item = post_item(s.user("vn.officer"), countries=["VN", "KH"], agencies=[s.net.kh.pk, s.kh_military.pk])
    shared(s, item, "TH", target_agency=s.net.th)
    grants = sorted(ItemAgencyGrant.objects.filter(item=item).values_list("agency_id", flat=True))
    events_before = AuditEvent.objects.filter(action="messaging.item.release_narrow").count()

    api = APIClient()
    api.force_authenticate(s.user("vn.officer"))
    url = f"/api/v1/items/{item.pk}/"
    # Naming another Thai agency would let it see the item: refused, and nothing changes.
    refused = api.patch(url, {"agencies": [s.net.kh.pk, s.th_police.pk]}, format="json")
    assert refused.status_code == 400
    assert refused.json()["errors"]["fields"]["agencies"] == [
        "The change would let more agencies of TH see the item; a change may only narrow."
    ]
    # Leaving out a restriction the originator set is still a widening.
    assert api.patch(url, {"agencies": [s.net.th.pk]}, format="json").status_code == 400
    assert api.patch(url, {"agencies": []}, format="json").status_code == 400
    assert sorted(ItemAgencyGrant.objects.filter(item=item).values_list("agency_id", flat=True)) == grants
    assert AuditEvent.objects.filter(action="messaging.item.release_narrow").count() == events_before
    assert reads(s, "th.officer", item)
    # Naming the consented agency again narrows nothing there; naming none of Thailand's keeps it, as above.
    assert api.patch(url, {"agencies": [s.net.kh.pk, s.net.th.pk]}, format="json").status_code == 200
    assert event("messaging.item.release_narrow").details["removed_agencies"] == [s.kh_military.pk]


def test_a_narrowing_with_a_correction_cuts_consented_copies_too(s):
    item = post_item(s.user("vn.officer"), countries=["VN", "KH"], agencies=[s.net.kh.pk, s.kh_military.pk])
    consent = shared(s, item, "TH")

    item_change(
        actor=s.user("vn.officer"), item_id=item.pk, agencies=[s.kh_military.pk], title="Corrected: two lorries"
    )

    assert not ItemKey.objects.filter(item=item, country_id="TH").exists()
    assert item_read(actor=s.user("kh.military"), item_id=item.pk).title == "Corrected: two lorries"
    assert consent_read(actor=s.user("vn.officer"), consent_id=consent.pk).justification == JUSTIFICATION


def test_a_pending_request_from_an_agency_that_lost_the_item_is_revoked(s):
    item = post_item(s.user("vn.officer"), countries=["VN", "KH"], agencies=[s.net.kh.pk, s.kh_military.pk])
    pending = consent_request_create(
        actor=s.user("kh.officer"), item_id=item.pk, target_country="TH", justification=JUSTIFICATION
    ).consent
    item_change(actor=s.user("vn.officer"), item_id=item.pk, agencies=[s.kh_military.pk])
    pending.refresh_from_db()
    assert pending.status == ConsentStatus.REVOKED
    assert not ItemKey.objects.filter(item=item, country_id="TH").exists()


# --- withdrawal and expiry --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ending", ["withdraw", "expire"])
def test_withdrawal_and_expiry_cut_off_every_forward_and_consent(s, ending):
    item = post_item(s.user("vn.officer"), countries=["VN", "KH"], agencies=[s.net.kh.pk])
    run_outbox()
    to_customs = forward(s, item, "kh.officer", s.net.kh_customs)
    onwards = forward(s, item, "kh.customs", s.kh_police)  # a chain: GDCE has it only by the forward
    consent = shared(s, item, "TH")
    run_outbox()

    if ending == "withdraw":
        item_withdraw(actor=s.user("vn.officer"), item_id=item.pk)
    else:
        items_expire(today=item.review_date + timedelta(days=1))

    assert revoked(to_customs, onwards) == [True, True]
    consent.refresh_from_db()
    assert consent.status == ConsentStatus.REVOKED
    assert sorted(ItemKey.objects.filter(item=item).values_list("country_id", flat=True)) == ["VN"]
    assert not any(reads(s, name, item) for name in ("kh.officer", "kh.customs", "kh.police", "th.officer"))
    details = event(f"messaging.item.{ending}").details
    assert sorted(details["revoked_forwards"]) == sorted([to_customs.pk, onwards.pk])
    assert details["revoked_consents"] == [str(consent.pk)]
    assert AuditEvent.objects.filter(action="messaging.consent.revoke", target_id=str(consent.pk)).exists()
    run_outbox()
    assert not Delivery.objects.filter(item=item, revoked_at__isnull=True).exists()
    assert {"kh.officer", "kh.customs", "th.officer"} <= notified(NotificationKind.REVOKED, item=item)


def test_a_requester_whose_country_lost_the_item_no_longer_opens_the_texts(s):
    item = post_item(s.user("vn.officer"), countries=["VN", "KH"])
    pending = consent_request_create(
        actor=s.user("kh.officer"), item_id=item.pk, target_country="TH", justification=JUSTIFICATION
    ).consent

    item_change(actor=s.user("vn.officer"), item_id=item.pk, countries=["VN"])

    view = consent_read(actor=s.user("kh.officer"), consent_id=pending.pk)  # still its own request to see
    assert (view.consent.status, view.justification) == (ConsentStatus.REVOKED, None)
    assert event("messaging.consent.read").details["opened"] is False
    assert consent_read(actor=s.user("vn.officer"), consent_id=pending.pk).justification == JUSTIFICATION
