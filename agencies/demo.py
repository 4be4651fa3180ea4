"""The demo network loaded by ``manage.py seed_demo``: real member agencies and real border crossings.

Contacts are invented (example.org, 555 numbers); names of agencies and crossings are public.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

from agencies.models import AgencyKind, Role

DEMO_PASSWORD = "mekong-demo-2026"  # noqa: S105 - printed by seed_demo; seed_demo refuses to run in production


@dataclass(frozen=True)
class DemoAgency:
    country: str
    short_name: str
    name: str
    kind: str
    duty_desk_province: str


@dataclass(frozen=True)
class DemoBLO:
    agency: str  # "CC/SHORT_NAME"
    name: str
    border_crossing: str
    province: str


AGENCIES = [
    DemoAgency("KH", "NACD", "National Authority for Combating Drugs", AgencyKind.DRUG_CONTROL, "Phnom Penh"),
    DemoAgency("KH", "CNP-ADD", "Cambodian National Police, Anti-Drug Department", AgencyKind.POLICE, "Phnom Penh"),
    DemoAgency("KH", "GDCE", "General Department of Customs and Excise", AgencyKind.CUSTOMS, "Phnom Penh"),
    DemoAgency("CN", "NNCC", "National Narcotics Control Commission", AgencyKind.DRUG_CONTROL, "Beijing"),
    DemoAgency("CN", "YNBP", "Yunnan Border Police, Anti-Narcotics Division", AgencyKind.BORDER_GUARD, "Yunnan"),
    DemoAgency("CN", "GACC", "General Administration of Customs", AgencyKind.CUSTOMS, "Beijing"),
    DemoAgency(
        "LA",
        "LCDC",
        "Lao National Commission for Drug Control and Supervision",
        AgencyKind.DRUG_CONTROL,
        "Vientiane Capital",
    ),
    DemoAgency(
        "LA", "CND", "Counter Narcotics Department, Ministry of Public Security", AgencyKind.POLICE, "Vientiane Capital"
    ),
    DemoAgency("MM", "CCDAC", "Central Committee for Drug Abuse Control", AgencyKind.DRUG_CONTROL, "Nay Pyi Taw"),
    DemoAgency("MM", "MPF-DED", "Myanmar Police Force, Drug Enforcement Division", AgencyKind.POLICE, "Nay Pyi Taw"),
    DemoAgency("TH", "ONCB", "Office of the Narcotics Control Board", AgencyKind.DRUG_CONTROL, "Bangkok"),
    DemoAgency("TH", "NSB", "Royal Thai Police, Narcotics Suppression Bureau", AgencyKind.POLICE, "Bangkok"),
    DemoAgency("TH", "CUSTOMS-TH", "Thai Customs Department", AgencyKind.CUSTOMS, "Bangkok"),
    DemoAgency("VN", "BGC", "Viet Nam Border Guard Command", AgencyKind.BORDER_GUARD, "Ha Noi"),
    DemoAgency(
        "VN",
        "C04",
        "Drug Crime Investigation Police Department, Ministry of Public Security",
        AgencyKind.POLICE,
        "Ha Noi",
    ),
    DemoAgency("VN", "VN-CUSTOMS", "Viet Nam Customs", AgencyKind.CUSTOMS, "Ha Noi"),
    DemoAgency(
        "UN", "UNODC-ROSEAP", "UNODC Regional Office for Southeast Asia and the Pacific", AgencyKind.UNODC, "Bangkok"
    ),
]

# Counterpart pairs along real crossings of the Mekong borders.
BLO_PAIRS = [
    (
        DemoBLO("VN/BGC", "Moc Bai BLO", "Moc Bai - Bavet", "Tay Ninh"),
        DemoBLO("KH/CNP-ADD", "Bavet BLO", "Bavet - Moc Bai", "Svay Rieng"),
    ),
    (
        DemoBLO("VN/BGC", "Tinh Bien BLO", "Tinh Bien - Phnom Den", "An Giang"),
        DemoBLO("KH/CNP-ADD", "Phnom Den BLO", "Phnom Den - Tinh Bien", "Takeo"),
    ),
    (
        DemoBLO("TH/ONCB", "Chiang Saen BLO", "Chiang Saen - Ton Pheung", "Chiang Rai"),
        DemoBLO("LA/CND", "Ton Pheung BLO", "Ton Pheung - Chiang Saen", "Bokeo"),
    ),
    (
        DemoBLO("TH/ONCB", "Chiang Khong BLO", "Chiang Khong - Houayxay", "Chiang Rai"),
        DemoBLO("LA/CND", "Houayxay BLO", "Houayxay - Chiang Khong", "Bokeo"),
    ),
    (
        DemoBLO("TH/ONCB", "Mae Sai BLO", "Mae Sai - Tachileik", "Chiang Rai"),
        DemoBLO("MM/MPF-DED", "Tachileik BLO", "Tachileik - Mae Sai", "Shan State"),
    ),
    (
        DemoBLO("TH/ONCB", "Mae Sot BLO", "Mae Sot - Myawaddy", "Tak"),
        DemoBLO("MM/MPF-DED", "Myawaddy BLO", "Myawaddy - Mae Sot", "Kayin State"),
    ),
    (
        DemoBLO("TH/ONCB", "Aranyaprathet BLO", "Aranyaprathet - Poipet", "Sa Kaeo"),
        DemoBLO("KH/CNP-ADD", "Poipet BLO", "Poipet - Aranyaprathet", "Banteay Meanchey"),
    ),
    (
        DemoBLO("CN/YNBP", "Mohan BLO", "Mohan - Boten", "Yunnan"),
        DemoBLO("LA/CND", "Boten BLO", "Boten - Mohan", "Luang Namtha"),
    ),
    (
        DemoBLO("CN/YNBP", "Ruili BLO", "Ruili - Muse", "Yunnan"),
        DemoBLO("MM/MPF-DED", "Muse BLO", "Muse - Ruili", "Shan State"),
    ),
    (
        DemoBLO("CN/YNBP", "Hekou BLO", "Hekou - Lao Cai", "Yunnan"),
        DemoBLO("VN/BGC", "Lao Cai BLO", "Lao Cai - Hekou", "Lao Cai"),
    ),
    (
        DemoBLO("VN/BGC", "Cau Treo BLO", "Cau Treo - Nam Phao", "Ha Tinh"),
        DemoBLO("LA/CND", "Nam Phao BLO", "Nam Phao - Cau Treo", "Bolikhamxay"),
    ),
    (
        DemoBLO("KH/CNP-ADD", "Stung Treng BLO", "Trapeang Kriel - Nong Nok Khiene", "Stung Treng"),
        DemoBLO("LA/CND", "Nong Nok Khiene BLO", "Nong Nok Khiene - Trapeang Kriel", "Champasak"),
    ),
]

WORKING_HOURS = (time(7, 30), time(17, 30))
DUTY_DESK_HOURS = (time(0, 0), time(23, 59))


@dataclass(frozen=True)
class DemoUser:
    username: str
    first_name: str
    last_name: str
    agency: str  # "CC/SHORT_NAME"
    role: str
    office: str | None  # a BLO name, "duty desk", or None


def _state_users(cc: str, blo_agency: str, blo: str, national_agency: str, first: str, last: str) -> list[DemoUser]:
    lower = cc.lower()
    return [
        DemoUser(f"{lower}.officer", first, last, blo_agency, Role.OFFICER, blo),
        DemoUser(f"{lower}.supervisor", first, f"{last} (supervisor)", blo_agency, Role.SUPERVISOR, blo),
        DemoUser(
            f"{lower}.focal", first, f"{last} (focal point)", national_agency, Role.NATIONAL_FOCAL_POINT, "duty desk"
        ),
        DemoUser(f"{lower}.admin", first, f"{last} (agency admin)", blo_agency, Role.AGENCY_ADMIN, None),
        DemoUser(f"{lower}.auditor", first, f"{last} (auditor)", national_agency, Role.NATIONAL_AUDITOR, None),
    ]


USERS = [
    *_state_users("VN", "VN/BGC", "Moc Bai BLO", "VN/C04", "Lan", "Nguyen"),
    *_state_users("KH", "KH/CNP-ADD", "Bavet BLO", "KH/NACD", "Sophea", "Chan"),
    *_state_users("TH", "TH/ONCB", "Chiang Saen BLO", "TH/ONCB", "Somchai", "Wongsa"),
    *_state_users("LA", "LA/CND", "Ton Pheung BLO", "LA/LCDC", "Khamla", "Phommachanh"),
    *_state_users("MM", "MM/MPF-DED", "Tachileik BLO", "MM/CCDAC", "Aung", "Kyaw"),
    *_state_users("CN", "CN/YNBP", "Mohan BLO", "CN/NNCC", "Wei", "Zhang"),
    DemoUser("un.auditor", "Maria", "Santos (regional auditor)", "UN/UNODC-ROSEAP", Role.REGIONAL_AUDITOR, None),
    DemoUser("un.admin", "Maria", "Santos (agency admin)", "UN/UNODC-ROSEAP", Role.AGENCY_ADMIN, None),
    DemoUser("un.officer", "Maria", "Santos", "UN/UNODC-ROSEAP", Role.OFFICER, "duty desk"),
]

PLATFORM_ADMIN_USERNAME = "isn.operator"


# One published API key per member state's BLO agency, for trying the REST API (read and write). Development only.
API_KEY_NAME = "demo case system"
API_KEY_AGENCIES = ["VN/BGC", "KH/CNP-ADD", "TH/ONCB", "LA/CND", "MM/MPF-DED", "CN/YNBP"]


def api_key_parts(agency: str) -> tuple[str, str]:
    """The demo key of an agency as (prefix, secret): fixed, so seed_demo prints the same keys every time."""
    slug = agency.replace("/", "").replace("-", "").lower()
    return f"demo{slug}"[:16], f"{slug}-demo-secret-not-for-production"
