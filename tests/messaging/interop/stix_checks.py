"""Checks every STIX test applies: the OASIS validator finds no error, and the stix2 library parses it."""

from __future__ import annotations

import json
from typing import Any

import stix2
from stix2validator import ValidationOptions, validate_string

# Warnings the validator may give that we accept, with why (also in the README's STIX section). None so far: a new
# one fails the test until it is judged and listed here.
ACCEPTED_WARNINGS: dict[str, str] = {}


def valid_bundle(bundle: Any) -> dict[str, Any]:
    """The bundle as JSON, after the validator (no errors; warnings only those accepted) and stix2 parsed it."""
    text = bundle if isinstance(bundle, str) else bundle.serialize()
    result = validate_string(text, ValidationOptions(version="2.1", strict=False))
    assert result.is_valid, [str(error) for error in result.errors]
    warnings = [str(warning) for warning in result.warnings or []]
    assert all(any(code in warning for code in ACCEPTED_WARNINGS) for warning in warnings), warnings
    parsed = stix2.parse(text, allow_custom=True)
    assert parsed.type == "bundle"
    return json.loads(text)


def objects_bundle(objects: list[dict[str, Any]]) -> str:
    """TAXII objects as a bundle, for the same checks."""
    return json.dumps({"type": "bundle", "id": "bundle--6f5bd9a5-7a0e-4d08-a5e7-5a9a1f8d2c11", "objects": objects})
