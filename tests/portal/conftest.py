"""Fixtures for the portal's pages: the routing network's people (tests/messaging/network.py), items posted and
routed through the real services, and Playwright driving Debian's Chromium against the live test server.

Browser tests are transactional (the live server answers from another thread, so it sees only committed data):
mark them ``django_db(transaction=True, serialized_rollback=True)`` and use ``live_server``, ``browser`` and
``page`` (or ``new_page(java_script_enabled=False)``). Sign people in through the sign-in pages themselves with
``sign_in_through_ui``: password, then the code their authenticator would show. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django_otp.oath import TOTP

from agencies.keyring import forget_cached_keys
from messaging.delivery.routing import item_route
from messaging.models import Item, OutboxKind, OutboxMessage
from tests.auth import totp_device
from tests.factories import UserFactory
from tests.messaging.network import Network, build_network, post_item

CHROMIUM = os.environ.get("ISN_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "correct horse battery staple"  # tests/factories.py UserFactory
# What Chromium prints when the Content-Security-Policy blocks something.
CSP_VIOLATION = re.compile(r"Content[ -]Security[ -]Policy", re.IGNORECASE)


@pytest.fixture(autouse=True)
def _no_cached_keys():
    # Country keys are cached per process; each test starts from the database it made.
    forget_cached_keys()
    yield
    forget_cached_keys()


@pytest.fixture
def net(db) -> Network:
    return build_network()


def route(item: Item) -> None:
    """Route an item now, as the worker would (deliveries, notifications), without a worker."""
    item_route(outbox_id=OutboxMessage.objects.get(item=item, kind=OutboxKind.ITEM_ROUTE).pk)


@pytest.fixture
def post() -> Callable[..., Item]:
    """``post(actor, **fields)``: an item posted through ``item_create`` (released to VN, KH, TH and LA by default)."""
    return post_item


def make_user(username: str) -> Any:
    return UserFactory(username=username)


# --- the browser ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser(django_db_setup: None) -> Iterator[Any]:
    """Debian's Chromium under Playwright, once per test session (browsers cannot be downloaded here).

    Playwright's sync API keeps an asyncio loop running in this thread while it is started. Django refuses ORM calls
    from a thread with a running loop; our code has no async views, so that guard is lifted for as long as the
    browser runs (and restored when it stops). And Django's per-context connections are other objects while the loop
    runs: they are handed the test database's serialized contents, or ``serialized_rollback`` would find none and
    every transactional test after the first would start without the countries.
    """
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: apt-get install chromium (.ci/run does)")
    from django.db import connections
    from playwright.sync_api import sync_playwright

    serialized = {
        alias: connections[alias]._test_serialized_contents
        for alias in connections
        if hasattr(connections[alias], "_test_serialized_contents")
    }
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    for alias, contents in serialized.items():
        connections[alias]._test_serialized_contents = contents
    try:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        )
        yield browser
        browser.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class PageProblems:
    """What the pages of one test reported: CSP violations and script errors (each test asserts there were none)."""

    def __init__(self) -> None:
        self.csp: list[str] = []
        self.errors: list[str] = []

    def watch(self, page: Any) -> Any:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        return page

    def _console(self, message: Any) -> None:
        if CSP_VIOLATION.search(message.text):
            self.csp.append(f"{message.text} ({message.location.get('url', '')})")
        elif message.type == "error":
            self.errors.append(message.text)


@pytest.fixture
def new_page(browser: Any, live_server: Any) -> Iterator[Callable[..., Any]]:
    """``new_page(**context_options)``: a page in a fresh browser context (its own cookies), watched for CSP
    violations; e.g. ``new_page(java_script_enabled=False)`` or ``new_page(viewport={"width": 360, ...})``."""
    contexts = []
    problems = PageProblems()

    def _new_page(**options: Any) -> Any:
        options.setdefault("base_url", live_server.url)
        context = browser.new_context(**options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return problems.watch(context.new_page())

    yield _new_page
    for context in contexts:
        context.close()
    assert problems.csp == [], f"Content-Security-Policy violations: {problems.csp}"
    assert problems.errors == [], f"errors in the page: {problems.errors}"


@pytest.fixture
def page(new_page: Callable[..., Any]) -> Any:
    return new_page()


def _next_code(user: Any) -> str:
    """The authenticator's code for now, or for the next period when this one was already used (django-otp refuses a
    code at or before the last one accepted, and signing the same person in twice within 30 s is common here)."""
    device = totp_device(user)
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    if device.last_t is not None and totp.t() <= device.last_t:
        totp.time += (device.last_t + 1 - totp.t()) * device.step
    return f"{totp.token():0{device.digits}d}"


def sign_in_through_ui(page: Any, user: Any, *, password: str = PASSWORD, next_path: str = "") -> None:
    """Sign ``user`` in the way a person does: the sign-in form, then the authenticator's code."""
    totp_device(user)  # enrolled already, as every member is after their first sign-in
    page.goto("/accounts/login/" + (f"?next={next_path}" if next_path else ""))
    page.fill("input[name=username]", user.get_username())
    page.fill("input[name=password]", password)
    page.click("main form button[type=submit]")
    page.wait_for_url("**/accounts/two-factor/**")
    page.fill("input[name=code]", _next_code(user))
    page.click("main form:first-of-type button[type=submit]")
    page.wait_for_load_state()
    assert "/accounts/" not in page.url, f"sign-in did not finish: {page.url}"


def screenshot(page: Any, name: str) -> Path:
    """A full-page screenshot in test-artifacts/ (kept out of git), for people to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
