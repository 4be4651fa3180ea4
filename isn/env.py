"""Typed readers for configuration from the environment.

Each reader takes a variable ``NAME`` and also accepts ``NAME_FILE`` (a path whose contents are the value), the
way container secrets are mounted. A missing or malformed value raises :class:`ConfigError` with one sentence
that names the variable; the entry points turn it into one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from django.core.exceptions import ImproperlyConfigured

T = TypeVar("T")

_MISSING = object()


class ConfigError(ImproperlyConfigured):
    """A configuration variable is missing or malformed."""


def _raw(name: str, environ: Mapping[str, str]) -> str | None:
    value = environ.get(name)
    file_name = environ.get(f"{name}_FILE")
    if value is not None and file_name is not None:
        raise ConfigError(f"{name} and {name}_FILE are both set; set only one of them")
    if file_name is not None:
        try:
            return Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE names {file_name!r}, which cannot be read ({exc.strerror})") from None
    return value


def env_str(name: str, default: str | None = None, *, environ: Mapping[str, str] = os.environ) -> str:
    """A string; required when no default is given."""
    value = _raw(name, environ)
    if value is None or value == "":
        if default is None:
            raise ConfigError(f"{name} is required (set {name} or {name}_FILE)")
        return default
    return value


def env_optional(name: str, *, environ: Mapping[str, str] = os.environ) -> str | None:
    """A string, or None when unset or empty."""
    value = _raw(name, environ)
    return value or None


def _parsed(name: str, default: T, parse: Callable[[str], T], expected: str, environ: Mapping[str, str]) -> T:
    value = _raw(name, environ)
    if value is None or value == "":
        return default
    try:
        return parse(value)
    except ValueError:
        raise ConfigError(f"{name} must be {expected}, not {value!r}") from None


def _parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(value)


def env_bool(name: str, default: bool, *, environ: Mapping[str, str] = os.environ) -> bool:
    return _parsed(name, default, _parse_bool, "true or false", environ)


def env_int(name: str, default: int, *, minimum: int | None = None, environ: Mapping[str, str] = os.environ) -> int:
    number = _parsed(name, default, int, "a whole number", environ)
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {number}")
    return number


def env_list(name: str, default: list[str], *, environ: Mapping[str, str] = os.environ) -> list[str]:
    """A comma-separated list; blanks are dropped."""
    value = _raw(name, environ)
    if value is None or value.strip() == "":
        return default
    return [part.strip() for part in value.split(",") if part.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...], *, environ: Mapping[str, str] = os.environ) -> str:
    value = env_str(name, default, environ=environ)
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def exit_on_config_error(load: Callable[[], object]) -> None:
    """Run ``load`` (which imports settings); on a configuration error print one line and exit 2."""
    try:
        load()
    except ConfigError as exc:
        print(f"ISN configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def check_settings() -> None:
    """Load Django settings now, and sign in to the master key's PKCS#11 token when one is configured, so that a
    configuration error (a wrong PIN, a missing token) surfaces at start-up as one line."""

    def load() -> None:
        from django.conf import settings

        from isn.masterkey import check_module

        settings.INSTALLED_APPS  # noqa: B018 - touching a setting imports the settings module
        check_module()

    exit_on_config_error(load)
