"""Normalisation for matching (ISN issue 15, point 2): what officers type in six countries' habits reduces to one
value, bad values are refused naming their field, and a name alone never matches."""

from __future__ import annotations

import datetime
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from myanmar.converter import convert
from myanmartools import ZawgyiDetector

from isn.errors import InvalidInput
from messaging.matching import normalise
from messaging.matching.normalise import (
    birth_date,
    burmese_unicode,
    cas_number,
    digits_ascii,
    document_number,
    email,
    imo_number,
    lab_profile,
    logo_key,
    match_values,
    name_key,
    phone_e164,
    plate,
    wallet,
)

DETECTOR = ZawgyiDetector()
MYANMAR_BLOCK = "".join(map(chr, range(0x1000, 0x10A0)))
BURMESE_NAMES = ["မင်းအောင်လှိုင်", "အောင်ဆန်းစုကြည်", "ကျော်ကျော်", "သန်းထွန်း", "ဦးမောင်မောင်"]


def refused(call, *args, field: str, **kwargs) -> str:
    with pytest.raises(InvalidInput) as caught:
        call(*args, **kwargs)
    fields = caught.value.extra["fields"]
    assert list(fields) == [field]
    assert fields[field]
    assert all(isinstance(message, str) and message for message in fields[field])
    return fields[field][0]


# Done when: a person matches on name plus date of birth in differently spaced, cased and accented spellings and
# with a Buddhist-era year, never on name alone.


def test_a_person_matches_in_differently_spaced_cased_and_accented_spellings_with_a_buddhist_era_year():
    spellings = [
        {"name": "Nguyễn Văn Đức", "birth_date": "1987-03-15"},
        {"name": "  NGUYEN   van  duc ", "birth_date": "15/03/1987"},
        {"name": "nguyễn văn đức", "birth_date": "15/03/2530"},
        {"name": "Nguyen Van Duc", "birth_date": "๑๕/๐๓/๒๕๓๐"},
        {"name": "Nguye\u0302\u0303n Va\u0306n \u0110u\u031bc", "birth_date": "2530-03-15"},
    ]
    values = [match_values("person", spelling) for spelling in spellings]
    assert values == [[("person", "nguyen van duc|1987-03-15")]] * len(spellings)


def test_a_name_alone_never_matches():
    assert match_values("person", {"name": "Nguyễn Văn Đức"}) == []
    assert match_values("person", {"name": "Nguyễn Văn Đức", "aliases": ["Duc"], "birth_date": ""}) == []
    assert match_values("company", {"name": "Mekong Trading Co."}) == []


def test_each_alias_matches_with_the_date_of_birth():
    values = match_values(
        "person", {"name": "Somchai Jaidee", "aliases": ["สมชาย ใจดี", "SOMCHAI  JAIDEE"], "birth_date": "2520-01-02"}
    )
    assert values == [("person", "somchai jaidee|1977-01-02"), ("person", "สมชาย ใจดี|1977-01-02")]


def test_a_different_date_of_birth_is_a_different_person():
    one = match_values("person", {"name": "Nguyen Van Duc", "birth_date": "1987-03-15"})
    other = match_values("person", {"name": "Nguyen Van Duc", "birth_date": "1987-03-16"})
    assert one != other


# Done when: phone numbers typed in local and international forms and in Thai or Khmer digits match.


@pytest.mark.parametrize("typed", ["081 234 5678", "081-234-5678", "+66812345678", "+66 81 234 5678", "๐๘๑ ๒๓๔ ๕๖๗๘"])
def test_thai_phone_numbers_in_local_international_and_thai_digit_forms_match(typed):
    assert phone_e164(typed, "TH") == "+66812345678"
    assert match_values("phone", {"number": typed, "country": "th"}) == [("phone", "+66812345678")]


@pytest.mark.parametrize("typed", ["012 345 678", "+855 12 345 678", "០១២ ៣៤៥ ៦៧៨", "+៨៥៥ ១២ ៣៤៥ ៦៧៨"])
def test_cambodian_phone_numbers_in_khmer_digits_match(typed):
    assert phone_e164(typed, "KH") == "+85512345678"


def test_a_number_in_international_form_keeps_its_own_country_whatever_the_default():
    assert phone_e164("+85512345678", "TH") == "+85512345678"


def test_bad_phone_numbers_are_refused_naming_the_field():
    refused(phone_e164, "12", "TH", field="phone")
    refused(phone_e164, "not a number", "TH", field="phone")
    refused(phone_e164, "081 234 5678", "Thailand", field="country")
    refused(phone_e164, "081 234 5678", "XX", field="country")
    refused(match_values, "phone", {"number": "", "country": "TH"}, field="number")


# Done when: a Zawgyi-typed Burmese name matches its Unicode form.


@pytest.mark.parametrize("name", BURMESE_NAMES)
def test_a_zawgyi_typed_burmese_name_matches_its_unicode_form(name):
    zawgyi = convert(name, "unicode", "zawgyi")
    assert zawgyi != name
    assert DETECTOR.get_zawgyi_probability(zawgyi) > normalise.ZAWGYI_THRESHOLD
    assert DETECTOR.get_zawgyi_probability(name) < 0.05
    assert name_key(zawgyi) == name_key(name) == name
    person = {"birth_date": "1956-06-24"}
    assert match_values("person", {**person, "name": zawgyi}) == match_values("person", {**person, "name": name})


def test_burmese_marks_typed_in_another_order_are_the_same_syllable():
    assert burmese_unicode("လှုိင်") == burmese_unicode("လှိုင်") == "လှိုင်"
    assert burmese_unicode("ကို့်") == "ကို့်"


def test_a_burmese_zero_typed_for_the_letter_wa_reads_as_the_letter_in_names():
    assert name_key("\u1040\u1004\u103a\u1038") == name_key("\u101d\u1004\u103a\u1038") == "\u101d\u1004\u103a\u1038"
    assert name_key("\u1000\u1030\u1040") == "\u1000\u1030\u101d"
    assert name_key("\u1021\u1019\u103e\u1010\u103a \u1041\u1040") == "\u1021\u1019\u103e\u1010\u103a 10"


def test_text_without_burmese_is_left_alone():
    assert burmese_unicode("Nguyễn") == "Nguyễn"


# Digits of every script.


@pytest.mark.parametrize(
    ("typed", "ascii"),
    [("๐๑๒๓๔๕๖๗๘๙", "0123456789"), ("០១២៣៤៥៦៧៨៩", "0123456789"), ("໐໑໒໓໔໕໖໗໘໙", "0123456789"),
     ("၀၁၂၃၄၅၆၇၈၉", "0123456789"), ("႐႑႒႓႔႕႖႗႘႙", "0123456789"), ("ทะเบียน ๑๒", "ทะเบียน 12")],
)  # fmt: skip
def test_digits_of_thai_khmer_lao_burmese_and_shan_read_as_ascii(typed, ascii):
    assert digits_ascii(typed) == ascii


LOCAL_ZEROS = [0x0E50, 0x17E0, 0x0ED0, 0x1040, 0x1090]


@given(st.lists(st.tuples(st.sampled_from(LOCAL_ZEROS), st.integers(0, 9)), min_size=1, max_size=30))
def test_digits_ascii_of_any_local_script_digit_string_is_the_ascii_digits(digits):
    assert digits_ascii("".join(chr(zero + value) for zero, value in digits)) == "".join(str(v) for _, v in digits)


# Names.


def test_names_keep_the_vowels_and_tone_marks_of_thai_lao_khmer_and_burmese():
    for name in ["สมชาย ใจดี", "ສົມພອນ", "សុខ ចាន់", "အောင်ဆန်းစုကြည်"]:
        key = name_key(name)
        assert key == name
        assert any(unicodedata.category(ch).startswith("M") for ch in key)


def test_names_drop_latin_diacritics_punctuation_and_invisible_characters():
    assert name_key("Đặng Thị Ánh") == "dang thi anh"
    assert name_key("José  MARÍA-López") == "jose maria lopez"
    assert name_key("O\u2019Brien") == name_key("O'Brien") == "obrien"
    assert name_key("\uff2e\uff27\uff35\uff39\uff25\uff2e") == "nguyen"
    assert name_key("สมชาย\u200bใจดี") == "สมชายใจดี"


def test_bad_names_are_refused_naming_the_field():
    refused(name_key, "   ", field="name")
    refused(name_key, "...", field="name")
    refused(name_key, None, field="name")
    refused(match_values, "person", {"name": "A", "aliases": ["  "], "birth_date": "1980-01-01"}, field="aliases")


# Dates of birth.


@pytest.mark.parametrize(
    "typed", ["1987-03-15", "15/03/1987", "15.03.1987", "15-3-1987", "2530-03-15", "15/03/2530", "๑๕/๐๓/๒๕๓๐",
              "១៥/០៣/១៩៨៧", "၁၅/၀၃/၁၉၈၇", datetime.date(1987, 3, 15)],
)  # fmt: skip
def test_dates_of_birth_in_every_habit_read_the_same(typed):
    assert birth_date(typed) == "1987-03-15"


def test_the_buddhist_era_starts_at_2400():
    assert birth_date("2443-01-01") == "1900-01-01"
    refused(birth_date, "2399-01-01", field="birth_date")  # a year in the future, not a Buddhist-era one
    refused(birth_date, "2442-12-31", field="birth_date")  # 1899 CE


@pytest.mark.parametrize("typed", ["1987-02-30", "31/04/1987", "1899-12-31", "tomorrow", "87-03-15", "2600-01-01"])
def test_impossible_dates_of_birth_are_refused(typed):
    refused(birth_date, typed, field="birth_date")


def test_a_date_of_birth_in_the_future_is_refused():
    refused(birth_date, "2030-01-01", field="birth_date", today=datetime.date(2026, 12, 3))
    refused(birth_date, datetime.datetime(1987, 3, 15, 10, 0), field="birth_date")
    refused(match_values, "person", {"name": "A", "birth_date": "32/01/1980"}, field="birth_date")


# Plates, documents, accounts, logos and profiles.


def test_plates_are_upper_case_without_spaces_dots_and_dashes_with_their_country():
    assert plate("51c-123.45") == plate("51C 12345") == "51C12345"
    assert plate("๑กข ๑๒๓๔") == plate("1กข-1234") == "1กข1234"
    assert plate("กรุงเทพมหานคร 1กข 1234") == "กรุงเทพมหานคร1กข1234"
    assert match_values("vehicle", {"plate": "51c-123.45", "country": "vn"}) == [("plate", "VN|51C12345")]
    assert match_values("vehicle", {"plate": "51C12345", "country": "KH"}) != [("plate", "VN|51C12345")]
    refused(plate, "51C#123", field="plate")
    refused(plate, " - . ", field="plate")
    refused(match_values, "vehicle", {"plate": "51C12345"}, field="country")


def test_documents_carry_their_type_and_issuing_country():
    assert document_number("c 1234-567/8") == "C12345678"
    assert match_values("identity_document", {"doc_type": "Passport", "country": "th", "number": "aa 123 4567"}) == [
        ("document", "passport|TH|AA1234567")
    ]
    assert match_values("identity_document", {"doc_type": "National ID", "country": "TH", "number": "๑-๒๓๔๕"}) == [
        ("document", "national_id|TH|12345")
    ]
    refused(match_values, "identity_document", {"doc_type": "passport", "country": "TH", "number": "#"}, field="number")
    refused(match_values, "identity_document", {"country": "TH", "number": "A1"}, field="doc_type")


def test_bank_accounts_carry_their_country():
    assert match_values("bank_account", {"number": "123-4-56789 0", "country": "la"}) == [("account", "LA|1234567890")]


def test_logos_and_laboratory_profiles_carry_their_substance():
    assert logo_key("wy") == logo_key("W Y") == "WY"
    assert lab_profile("tha-2024 / ๐๗") == "THA202407"
    values = match_values("seizure", {"substance": "Methamphetamine", "logo": "r 67", "lab_profile": "p-12"})
    assert values == [("logo", "methamphetamine|R67"), ("lab_profile", "methamphetamine|P12")]
    assert match_values("seizure", {"substance": "heroin", "weight_kg": 12}) == []
    refused(match_values, "seizure", {"logo": "WY"}, field="substance")


def test_email_addresses_are_trimmed_and_lower_case():
    assert email("  Somchai.J@Example.CO.TH ") == "somchai.j@example.co.th"
    assert match_values("email", {"address": "A@B.LA"}) == [("email", "a@b.la")]
    for bad in ["somchai", "a@b", "a b@c.th", "a@@b.th"]:
        refused(email, bad, field="email")


# Wallets.


def test_wallets_take_each_chains_canonical_form():
    assert wallet("btc", "BC1QAR0SRRR7XFKVY5L643LYDNW9RE59GTZZWF5MDQ") == (
        "BTC", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq")  # fmt: skip
    taproot = "bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297"
    assert wallet("BTC", taproot) == ("BTC", taproot)
    assert wallet("Bitcoin", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa") == ("BTC", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa")
    assert wallet("BTC", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy") == ("BTC", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy")
    assert wallet("eth", "0xde0B295669a9FD93d5F28D9Ec85E40f4cb697BAe") == (
        "ETH", "0xde0b295669a9fd93d5f28d9ec85e40f4cb697bae")  # fmt: skip
    assert wallet("trx", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t") == ("TRON", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t")
    assert match_values("wallet", {"chain": "TRON", "address": "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"}) == [
        ("wallet", "TRON|TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t")
    ]


@pytest.mark.parametrize(
    ("chain", "address", "field"),
    [("BTC", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdr", "address"),  # one character off: checksum
     ("BTC", "bc1qAR0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "address"),  # mixed case
     ("BTC", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", "address"),
     ("BTC", "1a1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "address"),  # base58 is case-sensitive
     ("BTC", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", "address"),  # a Tron address is not a Bitcoin one
     ("TRON", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "address"),
     ("TRON", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6u", "address"),
     ("ETH", "0xde0b295669a9fd93d5f28d9ec85e40f4cb697ba", "address"),
     ("ETH", "de0b295669a9fd93d5f28d9ec85e40f4cb697bae", "address"),
     ("DOGE", "DH5yaieqoZN36fDVciNyRueRGvGLR3mr7L", "chain"),
     ("USDT", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", "chain")],
)  # fmt: skip
def test_bad_wallets_and_unknown_chains_are_refused(chain, address, field):
    refused(wallet, chain, address, field=field)


# CAS and IMO numbers.


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [("7732-18-5", "7732-18-5"), ("50-37-3", "50-37-3"), ("0000050-37-3", "50-37-3"), ("50373", "50-37-3"),
     ("๗๗๓๒-๑๘-๕", "7732-18-5"), ("103-90-2", "103-90-2"), ("7664-93-9", "7664-93-9")],
)  # fmt: skip
def test_cas_numbers_with_a_right_check_digit_are_canonical(typed, canonical):
    assert cas_number(typed) == canonical


@pytest.mark.parametrize("typed", ["7732-18-4", "50-37-2", "7664-39-9", "1-23-4", "CAS 50-37-3", "50-37"])
def test_cas_numbers_with_a_wrong_check_digit_or_shape_are_refused(typed):
    refused(cas_number, typed, field="cas")


def test_precursors_match_on_their_cas_number():
    assert match_values("precursor", {"cas": "0000103-79-7", "name": "P2P"}) == [("cas", "103-79-7")]
    refused(match_values, "precursor", {"cas": "103-79-8"}, field="cas")


def test_vessels_match_on_imo_number_and_flag_registration():
    assert imo_number("IMO 9074729") == imo_number("9074729") == "IMO9074729"
    refused(imo_number, "IMO 9074728", field="imo")
    assert match_values("vessel", {"imo": "imo9074729", "registration": "kh-123 4", "country": "KH"}) == [
        ("vessel", "IMO9074729"),
        ("vessel", "KH|KH1234"),
    ]


def test_companies_match_on_registration_number_in_their_country_never_on_name():
    assert match_values(
        "company", {"name": "Mekong Trading", "registration_number": "0105-5551 234", "country": "TH"}
    ) == [("company", "TH|01055551234")]


def test_locations_never_match_and_unknown_types_are_refused():
    assert match_values("location", {"name": "Tachileik", "lat": 20.45, "lon": 99.88}) == []
    refused(match_values, "spaceship", {}, field="type")


def test_what_the_converter_cannot_map_is_never_printed(capsys):
    garbage = "\u100e\u1089\u103c"  # a syllable python-myanmar's converter cannot map (left alone, it prints it)
    assert DETECTOR.get_zawgyi_probability(garbage) > normalise.ZAWGYI_THRESHOLD
    name_key(garbage)
    assert capsys.readouterr() == ("", "")


# Idempotence: normalising a normalised value changes nothing. Random Burmese code points are left out: whether they
# are Zawgyi is the detector's guess, which real names (the samples) keep stable and random marks need not.

TEXT = st.text(
    st.characters(codec="utf-8", categories=("L", "M", "N", "P", "Zs"), exclude_characters=MYANMAR_BLOCK),
    min_size=1,
    max_size=40,
) | st.sampled_from(["Nguyễn Văn Đức", "สมชาย ใจดี", "ສົມພອນ", "សុខ ចាន់", *BURMESE_NAMES])


@given(TEXT)
def test_name_key_is_idempotent(text):
    try:
        key = name_key(text)
    except InvalidInput:
        return
    assert name_key(key) == key


@given(TEXT)
def test_plate_document_logo_and_profile_are_idempotent(text):
    for normaliser in (plate, document_number, logo_key, lab_profile):
        try:
            value = normaliser(text)
        except InvalidInput:
            continue
        assert normaliser(value) == value


@given(st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date(2026, 1, 1)), st.booleans())
def test_birth_date_is_idempotent_and_reads_the_buddhist_era(date, buddhist):
    year = date.year + (543 if buddhist else 0)
    typed = f"{date.day:02d}/{date.month:02d}/{year}"
    assert birth_date(typed) == date.isoformat()
    assert birth_date(birth_date(typed)) == date.isoformat()


@given(st.integers(10_000_000, 99_999_999), st.sampled_from(["TH", "KH", "VN", "LA", "MM", "CN"]))
def test_phone_e164_is_idempotent(subscriber, country):
    try:
        number = phone_e164(f"09{subscriber}", country)
    except InvalidInput:
        return
    assert phone_e164(number, country) == number
    assert phone_e164(number, "US") == number


@given(st.integers(10_000, 9_999_999), st.integers(0, 99))
def test_cas_number_is_idempotent_and_refuses_any_other_check_digit(first, second):
    body = f"{first}{second:02d}"
    check = sum(position * int(digit) for position, digit in enumerate(reversed(body), start=1)) % 10
    canonical = cas_number(f"{first}-{second:02d}-{check}")
    assert canonical == f"{first}-{second:02d}-{check}"
    assert cas_number(canonical) == canonical
    refused(cas_number, f"{first}-{second:02d}-{(check + 1) % 10}", field="cas")
