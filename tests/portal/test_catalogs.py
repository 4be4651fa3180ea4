"""Seven languages: every string of the portal (templates, Python, model choice labels) is in every catalog and
translated there, and the compiled catalogs the portal reads say the same as their sources.

The strings are extracted afresh with Django's own makemessages, exactly as `make messages` does (same ignores), from
a copy of the apps, so a string added anywhere without a translation fails here. To fix a failure: run
`make messages` (adds the new strings to locale/*/LC_MESSAGES/django.po and compiles the .mo files), have the strings
translated, and run `make messages` again.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from django.utils.translation import check_for_language, to_locale

ROOT = Path(settings.BASE_DIR)
APPS = ("isn", "agencies", "audit", "messaging")
# The same ignores as the Makefile's MESSAGES_IGNORE.
IGNORE = ["tests", "bench", "var", "migrations", "test-artifacts", "node_modules"]
CATALOGS = sorted(to_locale(code) for code, _name in settings.LANGUAGES if code != settings.LANGUAGE_CODE)

Key = tuple[str | None, str]


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> dict[Key, polib.POEntry]:
    """Every translatable string of the apps, by (context, msgid), as makemessages finds them today."""
    if shutil.which("xgettext") is None:
        pytest.fail("gettext is not installed (apt-get install gettext; .ci/run does)")
    root = tmp_path_factory.mktemp("extract")
    for app in APPS:
        shutil.copytree(ROOT / app, root / app, ignore=shutil.ignore_patterns("__pycache__", "*.mo", "*.po"))
    here = Path.cwd()
    os.chdir(root)  # makemessages reads the current folder
    try:
        with override_settings(LOCALE_PATHS=[str(root / "locale")]):
            call_command("makemessages", locale=["en"], ignore_patterns=IGNORE, no_location=True, verbosity=0)
    finally:
        os.chdir(here)
    catalog = polib.pofile(str(root / "locale" / "en" / "LC_MESSAGES" / "django.po"))
    return {(entry.msgctxt, entry.msgid): entry for entry in catalog}


def _catalog(locale: str) -> polib.POFile:
    path = ROOT / "locale" / locale / "LC_MESSAGES" / "django.po"
    assert path.exists(), f"{path} is missing: run make messages"
    return polib.pofile(str(path))


def _translated(entry: polib.POEntry) -> bool:
    if entry.fuzzy or entry.obsolete:
        return False
    if entry.msgid_plural:
        return bool(entry.msgstr_plural) and all(entry.msgstr_plural.values())
    return bool(entry.msgstr.strip())


def test_the_extraction_finds_templates_python_and_choice_labels(extracted):
    msgids = {msgid for _context, msgid in extracted}
    assert {
        "Inbox",  # a template
        "Acknowledge for your agency",  # a template block
        "Tick the confirmation to post a FLASH item, or choose another priority.",  # Python
        "Methamphetamine pills",  # a model's choice label (messaging.Category)
        "TLP:AMBER",  # a handling code
        "Cambodia",  # agencies.CountryCode
        "Supervisor",  # agencies.Role
    } <= msgids
    assert len(msgids) > 300


def test_every_portal_language_has_a_compiled_catalog():
    assert CATALOGS == ["km", "lo", "my", "th", "vi", "zh_Hans"]
    for code, _name in settings.LANGUAGES:
        assert check_for_language(code), f"no catalog for {code}: run make messages"


@pytest.mark.parametrize("locale", CATALOGS)
def test_every_string_is_in_the_catalog_and_translated(extracted, locale):
    catalog = {(entry.msgctxt, entry.msgid): entry for entry in _catalog(locale) if not entry.obsolete}
    missing = sorted(key[1] for key in extracted if key not in catalog)
    untranslated = sorted(key[1] for key in extracted if key in catalog and not _translated(catalog[key]))
    assert not missing, f"{len(missing)} strings are not in locale/{locale} (run make messages): {missing[:10]}"
    assert not untranslated, (
        f"{len(untranslated)} of {len(extracted)} strings are not translated (or fuzzy) in locale/{locale}: "
        f"{untranslated[:10]}"
    )


@pytest.mark.parametrize("locale", CATALOGS)
def test_no_catalog_keeps_strings_the_portal_no_longer_has(extracted, locale):
    stale = sorted(
        entry.msgid
        for entry in _catalog(locale)
        if not entry.obsolete and (entry.msgctxt, entry.msgid) not in extracted
    )
    assert not stale, f"locale/{locale} has strings no longer in the portal (run make messages): {stale[:10]}"


@pytest.mark.parametrize("locale", CATALOGS)
def test_the_compiled_catalog_says_what_its_source_says(locale):
    source = {(e.msgctxt, e.msgid): e.msgstr for e in _catalog(locale) if _translated(e) and not e.msgid_plural}
    path = ROOT / "locale" / locale / "LC_MESSAGES" / "django.mo"
    assert path.exists(), f"{path} is missing: run make messages"
    compiled = {(e.msgctxt, e.msgid): e.msgstr for e in polib.mofile(str(path)) if e.msgid and not e.msgid_plural}
    assert compiled == source, f"locale/{locale}/LC_MESSAGES/django.mo is out of date: run make messages"
