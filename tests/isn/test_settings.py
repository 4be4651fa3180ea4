"""Settings fail loudly, in one line naming the variable, when production configuration is missing or malformed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD_PRODUCTION = {
    "ISN_ENV": "production",
    "ISN_SECRET_KEY": "k3y-" + "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ" * 2,
    "ISN_ALLOWED_HOSTS": "isn.example.org",
    "DATABASE_URL": "postgres://isn@127.0.0.1:5432/isn",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "ISN_MASTER_KEY": "q0kB2nLx3YyJ1r9mC6tqV4wQe8sZ5uHf7aKdPjTgXo0=",
    "ISN_AUDIT_SIGNING_KEY": "3q2+7wABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhs=",
}


def _outside_environment() -> dict[str, str]:
    """This process's environment without ISN's settings and the test harness's own switches."""
    # The browser tests' async-safety switch is the harness's, never a deployment's: keep it out of the checks.
    harness = ("DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")
    return {k: v for k, v in os.environ.items() if not k.startswith("ISN_") and k not in harness}


def _manage(*args: str, **overrides: str | None) -> subprocess.CompletedProcess[str]:
    env = _outside_environment()
    env["ISN_DATA_DIR"] = os.environ["ISN_DATA_DIR"]
    for key, value in {**GOOD_PRODUCTION, **overrides}.items():
        if value is not None:
            env[key] = value
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ISN_SECRET_KEY": None}, "ISN_SECRET_KEY is required (set ISN_SECRET_KEY or ISN_SECRET_KEY_FILE)"),
        ({"ISN_SECRET_KEY": "short"}, "ISN_SECRET_KEY must be at least 50 random characters"),
        ({"DATABASE_URL": None}, "DATABASE_URL is required in production"),
        ({"DATABASE_URL": "sqlite:///x.db"}, "DATABASE_URL must point to PostgreSQL in production"),
        ({"REDIS_URL": None}, "REDIS_URL is required in production"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL must start with redis://"),
        ({"ISN_ALLOWED_HOSTS": None}, "ISN_ALLOWED_HOSTS is required in production"),
        ({"ISN_DEBUG": "true"}, "ISN_DEBUG must not be true in production"),
        ({"ISN_MASTER_KEY": None}, "ISN_MASTER_KEY is required (set ISN_MASTER_KEY or ISN_MASTER_KEY_FILE)"),
        ({"ISN_MASTER_KEY": "c2hvcnQ="}, "ISN_MASTER_KEY must be 32 random bytes"),
        (
            {"ISN_AUDIT_SIGNING_KEY": None},
            "ISN_AUDIT_SIGNING_KEY is required (set ISN_AUDIT_SIGNING_KEY or ISN_AUDIT_SIGNING_KEY_FILE)",
        ),
        ({"ISN_AUDIT_SIGNING_KEY": "c2hvcnQ="}, "ISN_AUDIT_SIGNING_KEY must be base64 of a raw 32-byte Ed25519"),
        ({"ISN_ENV": "staging"}, "ISN_ENV must be one of development, production, not 'staging'"),
        ({"ISN_METRICS_TOKEN": "short"}, "ISN_METRICS_TOKEN must be at least 32 characters"),
    ],
)
def test_production_refuses_to_start_without_its_secrets(overrides, message):
    result = _manage("check", **overrides)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"ISN configuration error: {message}")


def test_secret_key_from_file(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(GOOD_PRODUCTION["ISN_SECRET_KEY"])
    result = _manage("check", ISN_SECRET_KEY=None, ISN_SECRET_KEY_FILE=str(key_file))
    assert result.returncode == 0, result.stderr


def test_production_settings_pass_the_deployment_checklist():
    result = _manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_development_generates_its_secret_key_privately(tmp_path):
    env = _outside_environment()
    env["ISN_DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    key = tmp_path / "secret_key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert len(key.read_text()) >= 50


@pytest.mark.parametrize(("env", "required"), [("production", "True"), ("development", "False")])
def test_enrolment_codes_are_required_in_production_by_default(env, required):
    shell = "from django.conf import settings; print(settings.ISN_ENROLMENT_CODE_REQUIRED)"
    overrides = {"ISN_ENV": env} if env == "production" else {"ISN_ENV": env, "ISN_SECRET_KEY": None}
    result = _manage("shell", "-c", shell, **overrides)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == required
