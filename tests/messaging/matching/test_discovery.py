"""Hit/no-hit discovery (ISN issue 15, point 4-6): a check of identifiers finds the items its caller can read, and for
active discoverable items they cannot, only the holding agency, its country and a fresh reference; the holder is
told; TLP:RED, non-discoverable, withdrawn and expired items never hit; quotas hold; bad input writes nothing."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from myanmar.converter import convert

from agencies.api_keys import api_key_issue
from agencies.keyring import match_key_rotate, match_key_versions
from agencies.models import Role
from audit.models import AuditEvent
from isn.errors import InvalidInput, PermissionDenied
from messaging.items.changes import item_change, item_withdraw, items_expire
from messaging.matching import discovery
from messaging.matching.discovery import (
    QUOTA_USED,
    HitView,
    QuotaExceeded,
    identifiers_check,
    related_items,
)
from messaging.models import Change, ChangeKind, CheckOrigin, Hit, Item, MatchCheck
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

PLATE = {"type": "vehicle", "plate": "51C-123.45", "country": "VN"}
PLATE_TYPED = {"type": "vehicle", "plate": "51c 12345", "country": "vn"}
PHONE = {"type": "phone", "number": "081 234 5678", "country": "TH"}
PERSON = {"type": "person", "name": "Nguyễn Văn Đức", "birth_date": "15/03/1987"}


def _vn_only(post, vn_officer, **overrides):
    """A VN item released to VN only, discoverable, naming the plate."""
    fields = {"countries": ["VN"], "entities": [PLATE], "discoverable": True, **overrides}
    return post(vn_officer, **fields).item


def _hits(result, position=0) -> list[HitView]:
    return result.results[position].hits


# --- the issue's case: VN holds a plate, KH checks it -----------------------------------------------------------------


def test_a_kh_officer_checking_a_plate_vn_holds_learns_only_viet_nam_bgc_and_a_reference(post, vn_officer, kh_officer):
    item = _vn_only(post, vn_officer)
    result = identifiers_check(actor=kh_officer, identifiers=[PLATE_TYPED])
    (answer,) = result.results
    assert answer.position == 0
    assert answer.entity_type == "vehicle"
    assert answer.related == []
    (hit,) = answer.hits
    assert (hit.country, hit.agency_code, hit.agency_name) == ("VN", "BGC", "Viet Nam Border Guard Command")
    assert hit.reference.startswith("HIT-")
    # What the asker is shown has no field that names or leads to the item.
    assert {f.name for f in dataclasses.fields(hit)} == {
        "reference",
        "agency_id",
        "agency_code",
        "agency_name",
        "country",
    }
    assert str(item.pk) not in repr(result.results)
    row = Hit.objects.get(reference=hit.reference)
    assert (row.item_id, row.holder_agency_id, row.holder_country) == (item.pk, item.originator_agency_id, "VN")
    assert (row.asker_user_id, row.asker_country, row.entity_type) == (kh_officer.pk, "KH", "vehicle")
    assert (result.check.identifiers, result.check.hits, result.check.origin) == (1, 1, CheckOrigin.CHECK)


def test_the_holder_is_told_in_its_feed_and_the_asker_in_theirs(post, vn_officer, kh_officer):
    item = _vn_only(post, vn_officer)
    Change.objects.all().delete()
    (hit,) = _hits(identifiers_check(actor=kh_officer, identifiers=[PLATE]))
    on_item = Change.objects.get(kind=ChangeKind.HIT_ON_ITEM)
    assert (on_item.agency_id, on_item.item_id, on_item.hit_reference) == (
        item.originator_agency_id,
        item.pk,
        hit.reference,
    )
    received = Change.objects.get(kind=ChangeKind.HIT_RECEIVED)
    assert (received.user_id, received.agency_id, received.item_id) == (kh_officer.pk, None, None)
    assert received.hit_reference == hit.reference


def test_a_check_is_one_audit_event_under_the_askers_country_and_each_hit_one_under_the_holders(
    post, vn_officer, kh_officer
):
    item = _vn_only(post, vn_officer, entities=[PLATE, PHONE])
    result = identifiers_check(actor=kh_officer, identifiers=[PLATE, PHONE, {**PHONE, "number": "081 999 0000"}])
    (check,) = AuditEvent.objects.filter(action="messaging.match.check", actor_user_id=kh_officer.pk)
    assert (check.actor_user_id, check.target_country, check.target_id) == (kh_officer.pk, "KH", str(result.check.pk))
    assert check.details == {
        "origin": "check",
        "identifiers": 3,
        "types": ["vehicle", "phone", "phone"],
        "related": 0,
        "hits": 2,
        "hit_countries": ["VN"],
    }
    hit_events = list(AuditEvent.objects.filter(action="messaging.match.hit").order_by("id"))
    assert len(hit_events) == 2
    assert {(event.target_type, event.target_id, event.target_country) for event in hit_events} == {
        ("messaging.item", str(item.pk), "VN")
    }
    assert {event.details["entity_type"] for event in hit_events} == {"vehicle", "phone"}
    # Never the values (nor a reference that would let the asker's auditors link one to the item).
    written = repr([event.details for event in [check, *hit_events]])
    for value in ("51C", "12345", "0812345678", "+66812345678", "HIT-"):
        assert value not in written


def test_two_identifiers_of_one_item_get_references_that_cannot_be_linked(post, vn_officer, kh_officer):
    _vn_only(post, vn_officer, entities=[PLATE, PHONE])
    result = identifiers_check(actor=kh_officer, identifiers=[PLATE, PHONE])
    (plate_hit,), (phone_hit,) = _hits(result, 0), _hits(result, 1)
    assert plate_hit.reference != phone_hit.reference
    again = _hits(identifiers_check(actor=kh_officer, identifiers=[PLATE]))[0]
    assert again.reference not in (plate_hit.reference, phone_hit.reference)  # fresh for each check too
    assert Hit.objects.count() == 3


# --- readable items are related, not hits ---------------------------------------------------------------------------


def test_items_the_caller_can_read_are_related_not_hits(post, vn_officer, kh_officer):
    released = post(vn_officer, countries=["VN", "KH"], entities=[PLATE], discoverable=True).item
    result = identifiers_check(actor=kh_officer, identifiers=[PLATE])
    assert result.results[0].related == [released.pk]
    assert result.results[0].hits == []
    assert Hit.objects.count() == 0


def test_items_of_the_callers_own_agency_are_never_hits(post, vn_officer, moc_bai):
    colleague = MembershipFactory(user=UserFactory(username="vn.colleague"), agency=moc_bai.agency).user
    own = _vn_only(post, vn_officer)
    result = identifiers_check(actor=colleague, identifiers=[PLATE])
    assert result.results[0].related == [own.pk]
    assert result.results[0].hits == []


def test_a_third_country_not_released_to_gets_a_hit_and_another_agency_of_the_holders_country_too(
    post, vn_officer, th_officer, la_officer, vn_police_officer
):
    post(vn_officer, countries=["VN", "KH"], entities=[PLATE], discoverable=True, agencies=[])
    for asker in (th_officer, la_officer):
        (hit,) = _hits(identifiers_check(actor=asker, identifiers=[PLATE]))
        assert (hit.country, hit.agency_code) == ("VN", "BGC")
    # A second VN agency reads it (VN is released, unrestricted): related.
    assert identifiers_check(actor=vn_police_officer, identifiers=[PLATE]).results[0].hits == []


def test_narrowing_an_agency_away_turns_its_related_item_into_a_hit(post, vn_officer, kh_officer):
    item = post(vn_officer, countries=["VN", "KH"], entities=[PLATE], discoverable=True).item
    assert identifiers_check(actor=kh_officer, identifiers=[PLATE]).results[0].related == [item.pk]
    item_change(actor=vn_officer, item_id=item.pk, countries=["VN"])
    answer = identifiers_check(actor=kh_officer, identifiers=[PLATE]).results[0]
    assert answer.related == []
    assert [hit.country for hit in answer.hits] == ["VN"]


def test_those_who_may_not_read_content_may_not_check(vn_auditor, outsider, platform_admin):
    for person in (vn_auditor, outsider, platform_admin):
        with pytest.raises(PermissionDenied):
            identifiers_check(actor=person, identifiers=[PLATE])
    assert MatchCheck.objects.count() == 0


# --- what never hits -------------------------------------------------------------------------------------------------


def test_tlp_red_and_non_discoverable_items_never_hit(post, vn_officer, kh_officer):
    post(vn_officer, countries=["VN"], entities=[PLATE], discoverable=False)
    post(vn_officer, countries=["VN"], entities=[PLATE], discoverable=False, handling_code="red")
    result = identifiers_check(actor=kh_officer, identifiers=[PLATE])
    assert result.results[0].hits == []
    assert result.results[0].related == []
    assert Hit.objects.count() == 0
    assert not Change.objects.filter(kind__in=[ChangeKind.HIT_ON_ITEM, ChangeKind.HIT_RECEIVED]).exists()


def test_a_tlp_red_item_cannot_be_made_discoverable_at_posting_or_later(post, vn_officer):
    with pytest.raises(InvalidInput) as refused:
        post(vn_officer, handling_code="red", discoverable=True, entities=[PLATE])
    assert list(refused.value.extra["fields"]) == ["discoverable"]
    assert "TLP:RED" in refused.value.extra["fields"]["discoverable"][0]
    assert Item.objects.count() == 0
    red = post(vn_officer, handling_code="red", discoverable=False, entities=[PLATE]).item
    with pytest.raises(InvalidInput) as refused:
        item_change(actor=vn_officer, item_id=red.pk, discoverable=True)
    assert list(refused.value.extra["fields"]) == ["discoverable"]
    red.refresh_from_db()
    assert red.discoverable is False


def test_the_originator_may_make_an_item_discoverable_later_and_it_then_hits(post, vn_officer, kh_officer):
    item = _vn_only(post, vn_officer, discoverable=False)
    assert _hits(identifiers_check(actor=kh_officer, identifiers=[PLATE])) == []
    item_change(actor=vn_officer, item_id=item.pk, discoverable=True)
    event = AuditEvent.objects.filter(action="messaging.item.change").latest("id")
    assert event.details["changed"] == ["discoverable"]
    assert event.details["discoverable"] is True
    assert len(_hits(identifiers_check(actor=kh_officer, identifiers=[PLATE]))) == 1


def test_a_withdrawn_item_stops_matching_at_once(post, vn_officer, kh_officer):
    item = _vn_only(post, vn_officer)
    assert len(_hits(identifiers_check(actor=kh_officer, identifiers=[PLATE]))) == 1
    item_withdraw(actor=vn_officer, item_id=item.pk)
    assert _hits(identifiers_check(actor=kh_officer, identifiers=[PLATE])) == []


def test_an_item_past_its_review_date_stops_matching_even_before_it_is_expired(post, vn_officer, kh_officer):
    item = _vn_only(post, vn_officer)
    Item.objects.filter(pk=item.pk).update(review_date=timezone.now().date() - timedelta(days=1))
    assert _hits(identifiers_check(actor=kh_officer, identifiers=[PLATE])) == []
    items_expire()
    assert Item.objects.get(pk=item.pk).status == "expired"
    assert _hits(identifiers_check(actor=kh_officer, identifiers=[PLATE])) == []


# --- what officers type matches -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        {"name": "nguyen  van   DUC", "birth_date": "1987-03-15"},
        {"name": "NGUYỄN VĂN ĐỨC", "birth_date": "15/03/2530"},  # a Buddhist-era year
        {"name": "Nguyen Van Duc", "birth_date": "2530-03-15"},
    ],
)
def test_a_person_matches_on_name_and_date_of_birth_however_typed(post, vn_officer, kh_officer, typed):
    _vn_only(post, vn_officer, entities=[PERSON])
    (hit,) = _hits(identifiers_check(actor=kh_officer, identifiers=[{"type": "person", **typed}]))
    assert hit.country == "VN"


def test_a_person_never_matches_on_name_alone_and_another_birth_date_is_another_person(post, vn_officer, kh_officer):
    _vn_only(post, vn_officer, entities=[PERSON])
    with pytest.raises(InvalidInput) as refused:
        identifiers_check(actor=kh_officer, identifiers=[{"type": "person", "name": "Nguyen Van Duc"}])
    assert list(refused.value.extra["fields"]) == ["identifiers[0]"]
    assert "birth" in refused.value.extra["fields"]["identifiers[0]"][0]
    other = {"type": "person", "name": "Nguyen Van Duc", "birth_date": "1987-03-16"}
    assert _hits(identifiers_check(actor=kh_officer, identifiers=[other])) == []


@pytest.mark.parametrize("typed", ["+66812345678", "+66 81 234 5678", "081-234-5678", "๐๘๑ ๒๓๔ ๕๖๗๘"])
def test_a_thai_phone_matches_in_local_international_and_thai_digit_forms(post, vn_officer, kh_officer, typed):
    _vn_only(post, vn_officer, entities=[PHONE])
    (hit,) = _hits(
        identifiers_check(actor=kh_officer, identifiers=[{"type": "phone", "number": typed, "country": "TH"}])
    )
    assert hit.agency_code == "BGC"


@pytest.mark.parametrize("typed", ["+855 12 345 678", "០១២ ៣៤៥ ៦៧៨"])
def test_a_cambodian_phone_in_khmer_digits_matches(post, vn_officer, th_officer, typed):
    _vn_only(post, vn_officer, entities=[{"type": "phone", "number": "012 345 678", "country": "KH"}])
    identifier = {"type": "phone", "number": typed, "country": "KH"}
    assert len(_hits(identifiers_check(actor=th_officer, identifiers=[identifier]))) == 1


def test_a_zawgyi_typed_burmese_name_matches_its_unicode_form(post, vn_officer, kh_officer):
    unicode_name = "မင်းအောင်လှိုင်"
    _vn_only(post, vn_officer, entities=[{"type": "person", "name": unicode_name, "birth_date": "1956-07-03"}])
    zawgyi = convert(unicode_name, "unicode", "zawgyi")
    assert zawgyi != unicode_name
    identifier = {"type": "person", "name": zawgyi, "birth_date": "03/07/1956"}
    assert len(_hits(identifiers_check(actor=kh_officer, identifiers=[identifier]))) == 1


def test_a_check_matches_tokens_of_every_live_match_key_version_during_a_rotation(post, vn_officer, kh_officer):
    _vn_only(post, vn_officer)  # its token made under version 1
    match_key_rotate(actor=None)
    assert match_key_versions() == [2, 1]
    _vn_only(post, vn_officer, entities=[PLATE, PHONE])  # under version 2
    assert len(_hits(identifiers_check(actor=kh_officer, identifiers=[PLATE]))) == 2


# --- bad input and the limit of 50 ----------------------------------------------------------------------------------


def _nothing_written() -> None:
    assert MatchCheck.objects.filter(origin=CheckOrigin.CHECK).count() == 0
    assert Hit.objects.count() == 0
    assert not Change.objects.filter(kind__in=[ChangeKind.HIT_ON_ITEM, ChangeKind.HIT_RECEIVED]).exists()
    assert not AuditEvent.objects.filter(action="messaging.match.check", details__origin="check").exists()
    assert not AuditEvent.objects.filter(action="messaging.match.hit").exists()


def test_bad_identifiers_are_refused_naming_each_field_and_nothing_is_written(post, vn_officer, kh_officer):
    _vn_only(post, vn_officer)
    bad = [
        PLATE,
        {"type": "phone", "number": "not a number", "country": "TH"},
        {"type": "starship", "name": "x"},
        {"type": "vehicle", "plate": "51C-123.45", "country": "VN", "wheels": "six"},
        "a plate",
    ]
    with pytest.raises(InvalidInput) as refused:
        identifiers_check(actor=kh_officer, identifiers=bad)
    fields = refused.value.extra["fields"]
    assert set(fields) == {"identifiers[1].number", "identifiers[2].type", "identifiers[3].wheels", "identifiers[4]"}
    _nothing_written()


def test_more_than_50_identifiers_are_refused_with_a_clear_error(post, vn_officer, kh_officer):
    _vn_only(post, vn_officer)
    with pytest.raises(InvalidInput) as refused:
        identifiers_check(actor=kh_officer, identifiers=[PLATE] * 51)
    (message,) = refused.value.extra["fields"]["identifiers"]
    assert "At most 50" in message
    assert "51" in message
    _nothing_written()
    assert len(identifiers_check(actor=kh_officer, identifiers=[PLATE] * 50).results) == 50


def test_an_empty_check_is_refused(kh_officer):
    for nothing in ([], None, "51C-123.45"):
        with pytest.raises(InvalidInput):
            identifiers_check(actor=kh_officer, identifiers=nothing)
    _nothing_written()


# --- quotas ----------------------------------------------------------------------------------------------------------


def test_a_person_over_their_daily_quota_is_refused_saying_when_it_resets(settings, post, vn_officer, kh_officer):
    settings.ISN_MATCH_DAILY_PER_PERSON = 3
    _vn_only(post, vn_officer)
    identifiers_check(actor=kh_officer, identifiers=[PLATE, PLATE])
    with pytest.raises(QuotaExceeded) as refused:
        identifiers_check(actor=kh_officer, identifiers=[PLATE, PLATE])
    assert refused.value.scope == "person"
    assert (refused.value.limit, refused.value.used, refused.value.requested) == (3, 2, 2)
    tomorrow = datetime.combine(timezone.now().astimezone(UTC).date() + timedelta(days=1), datetime.min.time(), UTC)
    assert refused.value.resets_at == tomorrow
    assert int(refused.value.headers["Retry-After"]) > 0
    assert refused.value.extra["quota"]["scope"] == "person"
    assert MatchCheck.objects.filter(user=kh_officer).count() == 1  # the refused check wrote nothing
    identifiers_check(actor=kh_officer, identifiers=[PLATE])  # one more fits exactly


def test_yesterdays_checks_do_not_count(settings, kh_officer):
    settings.ISN_MATCH_DAILY_PER_PERSON = 2
    identifiers_check(actor=kh_officer, identifiers=[PLATE, PLATE])
    MatchCheck.objects.update(created_at=timezone.now() - timedelta(days=1))
    identifiers_check(actor=kh_officer, identifiers=[PLATE, PLATE])


def test_the_agency_quota_counts_every_member_and_the_key_quota_every_call_with_the_key(settings, kh_officer, bavet):
    settings.ISN_MATCH_DAILY_PER_AGENCY = 4
    colleague = MembershipFactory(user=UserFactory(username="kh.colleague"), agency=bavet.agency).user
    identifiers_check(actor=kh_officer, identifiers=[PLATE] * 3)
    with pytest.raises(QuotaExceeded) as refused:
        identifiers_check(actor=colleague, identifiers=[PLATE] * 2)
    assert refused.value.scope == "agency"

    settings.ISN_MATCH_DAILY_PER_AGENCY = 100
    settings.ISN_MATCH_DAILY_PER_KEY = 2
    admin = MembershipFactory(user=UserFactory(username="kh.admin"), agency=bavet.agency, role=Role.AGENCY_ADMIN).user
    issued = api_key_issue(
        actor=admin,
        agency=bavet.agency,
        name="case system",
        scopes=["read", "write"],
        expires_at=timezone.now() + timedelta(days=30),
    )
    system = issued.key.user
    identifiers_check(actor=system, identifiers=[PLATE, PLATE], api_key=issued.key)
    with pytest.raises(QuotaExceeded) as refused:
        identifiers_check(actor=system, identifiers=[PLATE], api_key=issued.key)
    assert refused.value.scope == "key"
    assert MatchCheck.objects.filter(api_key=issued.key).count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_checks_cannot_overshoot_the_quota(settings, kh_officer):
    settings.ISN_MATCH_DAILY_PER_PERSON = 3
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def check() -> None:
        try:
            barrier.wait(timeout=10)
            with transaction.atomic():
                identifiers_check(actor=kh_officer, identifiers=[PLATE, PLATE])
            outcomes.append("ok")
        except QuotaExceeded:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=check) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["ok", "refused"]
    assert sum(MatchCheck.objects.values_list("identifiers", flat=True)) == 2


# --- the post's own check -------------------------------------------------------------------------------------------


def test_posting_a_discoverable_item_checks_its_entities_and_shows_the_poster_its_hits(post, vn_officer, kh_officer):
    _vn_only(post, vn_officer)
    location = {"type": "location", "name": "Bavet market"}
    posted = post(kh_officer, countries=["KH"], entities=[location, PLATE], discoverable=True)
    check = posted.post_check
    assert check.checked is True
    (answer,) = check.results
    assert (answer.position, answer.entity_type, answer.related) == (1, "vehicle", [])  # its own item left out
    (hit,) = answer.hits
    assert (hit.country, hit.agency_code) == ("VN", "BGC")
    (row,) = MatchCheck.objects.filter(origin=CheckOrigin.POST, user=kh_officer)
    assert (row.user_id, row.identifiers, row.hits) == (kh_officer.pk, 1, 1)
    assert Hit.objects.get(reference=hit.reference).position == 1
    assert Change.objects.filter(kind=ChangeKind.HIT_ON_ITEM, hit_reference=hit.reference).exists()


def test_a_non_discoverable_or_tlp_red_post_checks_nothing_and_tells_no_other_originator(post, vn_officer, kh_officer):
    _vn_only(post, vn_officer)
    quiet = post(kh_officer, countries=["KH"], entities=[PLATE], discoverable=False)
    red = post(kh_officer, countries=["KH"], entities=[PLATE], discoverable=False, handling_code="red")
    for posted in (quiet, red):
        assert posted.post_check.checked is False
        assert posted.post_check.results == []
    assert MatchCheck.objects.filter(user=kh_officer).count() == 0
    assert not Change.objects.filter(kind=ChangeKind.HIT_ON_ITEM).exists()


def test_post_time_checks_count_against_the_quota(settings, post, vn_officer, kh_officer):
    settings.ISN_MATCH_DAILY_PER_PERSON = 2
    post(kh_officer, countries=["KH"], entities=[PLATE, PHONE], discoverable=True)
    with pytest.raises(QuotaExceeded):
        identifiers_check(actor=kh_officer, identifiers=[PLATE])


def test_a_post_over_the_quota_is_stored_unchecked_and_says_so(settings, post, vn_officer, kh_officer):
    settings.ISN_MATCH_DAILY_PER_PERSON = 1
    _vn_only(post, vn_officer)
    identifiers_check(actor=kh_officer, identifiers=[PLATE])
    posted = post(kh_officer, countries=["KH"], entities=[PLATE], discoverable=True)
    assert Item.objects.filter(pk=posted.item.pk, discoverable=True).exists()
    assert posted.post_check.checked is False
    assert posted.post_check.reason == QUOTA_USED
    assert posted.post_check.quota.scope == "person"
    assert MatchCheck.objects.filter(user=kh_officer).count() == 1
    assert AuditEvent.objects.filter(action="messaging.item.create", target_id=str(posted.item.pk)).exists()


# --- related items of an item ---------------------------------------------------------------------------------------


def test_related_items_are_those_the_viewer_can_read_that_share_a_token(post, vn_officer, kh_officer):
    first = post(vn_officer, countries=["VN", "KH"], entities=[PLATE]).item
    second = post(vn_officer, countries=["VN", "KH"], entities=[PHONE, PLATE_TYPED]).item
    hidden = _vn_only(post, vn_officer)
    post(vn_officer, countries=["VN", "KH"], entities=[PHONE])
    assert related_items(kh_officer, first) == [second.pk]
    assert set(related_items(vn_officer, first)) == {second.pk, hidden.pk}
    assert related_items(kh_officer, hidden) == []  # not theirs to read: nothing said about it


def test_roles_without_content_get_no_related_items(post, vn_officer, vn_auditor):
    first = post(vn_officer, entities=[PLATE]).item
    post(vn_officer, entities=[PLATE])
    assert related_items(vn_auditor, first) == []


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_post_checks_its_entities_without_waiting_for_its_agencys_checks(post, vn_officer, kh_officer):
    """A check of KH's holds KH's quota lock to its end; a discoverable post by KH meanwhile is neither held behind
    it nor refused: its own check counts without the lock (and so can never wait for it in the other order)."""
    _vn_only(post, vn_officer)
    agency_id = kh_officer.membership.agency_id
    held, release = threading.Event(), threading.Event()

    def check_in_progress() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [discovery.QUOTA_LOCK_CLASS, agency_id])
                held.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=check_in_progress)
    holder.start()
    try:
        assert held.wait(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '3s'")  # a wait for the quota lock fails the post instead of hanging
        content = post(kh_officer, countries=["KH"], entities=[PLATE], discoverable=True)
    finally:
        release.set()
        holder.join(30)
    assert content.post_check.checked
    (answer,) = content.post_check.results
    assert [hit.country for hit in answer.hits] == ["VN"]
    assert MatchCheck.objects.get(origin=CheckOrigin.POST, user=kh_officer).identifiers == 1
