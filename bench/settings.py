"""Settings for the benchmark server: ISN's own, with the bench views (bench/urls.py) in front and quiet logs."""

from __future__ import annotations

from isn.settings import *  # noqa: F403 - the benchmark measures ISN as configured, plus bench views

ROOT_URLCONF = "bench.urls"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
LOGGING["root"]["level"] = "WARNING"  # noqa: F405 - one log line per request would be measured too
# The items benchmark's clients are one officer asking far faster than a person can: a per-person rate limit would
# measure only itself. The throttle still runs (its cache round trip is paid); it just never refuses. A one-second
# window keeps DRF's per-caller request history as short as it is in production.
_rates = REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES")  # noqa: F405
if _rates:
    REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": dict.fromkeys(_rates, "1000000/second")}  # noqa: F405
# The matching benchmark checks thousands of identifiers a minute with one key: the daily quotas would stop it.
ISN_MATCH_DAILY_PER_PERSON = ISN_MATCH_DAILY_PER_KEY = ISN_MATCH_DAILY_PER_AGENCY = 10**9
