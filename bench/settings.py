"""Settings for the benchmark server: ISN's own, with two bench views in front and quiet logs."""

from __future__ import annotations

from isn.settings import *  # noqa: F403 - the benchmark measures ISN as configured, plus two views

ROOT_URLCONF = "bench.urls"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
LOGGING["root"]["level"] = "WARNING"  # noqa: F405 - one log line per request would be measured too
