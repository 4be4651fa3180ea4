"""What officers type, reduced to one spelling per value, so that the same person, phone or plate typed in six
countries' habits yields the same string (the blind match tokens are made from these strings).

Pure functions, no database. Each returns the normalised value or raises `InvalidInput` naming the field
(``extra={"fields": {field: [message]}}``); nothing is returned half-normalised. `match_values` turns one entity
into its matchable ``(type, value)`` pairs.

Choices, so that everyone reading the tokens reads the same thing:
- Digits of any script (Thai, Khmer, Lao, Burmese, Shan, ...) are read through Unicode's own digit values.
- Burmese typed in Zawgyi is recognised by Google's detector (myanmartools) and converted by python-myanmar's
  converter; Burmese marks are then put in the storage order of Unicode Technical Note #11, because the same
  syllable can be typed with its marks in another order (the converter keeps the typed order).
- A date of birth with a year of 2400 or more is a Buddhist-era year (CE = BE - 543): no one was born in 2400 CE,
  and dates of birth before 1900 CE are refused, so a year is never both (Thai officers write 2530 for 1987). Dates
  are year first (``YYYY-MM-DD``) or day first (``DD/MM/YYYY``), never month first: all six countries write the day
  first, or the year.
- A name alone never matches: a person matches on name plus date of birth (or on a document); a company on its
  registration number in its country.
"""

from __future__ import annotations

import datetime
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping

import myanmar.converter
import phonenumbers
from myanmartools import ZawgyiDetector

from isn.errors import InvalidInput

ZAWGYI_THRESHOLD = 0.95
"""The detector's probability above which Burmese text is taken as Zawgyi (it answers near 0 or near 1)."""

_detector = ZawgyiDetector()

# python-myanmar prints a syllable it cannot map to standard output (and leaves that part out): what an officer
# typed must never reach the logs, so its module's `print` is silenced (the name shadows the built-in for that module
# only; nothing else in it prints outside its command-line entry point).
myanmar.converter.print = lambda *args, **kwargs: None  # type: ignore[attr-defined]

# Unicode Technical Note #11 storage order of the marks that follow a Burmese consonant (or stack): medials Ya, Ra,
# Wa, Ha; vowel E; upper vowels; lower vowels; vowel AA; anusvara; dot below; asat; visarga.
_BURMESE_MARK_RANK = {
    "\u103b": 1,
    "\u103c": 2,
    "\u103d": 3,
    "\u103e": 4,
    "\u1031": 5,
    "\u102d": 6,
    "\u102e": 6,
    "\u1032": 6,
    "\u102f": 7,
    "\u1030": 7,
    "\u102b": 8,
    "\u102c": 8,
    "\u1036": 9,
    "\u1037": 10,
    "\u103a": 11,
    "\u1038": 12,
}
_BURMESE_MARK_RUN = re.compile("[" + "".join(_BURMESE_MARK_RANK) + "]{2,}")
_BURMESE = re.compile("[\u1000-\u109f]")

# Latin letters with a stroke, which no decomposition takes apart.
_LATIN_STROKES = str.maketrans({"đ": "d", "Đ": "d", "ł": "l", "Ł": "l", "ø": "o", "Ø": "o", "ħ": "h", "Ħ": "h"})
_APOSTROPHES = str.maketrans(dict.fromkeys("'\u2019\u02bc\u2018`", ""))

# In a name, punctuation, spaces and control characters part words; invisible format characters (zero-width space
# and joiners, which Thai and Burmese typing leaves between words) part nothing.
_SPACING = dict.fromkeys(("Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Zs", "Zl", "Zp", "Cc"), " ") | {"Cf": ""}
_COUNTRY = re.compile(r"[A-Z]{2}")
_TYPE = re.compile(r"[a-z][a-z0-9_]{0,39}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")
_SEPARATORS = re.compile(r"[\s.\-\u2010-\u2015_/]+")


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", extra={"fields": {field: [message]}})


def _text(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise _invalid(field, "Must be text.")
    text = unicodedata.normalize("NFKC", burmese_unicode(value.strip()))
    if not text:
        raise _invalid(field, "Must not be empty.")
    return text


def digits_ascii(text: str) -> str:
    """Every decimal digit, of whatever script (Thai, Khmer, Lao, Burmese, Shan, ...), as the ASCII digit of the same
    value (Unicode's own digit values, no table per script); everything else unchanged."""
    return "".join(str(unicodedata.decimal(ch)) if unicodedata.category(ch) == "Nd" else ch for ch in text)


def burmese_order(text: str) -> str:
    """Burmese marks in the storage order of UTN #11 (``ုိ`` and ``ို`` are the same syllable)."""
    return _BURMESE_MARK_RUN.sub(lambda run: "".join(sorted(run.group(), key=_BURMESE_MARK_RANK.__getitem__)), text)


def burmese_unicode(text: str) -> str:
    """Burmese typed in Zawgyi converted to Unicode when the detector is sure of it; other text unchanged. Burmese
    text comes back with its marks in storage order."""
    if not _BURMESE.search(text):
        return text
    if _detector.get_zawgyi_probability(text) > ZAWGYI_THRESHOLD:
        text = myanmar.converter.convert(text, "zawgyi", "unicode")
    return burmese_order(text)


def _strip_latin_marks(text: str) -> str:
    """Drop the combining marks that sit on Latin letters (Vietnamese tones and hats, French accents); marks on
    letters of other scripts (Thai, Lao, Khmer, Burmese vowels and tones) are letters there and stay."""
    kept: list[str] = []
    on_latin = False
    for ch in unicodedata.normalize("NFD", text.translate(_LATIN_STROKES)):
        if unicodedata.category(ch) in ("Mn", "Mc", "Me"):
            if not on_latin:
                kept.append(ch)
            continue
        on_latin = unicodedata.name(ch, "").startswith("LATIN ")
        kept.append(ch)
    return unicodedata.normalize("NFC", "".join(kept))


# Burmese digit zero and letter wa look the same and are typed for each other; beside a Burmese letter or mark, in a
# name, it is the letter.
_BURMESE_ZERO_FOR_WA = re.compile("\u1040(?=[\u1000-\u103f])|(?<=[\u1000-\u103f])\u1040")


def name_key(value: object, *, field: str = "name") -> str:
    """A name as it matches: NFKC, Zawgyi read as Unicode, case-folded, without the diacritics of Latin letters,
    apostrophes dropped, other punctuation and every run of spaces one space, digits ASCII (a Burmese zero beside
    Burmese letters is the letter wa it looks like)."""
    text = _BURMESE_ZERO_FOR_WA.sub("\u101d", _text(value, field))
    text = _strip_latin_marks(text.casefold()).translate(_APOSTROPHES)
    text = "".join(_SPACING.get(unicodedata.category(ch), ch) for ch in text)
    key = " ".join(digits_ascii(text).split())
    if not key:
        raise _invalid(field, "Must hold letters.")
    return key


_ISO_DATE = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_DAY_FIRST = re.compile(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})")
BUDDHIST_ERA_OFFSET = 543
BUDDHIST_ERA_FROM = 2400


def birth_date(value: object, *, field: str = "birth_date", today: datetime.date | None = None) -> str:
    """A date of birth as ISO ``YYYY-MM-DD``. Takes a date, ``YYYY-MM-DD`` or day first ``DD/MM/YYYY`` (``/``, ``-``
    or ``.``), digits of any script, and Buddhist-era years (a year of 2400 or more: CE = BE - 543). Refuses dates
    that do not exist, are in the future or before 1900."""
    if isinstance(value, datetime.datetime):
        raise _invalid(field, "A date, not a time.")
    if isinstance(value, datetime.date):
        year, month, day = value.year, value.month, value.day
    else:
        text = digits_ascii(_text(value, field))
        if found := _ISO_DATE.fullmatch(text):
            year, month, day = (int(part) for part in found.groups())
        elif found := _DAY_FIRST.fullmatch(text):
            day, month, year = (int(part) for part in found.groups())
        else:
            raise _invalid(field, "Not a date: write YYYY-MM-DD or DD/MM/YYYY.")
    if year >= BUDDHIST_ERA_FROM:
        year -= BUDDHIST_ERA_OFFSET
    try:
        date = datetime.date(year, month, day)
    except ValueError:
        raise _invalid(field, "No such date.") from None
    if date > (today or datetime.date.today()) or date.year < 1900:
        raise _invalid(field, "Not a possible date of birth.")
    return date.isoformat()


def country_code(value: object, *, field: str = "country") -> str:
    """An ISO 3166-1 alpha-2 country code, upper-case."""
    code = _text(value, field).upper()
    if not _COUNTRY.fullmatch(code):
        raise _invalid(field, "A two-letter country code (ISO 3166-1), such as TH.")
    return code


def phone_e164(value: object, country: object, *, field: str = "phone") -> str:
    """A phone number in E.164 (``+66812345678``), read with ``country`` (the number's own country, ISO alpha-2) when
    it is typed in its local form; digits of any script. A number that cannot exist is refused."""
    text = digits_ascii(_text(value, field))
    region = country_code(country, field="country")
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise _invalid("country", "No telephone numbering plan for this country.")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise _invalid(field, "Not a phone number.") from None
    if not phonenumbers.is_valid_number(number):
        raise _invalid(field, "Not a valid phone number for its country.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _compact(value: object, field: str) -> str:
    """Upper-case, digits ASCII, without spaces, dots, dashes, underscores and slashes; letters (of any script, with
    their marks) and digits only."""
    text = _SEPARATORS.sub("", digits_ascii(_text(value, field)).upper())
    if not text:
        raise _invalid(field, "Must hold letters or digits.")
    if not all(unicodedata.category(ch)[0] in "LMN" for ch in text):
        raise _invalid(field, "Only letters and digits (spaces, dots and dashes are ignored).")
    return text


def plate(value: object, *, field: str = "plate") -> str:
    """A vehicle plate: ``51C-123.45`` is ``51C12345``; Thai, Lao, Khmer and Burmese letters stay as they are."""
    return _compact(value, field)


def document_number(value: object, *, field: str = "number") -> str:
    """An identity document's number: upper-case letters and digits."""
    return _compact(value, field)


def account_number(value: object, *, field: str = "number") -> str:
    """A bank account number (or IBAN): upper-case letters and digits."""
    return _compact(value, field)


def logo_key(value: object, *, field: str = "logo") -> str:
    """A tablet logo (``WY``, ``999``, ``R 67``): upper-case without spaces, digits ASCII."""
    return _compact(value, field)


def lab_profile(value: object, *, field: str = "lab_profile") -> str:
    """A laboratory profile reference: upper-case without spaces, digits ASCII."""
    return _compact(value, field)


def kind(value: object, *, field: str) -> str:
    """A type word (a document type, a substance): lower-case, words joined by ``_`` (``National ID`` is
    ``national_id``)."""
    text = "_".join(_SEPARATORS.sub(" ", _text(value, field).casefold()).split())
    if not _TYPE.fullmatch(text):
        raise _invalid(field, "A type in Latin letters and digits, such as passport.")
    return text


def email(value: object, *, field: str = "email") -> str:
    """An e-mail address, trimmed and lower-case."""
    text = _text(value, field).lower()
    if not _EMAIL.fullmatch(text):
        raise _invalid(field, "Not an e-mail address.")
    return text


def cas_number(value: object, *, field: str = "cas") -> str:
    """A CAS Registry Number (``50-37-3``) with its check digit verified, without leading zeros; the dashes may be
    left out (the last digit is the check digit, the two before it the middle part)."""
    digits = _SEPARATORS.sub("", digits_ascii(_text(value, field)))
    if not digits.isascii() or not digits.isdigit() or not 5 <= len(digits.lstrip("0")) <= 10:
        raise _invalid(field, "Not a CAS number: write it like 50-37-3.")
    body, check = digits.lstrip("0")[:-1], int(digits[-1])
    if sum(position * int(digit) for position, digit in enumerate(reversed(body), start=1)) % 10 != check:
        raise _invalid(field, "The CAS number's check digit does not match: check it for a typo.")
    return f"{body[:-2]}-{body[-2:]}-{check}"


def imo_number(value: object, *, field: str = "imo") -> str:
    """A ship's IMO number (``IMO 9074729``) with its check digit verified, as ``IMO9074729``."""
    digits = digits_ascii(_text(value, field)).upper().removeprefix("IMO").strip()
    if not (len(digits) == 7 and digits.isascii() and digits.isdigit()):
        raise _invalid(field, "An IMO number has seven digits.")
    if sum(int(digit) * weight for digit, weight in zip(digits[:6], range(7, 1, -1), strict=True)) % 10 != int(
        digits[6]
    ):
        raise _invalid(field, "The IMO number's check digit does not match: check it for a typo.")
    return f"IMO{digits}"


_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_HEX_ADDRESS = re.compile(r"0x[0-9a-f]{40}")
CHAINS = {"BTC": "BTC", "BITCOIN": "BTC", "ETH": "ETH", "ETHEREUM": "ETH", "TRON": "TRON", "TRX": "TRON"}
"""The chains a wallet may name (aliases on the left); USDT is a token, named by its chain (USDT on Tron is TRON)."""


def _base58check(address: str) -> bytes | None:
    """The payload of a Base58Check string (version byte included), or None when the string or checksum is bad."""
    if not address or any(ch not in _BASE58 for ch in address):
        return None
    number = 0
    for ch in address:
        number = number * 58 + _BASE58.index(ch)
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    raw = b"\0" * (len(address) - len(address.lstrip("1"))) + raw
    payload, checksum = raw[:-4], raw[-4:]
    if len(raw) < 5 or hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] != checksum:
        return None
    return payload


def _bech32_valid(address: str) -> bool:
    """BIP 173 / BIP 350 checksum of a lower-case Bitcoin segwit address (bech32 for v0, bech32m after)."""
    hrp, _, data = address.rpartition("1")
    if hrp != "bc" or not 6 < len(data) <= 84 or any(ch not in _BECH32 for ch in data):
        return False
    values = [ord(ch) >> 5 for ch in hrp] + [0] + [ord(ch) & 31 for ch in hrp] + [_BECH32.index(ch) for ch in data]
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for bit, generator in enumerate((0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)):
            checksum ^= generator if (top >> bit) & 1 else 0
    return checksum == (1 if values[len(hrp) * 2 + 1] == 0 else 0x2BC830A3)


def wallet(chain: object, address: object, *, field: str = "address") -> tuple[str, str]:
    """A crypto wallet as ``(chain, address)`` in the chain's canonical form, checksums verified where the chain has
    one that the standard library can check: Bitcoin segwit (``bc1...``, lower-case, bech32/bech32m checksum) and
    legacy (Base58Check, case kept); Tron (``T...``, Base58Check, case kept); Ethereum and EVM chains ``0x`` and 40
    hex digits, lower-case (the mixed-case EIP-55 checksum needs Keccak, which the standard library lacks: it is not
    checked). Other chains are refused."""
    name = CHAINS.get(_text(chain, "chain").upper())
    if name is None:
        raise _invalid("chain", f"One of {', '.join(sorted(set(CHAINS.values())))}.")
    text = _text(address, field)
    if name == "ETH":
        canonical = text.lower()
        if not _HEX_ADDRESS.fullmatch(canonical):
            raise _invalid(field, "An Ethereum address is 0x and 40 hexadecimal digits.")
        return name, canonical
    if name == "BTC" and text.lower().startswith("bc1"):
        canonical = text.lower()
        if (text != canonical and text != text.upper()) or not _bech32_valid(canonical):
            raise _invalid(field, "Not a valid Bitcoin address: check it for a typo.")
        return name, canonical
    payload = _base58check(text)
    if name == "BTC" and payload is not None and len(payload) == 21 and payload[0] in (0x00, 0x05):
        return name, text
    if name == "TRON" and payload is not None and len(payload) == 21 and payload[0] == 0x41:
        return name, text
    raise _invalid(field, f"Not a valid {name} address: check it for a typo.")


def _field(fields: Mapping[str, object], name: str) -> object:
    value = fields.get(name)
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


def _names(fields: Mapping[str, object]) -> Iterable[tuple[str, object]]:
    if (name := _field(fields, "name")) is not None:
        yield "name", name
    aliases = fields.get("aliases") or []
    if not isinstance(aliases, list | tuple):
        raise _invalid("aliases", "A list of names.")
    for alias in aliases:
        yield "aliases", alias


def _person(fields: Mapping[str, object]) -> list[tuple[str, str]]:
    keys = [name_key(value, field=field) for field, value in _names(fields)]
    born = _field(fields, "birth_date")
    if born is None:
        return []
    date = birth_date(born)
    return [("person", f"{key}|{date}") for key in dict.fromkeys(keys)]


def _document(fields: Mapping[str, object]) -> list[tuple[str, str]]:
    doc_type = kind(fields.get("doc_type"), field="doc_type")
    return [("document", f"{doc_type}|{country_code(fields.get('country'))}|{document_number(fields.get('number'))}")]


def _vessel(fields: Mapping[str, object]) -> list[tuple[str, str]]:
    values = []
    if (imo := _field(fields, "imo")) is not None:
        values.append(("vessel", imo_number(imo)))
    if (registration := _field(fields, "registration")) is not None:
        registered = document_number(registration, field="registration")
        values.append(("vessel", f"{country_code(fields.get('country'))}|{registered}"))
    return values


def _company(fields: Mapping[str, object]) -> list[tuple[str, str]]:
    if (number := _field(fields, "registration_number")) is None:
        name_key(fields.get("name"))
        return []
    registered = document_number(number, field="registration_number")
    return [("company", f"{country_code(fields.get('country'))}|{registered}")]


def _seizure(fields: Mapping[str, object]) -> list[tuple[str, str]]:
    values = []
    substance = kind(fields.get("substance"), field="substance")
    if (logo := _field(fields, "logo")) is not None:
        values.append(("logo", f"{substance}|{logo_key(logo)}"))
    if (profile := _field(fields, "lab_profile")) is not None:
        values.append(("lab_profile", f"{substance}|{lab_profile(profile)}"))
    return values


def _location(fields: Mapping[str, object]) -> list[tuple[str, str]]:
    return []


def _wallet(fields: Mapping[str, object]) -> list[tuple[str, str]]:
    chain, address = wallet(fields.get("chain"), fields.get("address"))
    return [("wallet", f"{chain}|{address}")]


_ENTITIES = {
    "person": _person,
    "identity_document": _document,
    "phone": lambda fields: [("phone", phone_e164(fields.get("number"), fields.get("country"), field="number"))],
    "email": lambda fields: [("email", email(fields.get("address"), field="address"))],
    "vehicle": lambda fields: [("plate", f"{country_code(fields.get('country'))}|{plate(fields.get('plate'))}")],
    "vessel": _vessel,
    "company": _company,
    "bank_account": lambda fields: [
        ("account", f"{country_code(fields.get('country'))}|{account_number(fields.get('number'))}")
    ],
    "wallet": _wallet,
    "location": _location,
    "seizure": _seizure,
    "precursor": lambda fields: [("cas", cas_number(fields.get("cas")))],
}
ENTITY_TYPES = frozenset(_ENTITIES)


def match_values(entity_type: str, fields: Mapping[str, object]) -> list[tuple[str, str]]:
    """The matchable ``(type, value)`` pairs of one entity, without repeats; ``[]`` for an entity that never matches
    (a location; a person without a date of birth; a company without a registration number). Every value the
    entity carries is checked, so a bad one is refused even when it would not match.

    The fields each entity type reads (others are ignored):
    - person: ``name``, ``aliases`` (list), ``birth_date``: ``person`` = ``name|YYYY-MM-DD`` for the name and each
      alias, only with a date of birth
    - identity_document: ``doc_type``, ``country``, ``number``: ``document`` = ``type|country|number``
    - phone: ``number``, ``country`` (the number's own): ``phone`` = E.164
    - email: ``address``: ``email``
    - vehicle: ``plate``, ``country``: ``plate`` = ``country|plate``
    - vessel: ``imo``, ``registration``, ``country`` (the flag): ``vessel`` = ``IMO1234567`` and
      ``country|registration``
    - company: ``name``, ``registration_number``, ``country``: ``company`` = ``country|number``
    - bank_account: ``number``, ``country``: ``account`` = ``country|number``
    - wallet: ``chain``, ``address``: ``wallet`` = ``chain|address``
    - seizure: ``substance``, ``logo``, ``lab_profile``: ``logo`` and ``lab_profile`` = ``substance|reference``
    - precursor: ``cas``: ``cas``
    - location: nothing
    """
    if entity_type not in _ENTITIES:
        raise _invalid("type", f"One of {', '.join(sorted(ENTITY_TYPES))}.")
    return list(dict.fromkeys(_ENTITIES[entity_type](fields)))
