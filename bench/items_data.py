"""The scale-data generator for items: a year of traffic across the seven members and sixty agencies.

    python -m tests.servers -m bench.items_data --items 1000000   (on throwaway PostgreSQL and Redis)

The base network comes from ``seed_demo``; ``ensure_network`` adds provincial agencies (sixty in all), their duty
desks and four officers in each. Items are sealed for real, exactly as ``messaging.items.lifecycle.item_create`` seals
them (its own associated-data helpers, every country's primary key, a fresh data key and nonce per item), but
without calling it a million times: worker processes seal chunks of items and format them as COPY text, and the
parent streams them into PostgreSQL. Item creation events are not written to the audit trail (bench.verify loads
a million events of its own); everything else ``item_create`` writes is: the item, one wrapped key and one grant
per released country, agency restrictions, named grants (guardian's direct model), the poster's read mark, and
three to six entities, sealed like the item's text, with the blind match tokens of their values (normalised by
``messaging.matching.normalise`` itself). Values are drawn from bounded pools, so the same phone number, plate or
person turns up in several items across countries, as the hit/no-hit benchmark needs.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import time
import uuid
from bisect import bisect
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate

AGENCIES_PER_COUNTRY = {"KH": 9, "CN": 10, "LA": 8, "MM": 8, "TH": 11, "VN": 11, "UN": 3}  # sixty in all
OFFICERS_PER_AGENCY = 4
BENCH_USER_PREFIX = "bench."
CHUNK = 10_000
SEED = 4
SPAN = timedelta(days=365)

# Provincial agencies added to the demo network: (province, abbreviation), one agency each, kinds in turn.
PROVINCES = {
    "KH": [("Battambang", "BTB"), ("Koh Kong", "KKG"), ("Kampot", "KPT"), ("Siem Reap", "SRP"),
           ("Preah Sihanouk", "PSN"), ("Oddar Meanchey", "OMC")],
    "CN": [("Xishuangbanna", "XSBN"), ("Dehong", "DH"), ("Lincang", "LC"), ("Pu'er", "PE"), ("Guangxi", "GX"),
           ("Guangdong", "GD"), ("Honghe", "HH")],
    "LA": [("Bokeo", "BK"), ("Luang Namtha", "LNT"), ("Champasak", "CPS"), ("Savannakhet", "SVK"),
           ("Oudomxay", "ODX"), ("Khammouane", "KM")],
    "MM": [("Shan State", "SHN"), ("Kachin State", "KCN"), ("Kayin State", "KYN"), ("Tanintharyi", "TNI"),
           ("Yangon", "YGN"), ("Mandalay", "MDY")],
    "TH": [("Chiang Mai", "CMI"), ("Chiang Rai", "CRI"), ("Tak", "TAK"), ("Nong Khai", "NKI"),
           ("Ubon Ratchathani", "UBN"), ("Sa Kaeo", "SKW"), ("Songkhla", "SKA"), ("Mukdahan", "MDH")],
    "VN": [("Lao Cai", "LCI"), ("Quang Tri", "QTR"), ("Tay Ninh", "TNH"), ("An Giang", "AGG"), ("Dien Bien", "DBN"),
           ("Son La", "SLA"), ("Ha Tinh", "HTH"), ("Nghe An", "NAN")],
    "UN": [("Myanmar", "MM"), ("Lao PDR", "LA")],
}  # fmt: skip

# Who posts: Thailand and Viet Nam most, UNODC least.
ORIGINATOR_WEIGHTS = {"TH": 25, "VN": 19, "CN": 16, "MM": 13, "KH": 12, "LA": 10, "UN": 5}
RELEASE_SIZE_WEIGHTS = {1: 15, 2: 40, 3: 30, 4: 15}  # countries, the originator's included
RESTRICTED_SHARE = 0.15
NAMED_SHARE_OF_RESTRICTED = 0.03
WITHDRAWN_SHARE = 0.01
REVIEW_DAYS = (90, 730)
PRIORITY_WEIGHTS = {"routine": 80, "priority": 16, "flash": 4}
CATEGORY_WEIGHTS = {
    "meth_pills": 20, "meth_crystal": 15, "heroin_opium": 10, "ketamine": 7, "cannabis": 5, "nps": 3,
    "precursors": 8, "human_trafficking": 8, "wildlife": 6, "timber": 3, "cyber_fraud": 8, "money_laundering": 4,
    "other": 3,
}  # fmt: skip
RELIABILITY_WEIGHTS = {"A": 5, "B": 35, "C": 35, "D": 10, "E": 3, "X": 12}
CREDIBILITY_WEIGHTS = {1: 10, 2: 35, 3: 35, 4: 15, 5: 5}
HANDLING_WEIGHTS = {"clear": 5, "green": 30, "amber": 45, "amber_strict": 15, "red": 5}
LANGUAGES = {"KH": "km", "CN": "zh-hans", "LA": "lo", "MM": "my", "TH": "th", "VN": "vi", "UN": "en"}

_SUBJECTS = {
    "meth_pills": "methamphetamine tablets", "meth_crystal": "crystal methamphetamine", "heroin_opium": "heroin",
    "ketamine": "ketamine", "cannabis": "cannabis", "nps": "new psychoactive substances",
    "precursors": "precursor chemicals", "human_trafficking": "trafficked persons", "wildlife": "pangolin scales",
    "timber": "rosewood logs", "cyber_fraud": "scam-compound recruits", "money_laundering": "cash couriers",
    "other": "contraband",
}  # fmt: skip
_TITLES = [
    "Suspected shipment of {s} via {x}",
    "Courier network moving {s} towards {x}",
    "Seizure of {s} near {x}: follow-up requested",
    "New concealment method for {s} observed at {x}",
    "Vehicle of interest linked to {s}, last seen at {x}",
]
_SENTENCES = [
    "A reliable informant reports that a consignment of {s} will cross at {x} within the next ten days.",
    "The consignment is expected to be concealed in agricultural produce loaded on a refrigerated truck.",
    "Two suspects, both nationals of a neighbouring member state, have been observed meeting at a guesthouse.",
    "Mobile phone analysis links the group to a seizure made earlier this year by a counterpart office.",
    "Payments appear to be routed through informal remittance agents and an online gaming platform.",
    "The route has shifted from the main checkpoint to a river crossing used at night by long-tail boats.",
    "Counterparts are asked to check the attached vehicle registrations against their own records.",
    "Packaging bears the same logo as tablets seized in the previous quarter, suggesting a common producer.",
    "The driver uses several identity documents; a photograph has been shared through the BLO channel.",
    "No arrests are planned yet; the originating agency requests that no action be taken without consultation.",
    "Local sources describe increased movement of workers towards compounds on the far side of the border.",
    "Customs declarations list the goods as fertiliser; laboratory tests on a sample are pending.",
]
# Entities: how many per item, of which types, and how many distinct values each type draws from.
ENTITIES_PER_ITEM = (3, 6)
ENTITY_TYPE_WEIGHTS = {"phone": 30, "vehicle": 20, "person": 20, "email": 10, "identity_document": 10, "location": 10}
ENTITY_POOL = 150_000
PHONE_POOL_PER_COUNTRY = 25_000
DISCOVERABLE_SHARE = 0.6
_GIVEN = ["Nguyen", "Tran", "Somchai", "Sok", "Li", "Aung", "Khamla", "Pham", "Wang", "Chan", "Boun", "Kyaw",
          "Le", "Somsak", "Dara", "Zhang", "Thida", "Vong", "Hoang", "Malee"]  # fmt: skip
_MIDDLE = ["Van", "Thi", "Minh", "Hong", "Sri", "Wei", "Min", "Chai", "Lin", "Kim", "Duc", "Mya", "Phon", "Jia",
           "Ngoc", "Tun", "Sai", "Bao", "Hai", "Noi"]  # fmt: skip
_FAMILY = ["An", "Binh", "Chanthavong", "Daovong", "Ean", "Fang", "Gao", "Htet", "Inthavong", "Jing", "Kham",
           "Lwin", "Meas", "Naing", "Ouk", "Phommachanh", "Quang", "Rattana", "Sopheak", "Thein"]  # fmt: skip
_PLATE_LETTERS = "ABCDEFGHKLMNPSTUVXYZ"
_DOC_TYPES = ("passport", "national_id")
_ISSUERS = ("KH", "CN", "LA", "MM", "TH", "VN")
_PLACES = ("Moc Bai", "Bavet", "Mae Sai", "Boten", "Ruili", "Mukdahan", "Poipet", "Lao Cai", "Tachileik")
_SEAL_OVERHEAD = 29  # format byte + 96-bit nonce + 128-bit tag: isn.crypto.seal's layout


@dataclass(frozen=True)
class Poster:
    user_id: int
    office_id: int | None
    border_crossing: str


@dataclass
class Plan:
    """Everything a sealing worker needs, picklable: the network's ids and each country's primary key."""

    posters: dict[int, list[Poster]]  # agency id -> its members who may post
    agencies: dict[str, list[int]]  # country -> agency ids
    agency_weights: dict[str, list[int]]
    named_candidates: dict[int, list[int]]  # agency id -> officer user ids
    keks: dict[str, tuple[int, bytes]]  # country -> (primary version, key)
    view_item_permission_id: int
    crossings: dict[str, list[str]]
    match_key: tuple[int, bytes]  # (version, key): the match key the tokens are made under
    phones: dict[str, list[str]]  # country -> valid national numbers, as officers type them
    end: datetime
    total: int
    offset: int
    seed: int
    today: date = field(default_factory=lambda: datetime.now(UTC).date())


@dataclass
class Chunk:
    tables: dict[str, bytes]
    restricted: int = 0
    named: int = 0
    ended: int = 0
    grants: int = 0
    entities: int = 0
    tokens: int = 0


@dataclass
class Generated:
    items: int
    seconds: float
    load_seconds: float
    analyze_seconds: float
    grants: int
    restricted: int
    named: int
    ended: int
    workers: int
    entities: int = 0
    tokens: int = 0

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0


# --- the network --------------------------------------------------------------------------------------------------


def ensure_network() -> None:
    """Sixty agencies, each with a duty desk and four officers, on top of the demo network (idempotent)."""
    import io
    from contextlib import redirect_stdout

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import transaction

    from agencies.demo import DUTY_DESK_HOURS
    from agencies.models import Agency, AgencyKind, Country, Membership, Office, OfficeKind, Role
    from agencies.services import agency_create, membership_create, office_create

    with redirect_stdout(io.StringIO()):
        call_command("seed_demo")
    kinds = [
        (AgencyKind.POLICE, "{} Provincial Police, Counter-Narcotics Division", "PP"),
        (AgencyKind.BORDER_GUARD, "{} Border Guard Command", "BG"),
        (AgencyKind.CUSTOMS, "{} Customs Branch", "CU"),
    ]
    User = get_user_model()
    with transaction.atomic():
        for country in Country.objects.all():
            have = Agency.objects.filter(country=country).count()
            for index, (province, abbreviation) in enumerate(PROVINCES[country.code]):
                if have >= AGENCIES_PER_COUNTRY[country.code]:
                    break
                if country.code == "UN":
                    kind, name, short_name = (
                        AgencyKind.UNODC,
                        f"UNODC Country Office {province}",
                        f"UNODC-{abbreviation}",
                    )
                else:
                    kind, pattern, suffix = kinds[index % len(kinds)]
                    name, short_name = pattern.format(province), f"{abbreviation}-{suffix}"
                if Agency.objects.filter(country=country, short_name=short_name).exists():
                    continue
                agency = agency_create(actor=None, country=country, name=name, short_name=short_name, kind=kind)
                office_create(
                    actor=None,
                    agency=agency,
                    name=f"{short_name} duty desk",
                    kind=OfficeKind.DUTY_DESK,
                    province=province,
                    opens_at=DUTY_DESK_HOURS[0],
                    closes_at=DUTY_DESK_HOURS[1],
                )
                have += 1
        for agency in Agency.objects.order_by("pk"):
            offices = list(Office.objects.filter(agency=agency).order_by("kind", "pk"))
            for number in range(OFFICERS_PER_AGENCY):
                username = f"{BENCH_USER_PREFIX}{agency.country_id}.{agency.short_name}.{number + 1}".lower()
                if User.objects.filter(username=username).exists():
                    continue
                user = User(username=username, first_name="Bench", last_name=f"Officer {number + 1}")
                user.set_unusable_password()
                user.save()
                if not Membership.objects.filter(user=user).exists():
                    membership_create(
                        actor=None, user=user, agency=agency, role=Role.OFFICER, office=offices[number % len(offices)]
                    )


def phone_pools(seed: int) -> dict[str, list[str]]:
    """Valid mobile numbers of each member country in their national form: the example number with its last six
    digits varied, kept when ``phonenumbers`` says the number can exist."""
    import phonenumbers

    rng = random.Random(seed)
    pools: dict[str, list[str]] = {}
    for region in _ISSUERS:
        example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        national = str(example.national_number)
        numbers: set[str] = set()
        while len(numbers) < PHONE_POOL_PER_COUNTRY:
            candidate = phonenumbers.parse(national[:-6] + f"{rng.randrange(1_000_000):06d}", region)
            if phonenumbers.is_valid_number(candidate):
                numbers.add(phonenumbers.format_number(candidate, phonenumbers.PhoneNumberFormat.NATIONAL))
        pools[region] = sorted(numbers)
    return pools


def make_plan(total: int, *, offset: int = 0, seed: int = SEED) -> Plan:
    from django.contrib.auth.models import Permission

    from agencies import demo
    from agencies.keyring import match_key, primary_key
    from agencies.models import Agency, Country, Membership, Office, OfficeKind, Role

    posting_roles = [Role.OFFICER, Role.SUPERVISOR, Role.NATIONAL_FOCAL_POINT]
    posters: dict[int, list[Poster]] = {}
    named: dict[int, list[int]] = {}
    for m in Membership.objects.filter(is_active=True, role__in=posting_roles).select_related("office").order_by("pk"):
        crossing = m.office.border_crossing if m.office is not None else ""
        posters.setdefault(m.agency_id, []).append(Poster(m.user_id, m.office_id, crossing))
        if m.role == Role.OFFICER:
            named.setdefault(m.agency_id, []).append(m.user_id)
    national = {(spec.country, spec.short_name) for spec in demo.AGENCIES}
    agencies: dict[str, list[int]] = {}
    weights: dict[str, list[int]] = {}
    for agency in Agency.objects.filter(is_active=True, pk__in=posters).order_by("pk"):
        agencies.setdefault(agency.country_id, []).append(agency.pk)
        # The demo network's national agencies post three times as much as a provincial one.
        weights.setdefault(agency.country_id, []).append(3 if (agency.country_id, agency.short_name) in national else 1)
    crossings: dict[str, list[str]] = {}
    for office in Office.objects.filter(kind=OfficeKind.BLO).select_related("agency"):
        crossings.setdefault(office.agency.country_id, []).append(office.border_crossing)
    return Plan(
        posters=posters,
        agencies=agencies,
        agency_weights=weights,
        named_candidates=named,
        keks={country.code: primary_key(country.code) for country in Country.objects.all()},
        view_item_permission_id=Permission.objects.get(content_type__app_label="messaging", codename="view_item").pk,
        crossings=crossings,
        match_key=match_key(),
        phones=phone_pools(seed),
        end=datetime.now(UTC),
        total=total,
        offset=offset,
        seed=seed,
    )


# --- sealing (worker processes) -----------------------------------------------------------------------------------

_plan: Plan | None = None
_normalised: dict[tuple[object, ...], list[tuple[str, str]]] = {}  # a worker's memo of match_values over the pools


def _init_worker(plan: Plan) -> None:
    global _plan  # one plan per worker process, set once by the pool
    _plan = plan


class _Weighted:
    """Fast weighted choice with a given random source."""

    def __init__(self, weights: dict) -> None:  # type: ignore[type-arg]
        self.values = list(weights)
        self.cumulative = list(accumulate(weights.values()))
        self.total = self.cumulative[-1]

    def pick(self, rng: random.Random):  # type: ignore[no-untyped-def]
        return self.values[bisect(self.cumulative, rng.random() * self.total)]


NULL = "\\N"


def _bytea(value: bytes) -> str:
    return "\\\\x" + value.hex()


def _text(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", " ").replace("\n", " ")


def entity_fields(
    entity_type: str, rng: random.Random, phones: dict[str, list[str]], country: str
) -> dict[str, object]:
    """One entity as an officer would type it, its value drawn from the type's bounded pool (``phones``:
    ``phone_pools``)."""
    k = rng.randrange(ENTITY_POOL)
    if entity_type == "phone":
        region = country if country in phones else rng.choice(_ISSUERS)
        pool = phones[region]
        return {"number": pool[k % len(pool)], "country": region}
    if entity_type == "vehicle":
        letter = _PLATE_LETTERS[k % len(_PLATE_LETTERS)]
        return {"plate": f"{10 + k % 89}{letter}-{k % 1000:03d}.{(k // 1000) % 100:02d}", "country": _ISSUERS[k % 6]}
    if entity_type == "person":
        name = f"{_GIVEN[k % 20]} {_MIDDLE[(k // 20) % 20]} {_FAMILY[(k // 400) % 20]}"
        born = date(1960, 1, 1) + timedelta(days=k % 14_600)
        return {"name": name, "birth_date": born.isoformat()}
    if entity_type == "email":
        return {"address": f"{_GIVEN[k % 20].lower()}.{_FAMILY[(k // 20) % 20].lower()}{k}@example.net"}
    if entity_type == "identity_document":
        return {"doc_type": _DOC_TYPES[k % 2], "country": _ISSUERS[k % 6], "number": f"N{k:08d}"}
    return {"name": rng.choice(_PLACES), "country": country if country in _ISSUERS else "TH"}


def seal_chunk(bounds: tuple[int, int]) -> Chunk:
    """Items ``start`` to ``stop`` (in time order) as COPY text for each table."""
    import json

    from agencies.keyring import blind_token
    from isn.crypto import new_key, seal, wrap_key
    from messaging.core.sealing import item_entity_aad, item_field_aad, item_key_aad
    from messaging.matching.normalise import match_values

    plan = _plan
    assert plan is not None
    start, stop = bounds
    rng = random.Random(plan.seed * 1_000_003 + plan.offset + start)
    countries = _Weighted(ORIGINATOR_WEIGHTS)
    sizes = _Weighted(RELEASE_SIZE_WEIGHTS)
    priorities = _Weighted(PRIORITY_WEIGHTS)
    categories = _Weighted(CATEGORY_WEIGHTS)
    reliabilities = _Weighted(RELIABILITY_WEIGHTS)
    credibilities = _Weighted(CREDIBILITY_WEIGHTS)
    handlings = _Weighted(HANDLING_WEIGHTS)
    entity_types = _Weighted(ENTITY_TYPE_WEIGHTS)
    match_version, match_secret = plan.match_key
    agency_pickers = {
        code: _Weighted(dict(zip(ids, plan.agency_weights[code], strict=True))) for code, ids in plan.agencies.items()
    }
    step = SPAN / plan.total
    begin = plan.end - SPAN
    items, keys, country_grants, agency_grants, named_grants, reads = [], [], [], [], [], []
    entities, tokens = [], []
    chunk = Chunk(tables={})
    for number in range(start, stop):
        item_id = uuid.uuid4()
        created = begin + step * (number + rng.random())
        created_text = created.isoformat()
        country = countries.pick(rng)
        agency_id = agency_pickers[country].pick(rng)
        poster = rng.choice(plan.posters[agency_id])
        released = {country}
        size = sizes.pick(rng)
        while len(released) < size:
            released.add(countries.pick(rng))
        review = created.date() + timedelta(days=rng.randint(*REVIEW_DAYS))
        status = "active"
        if review < plan.today:
            status = "expired"
        elif rng.random() < WITHDRAWN_SHARE:
            status = "withdrawn"
        restricted: list[tuple[int, str]] = []
        named: list[int] = []
        if status != "active":
            # Withdrawal and expiry shred every other country and drop restrictions and names (item_withdraw).
            released = {country}
            chunk.ended += 1
        elif rng.random() < RESTRICTED_SHARE:
            chunk.restricted += 1
            others = sorted(released - {country})
            narrowed = [rng.choice(others) if others else country]
            if len(others) > 1 and rng.random() < 0.3:
                narrowed.append(next(code for code in others if code != narrowed[0]))
            for code in narrowed:
                pool = plan.agencies[code]
                chosen = rng.sample(pool, min(len(pool), rng.choice((1, 1, 2))))
                restricted.extend((pk, code) for pk in chosen)
                if rng.random() < NAMED_SHARE_OF_RESTRICTED:
                    # Need-to-know: an officer of that country outside the agencies it is narrowed to.
                    outside = [pk for pk in pool if pk not in chosen and plan.named_candidates.get(pk)]
                    if outside:
                        named.append(rng.choice(plan.named_candidates[rng.choice(outside)]))
        category = categories.pick(rng)
        crossing = poster.border_crossing
        if not crossing and plan.crossings.get(country) and rng.random() < 0.6:
            crossing = rng.choice(plan.crossings[country])
        where = crossing or "the border"
        subject = _SUBJECTS[category]
        title = rng.choice(_TITLES).format(s=subject, x=where)
        sentences = rng.randint(3, 14)
        body = " ".join(rng.choice(_SENTENCES) for _ in range(sentences)).format(s=subject, x=where)
        data_key = new_key()
        title_sealed = seal(data_key, title.encode(), aad=item_field_aad(item_id, "title", 1))
        body_sealed = seal(data_key, body.encode(), aad=item_field_aad(item_id, "body", 1))
        language = LANGUAGES[country] if rng.random() < 0.8 else "en"
        office = poster.office_id or NULL
        handling = handlings.pick(rng)
        discoverable = handling != "red" and rng.random() < DISCOVERABLE_SHARE
        items.append(
            f"{item_id}\t{agency_id}\t{office}\t{poster.user_id}\t{country}\t"
            f"{_bytea(title_sealed)}\t{_bytea(body_sealed)}\t1\t{language}\t{category}\t{priorities.pick(rng)}\t"
            f"{reliabilities.pick(rng)}\t{credibilities.pick(rng)}\t{handling}\t{_text(crossing)}\t"
            f"{review.isoformat()}\t{status}\t{'t' if discoverable else 'f'}\t{created_text}\t{created_text}\n"
        )
        for position in range(rng.randint(*ENTITIES_PER_ITEM)):
            entity_type = entity_types.pick(rng)
            fields = entity_fields(entity_type, rng, plan.phones, country)
            entity_id = uuid.uuid4()
            plaintext = json.dumps(fields, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
            fields_sealed = seal(data_key, plaintext, aad=item_entity_aad(item_id, entity_id, 1))
            entities.append(f"{entity_id}\t{item_id}\t{position}\t{entity_type}\t{_bytea(fields_sealed)}\n")
            chunk.entities += 1
            if status != "active":
                continue  # a withdrawn or expired item's tokens are deleted (messaging.matching.entities.tokens_drop)
            memo_key = (entity_type, *fields.values())
            pairs = _normalised.get(memo_key)
            if pairs is None:
                # Pool values repeat: normalising each once per worker keeps phonenumbers' parse off the hot path.
                pairs = _normalised[memo_key] = match_values(entity_type, fields)
            for kind, value in pairs:
                token = blind_token(match_secret, kind, value)
                tokens.append(f"{item_id}\t{entity_id}\t{kind}\t{_bytea(token)}\t{match_version}\n")
                chunk.tokens += 1
        for code in sorted(released):
            version, kek = plan.keks[code]
            wrapped = wrap_key(kek, data_key, aad=item_key_aad(item_id, code, version))
            keys.append(f"{item_id}\t{code}\t{version}\t{_bytea(wrapped)}\n")
            country_grants.append(f"{item_id}\t{code}\t{created_text}\n")
        chunk.grants += len(released)
        agency_grants.extend(f"{item_id}\t{pk}\t{code}\t{created_text}\n" for pk, code in restricted)
        named_grants.extend(f"{item_id}\t{user_id}\t{plan.view_item_permission_id}\n" for user_id in set(named))
        chunk.named += len(set(named))
        reads.append(f"{item_id}\t{poster.user_id}\t{created_text}\n")
    chunk.tables = {
        "item": "".join(items).encode(),
        "key": "".join(keys).encode(),
        "country_grant": "".join(country_grants).encode(),
        "agency_grant": "".join(agency_grants).encode(),
        "named": "".join(named_grants).encode(),
        "read": "".join(reads).encode(),
        "entity": "".join(entities).encode(),
        "token": "".join(tokens).encode(),
    }
    return chunk


# --- loading (the parent) -----------------------------------------------------------------------------------------


def _copy_statements() -> dict[str, str]:
    from messaging.models import (
        Item,
        ItemAgencyGrant,
        ItemCountryGrant,
        ItemEntity,
        ItemKey,
        ItemRead,
        ItemUserObjectPermission,
        MatchToken,
    )

    columns = {
        "item": (
            Item,
            "id, originator_agency_id, originator_office_id, originator_user_id, originator_country, title_sealed, "
            "body_sealed, content_version, language, category, priority, source_reliability, info_credibility, "
            "handling_code, border_crossing, review_date, status, discoverable, created_at, updated_at",
        ),
        "key": (ItemKey, "item_id, country_id, kek_version, wrapped_key"),
        "country_grant": (ItemCountryGrant, "item_id, country_id, created_at"),
        "agency_grant": (ItemAgencyGrant, "item_id, agency_id, country_id, created_at"),
        "named": (ItemUserObjectPermission, "content_object_id, user_id, permission_id"),
        "read": (ItemRead, "item_id, user_id, first_read_at"),
        "entity": (ItemEntity, "id, item_id, position, entity_type, fields_sealed"),
        "token": (MatchToken, "item_id, entity_id, kind, token, key_version"),
    }
    return {name: f"COPY {model._meta.db_table} ({cols}) FROM STDIN" for name, (model, cols) in columns.items()}


def loaded_tables() -> list[str]:
    from messaging.models import (
        Item,
        ItemAgencyGrant,
        ItemCountryGrant,
        ItemEntity,
        ItemKey,
        ItemRead,
        ItemUserObjectPermission,
        MatchToken,
    )

    models = (
        Item,
        ItemKey,
        ItemCountryGrant,
        ItemAgencyGrant,
        ItemUserObjectPermission,
        ItemRead,
        ItemEntity,
        MatchToken,
    )
    return [model._meta.db_table for model in models]


def generate(count: int, *, workers: int | None = None, seed: int = SEED, progress: bool = True) -> Generated:
    """Seal and load ``count`` more items spread over the last year, then VACUUM ANALYZE the tables."""
    from django.db import connection

    from messaging.models import Item

    ensure_network()
    offset = Item.objects.count()
    plan = make_plan(count, offset=offset, seed=seed)
    workers = workers or min(2, os.cpu_count() or 1)
    statements = _copy_statements()
    bounds = [(start, min(start + CHUNK, count)) for start in range(0, count, CHUNK)]
    totals = Chunk(tables={})
    started = time.perf_counter()
    load = 0.0
    connection.close()  # the workers are forked: they must not share the parent's socket
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=_init_worker, initargs=(plan,)) as pool:
        connection.ensure_connection()
        raw = connection.connection
        with raw.cursor() as cursor:
            superuser = cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
            if superuser:
                # As pg_restore --disable-triggers: the rows are consistent by construction, and a foreign-key
                # check per row would triple the load time. Checked in bulk afterwards (check_references).
                cursor.execute("SET session_replication_role = replica")
        try:
            for done, chunk in enumerate(pool.imap(seal_chunk, bounds), start=1):
                t0 = time.perf_counter()
                with raw.transaction(), raw.cursor() as cursor:
                    for name, data in chunk.tables.items():
                        if data:
                            with cursor.copy(statements[name]) as copy:
                                copy.write(data)
                load += time.perf_counter() - t0
                totals.restricted += chunk.restricted
                totals.named += chunk.named
                totals.ended += chunk.ended
                totals.grants += chunk.grants
                totals.entities += chunk.entities
                totals.tokens += chunk.tokens
                if progress and (done % 10 == 0 or done == len(bounds)):
                    elapsed = time.perf_counter() - started
                    print(f"  items: {bounds[done - 1][1]:,} of {count:,} in {elapsed:.0f} s", flush=True)
        finally:
            with raw.cursor() as cursor:
                cursor.execute("SET session_replication_role = DEFAULT")
    sealed_and_loaded = time.perf_counter() - started
    t0 = time.perf_counter()
    if superuser:
        check_references()
    with connection.cursor() as cursor:
        for table in loaded_tables():
            # What autovacuum would have done by the time a real system held a year of items.
            cursor.execute(f"VACUUM (ANALYZE) {table}")
    analyze = time.perf_counter() - t0
    return Generated(
        items=count,
        seconds=sealed_and_loaded + analyze,
        load_seconds=load,
        analyze_seconds=analyze,
        grants=totals.grants,
        restricted=totals.restricted,
        named=totals.named,
        ended=totals.ended,
        workers=workers,
        entities=totals.entities,
        tokens=totals.tokens,
    )


def check_references() -> None:
    """Every loaded row points at rows that exist (the foreign-key triggers were off while loading)."""
    from django.db import connection

    checks = {
        "items without their agency, office or poster": (
            "SELECT count(*) FROM messaging_item i WHERE NOT EXISTS (SELECT 1 FROM agencies_agency a "
            "WHERE a.id = i.originator_agency_id) OR NOT EXISTS (SELECT 1 FROM auth_user u "
            "WHERE u.id = i.originator_user_id) OR (i.originator_office_id IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM agencies_office o WHERE o.id = i.originator_office_id))"
        ),
        "wrapped keys without their item": (
            "SELECT count(*) FROM messaging_itemkey k LEFT JOIN messaging_item i ON i.id = k.item_id WHERE i.id IS NULL"
        ),
        "country grants without their item": (
            "SELECT count(*) FROM messaging_itemcountrygrant g LEFT JOIN messaging_item i ON i.id = g.item_id "
            "WHERE i.id IS NULL"
        ),
        "agency grants without their item or agency": (
            "SELECT count(*) FROM messaging_itemagencygrant g LEFT JOIN messaging_item i ON i.id = g.item_id "
            "LEFT JOIN agencies_agency a ON a.id = g.agency_id WHERE i.id IS NULL OR a.id IS NULL"
        ),
        "named grants without their item or user": (
            "SELECT count(*) FROM messaging_itemuserobjectpermission p LEFT JOIN messaging_item i "
            "ON i.id = p.content_object_id LEFT JOIN auth_user u ON u.id = p.user_id WHERE i.id IS NULL OR u.id IS NULL"
        ),
        "read marks without their item": (
            "SELECT count(*) FROM messaging_itemread r LEFT JOIN messaging_item i ON i.id = r.item_id "
            "WHERE i.id IS NULL"
        ),
        "entities without their item": (
            "SELECT count(*) FROM messaging_itementity e LEFT JOIN messaging_item i ON i.id = e.item_id "
            "WHERE i.id IS NULL"
        ),
        "match tokens without their entity, or of another item": (
            "SELECT count(*) FROM messaging_matchtoken t LEFT JOIN messaging_itementity e ON e.id = t.entity_id "
            "WHERE e.id IS NULL OR e.item_id <> t.item_id"
        ),
    }
    with connection.cursor() as cursor:
        for what, sql in checks.items():
            cursor.execute(sql)
            broken = cursor.fetchone()[0]
            if broken:
                raise SystemExit(f"bench: generated data is inconsistent: {broken:,} {what}")


# --- the generated data opens through the real services -----------------------------------------------------------


def check_sample(size: int = 12, *, seed: int = 7) -> int:
    """Open ``size`` generated items through ``item_read`` as a recipient in another released country, and check that
    an officer of an unreleased country and of a restricted-away agency are refused. Returns the items checked."""
    from django.contrib.auth import get_user_model

    from agencies.keyring import match_tokens
    from agencies.models import Membership, Role
    from isn.errors import NotFound
    from messaging.items.lifecycle import item_read
    from messaging.matching.normalise import match_values
    from messaging.models import Item, ItemAgencyGrant, ItemCountryGrant, ItemStatus, MatchToken

    rng = random.Random(seed)
    User = get_user_model()
    officers: dict[str, list[Membership]] = {}
    for m in Membership.objects.filter(role=Role.OFFICER, is_active=True).select_related("agency", "user"):
        officers.setdefault(m.agency.country_id, []).append(m)
    newest = Item.objects.order_by("-created_at").values_list("created_at", flat=True).first()
    checked = 0
    for _attempt in range(size * 20):
        if checked >= size:
            break
        moment = newest - SPAN * rng.random()
        item = (
            Item.objects.filter(status=ItemStatus.ACTIVE, created_at__lte=moment)
            .order_by("-created_at")
            .only("pk", "originator_country", "originator_agency_id", "body_sealed")
            .first()
        )
        if item is None:
            continue
        released = set(ItemCountryGrant.objects.filter(item=item).values_list("country_id", flat=True))
        restrictions = dict(ItemAgencyGrant.objects.filter(item=item).values_list("agency_id", "country_id"))
        others = sorted(released - {item.originator_country}) or [item.originator_country]
        country = rng.choice(others)
        allowed = [
            m
            for m in officers[country]
            if m.agency_id != item.originator_agency_id
            and (country not in restrictions.values() or m.agency_id in restrictions)
        ]
        if not allowed:
            continue
        reader = User.objects.get(pk=rng.choice(allowed).user_id)
        content = item_read(actor=reader, item_id=item.pk)
        if not content.title or len(content.body.encode()) != len(bytes(item.body_sealed)) - _SEAL_OVERHEAD:
            raise SystemExit(f"bench: generated item {item.pk} did not open as written")
        if not ENTITIES_PER_ITEM[0] <= len(content.entities) <= ENTITIES_PER_ITEM[1]:
            raise SystemExit(f"bench: generated item {item.pk} opened with {len(content.entities)} entities")
        pairs = [pair for entity in content.entities for pair in match_values(entity["type"], entity)]
        if sorted(match_tokens(pairs)[1]) != sorted(
            bytes(token) for token in MatchToken.objects.filter(item=item).values_list("token", flat=True)
        ):
            raise SystemExit(f"bench: generated item {item.pk}'s match tokens are not its entities' tokens")
        outsiders = [code for code in officers if code not in released]
        refused = [rng.choice(officers[rng.choice(outsiders)])] if outsiders else []
        refused += [
            m
            for code in set(restrictions.values())
            for m in officers[code]
            if m.agency_id not in restrictions and m.agency_id != item.originator_agency_id
        ][:1]
        for membership in refused:
            try:
                item_read(actor=User.objects.get(pk=membership.user_id), item_id=item.pk)
            except NotFound:
                continue
            raise SystemExit(f"bench: {membership.user} could open generated item {item.pk}, not released to them")
        checked += 1
    if checked < size:
        raise SystemExit(f"bench: only {checked} of {size} sampled items could be checked")
    return checked


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.items_data", description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000, help="how many items to add (default 1,000,000)")
    parser.add_argument("--workers", type=int, default=None, help="sealing processes (default: up to 2)")
    args = parser.parse_args(argv)
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print("bench.items_data: run it through python -m tests.servers (it needs PostgreSQL)", file=sys.stderr)
        return 2
    from bench.__main__ import _create_database, _setup

    _create_database()
    _setup()
    result = generate(args.items, workers=args.workers)
    print(
        f"{result.items:,} items in {result.seconds:.1f} s ({result.rate:,.0f} items/s, {result.workers} sealing "
        f"processes; COPY {result.load_seconds:.1f} s, checks and VACUUM ANALYZE {result.analyze_seconds:.1f} s): "
        f"{result.grants:,} country grants, {result.restricted:,} restricted to agencies, {result.named:,} named "
        f"grants, {result.ended:,} expired or withdrawn; {result.entities:,} entities, {result.tokens:,} match tokens"
    )
    print(f"checked: {check_sample()} sampled items open for a recipient and are refused to non-recipients")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
