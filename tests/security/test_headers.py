"""Security headers on every kind of response, and a CSP that no page needs to weaken: no inline script anywhere."""

from __future__ import annotations

import json
import re

import pytest

from tests.auth import sign_in
from tests.isn.test_settings import _manage

pytestmark = pytest.mark.django_db

STRICT_CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}
# An executable script element without src; JSON data blocks (<script type="application/json">) do not run.
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/(?:json|ld\+json)\")[^>]*>", re.I)


def _directives(header: str) -> dict[str, str]:
    parts = [part.strip().split(None, 1) for part in header.split(";") if part.strip()]
    return dict(parts)


def _assert_hardened(response) -> None:
    assert _directives(response["Content-Security-Policy"]) == STRICT_CSP
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]
    assert "geolocation=()" in response["Permissions-Policy"]


def test_every_kind_of_response_carries_the_headers(client, vn_officer, un_auditor, platform_admin, bavet):
    for path in ("/accounts/login/", "/healthz", "/api/v1/offices/", "/no-such-page/"):
        _assert_hardened(client.get(path))
    sign_in(client, un_auditor)
    for path in ("/", "/directory/", "/audit/", "/audit/flags/", "/api/docs/", "/api/schema/", "/api/v1/offices/"):
        response = client.get(path)
        assert response.status_code == 200, path
        _assert_hardened(response)


def test_no_page_has_an_inline_script(client, vn_officer, un_auditor, platform_admin, bavet):
    pages = {"/accounts/login/": client.get("/accounts/login/")}
    sign_in(client, un_auditor)
    for path in ("/", "/directory/", "/audit/", "/audit/flags/", f"/audit/actors/{vn_officer.pk}/", "/api/docs/"):
        pages[path] = client.get(path)
    # The browsable API (development only) and the admin are pages too.
    pages["/api/v1/offices/ (browsable)"] = client.get("/api/v1/offices/", HTTP_ACCEPT="text/html")
    sign_in(client, platform_admin)
    for path in ("/admin/", "/admin/agencies/office/", f"/admin/agencies/office/{bavet.pk}/change/"):
        pages[path] = client.get(path)
    for path, response in pages.items():
        assert response.status_code == 200, path
        assert "text/html" in response["Content-Type"], path
        inline = _INLINE_SCRIPT.findall(response.content.decode())
        assert inline == [], f"{path} has inline script, which the CSP blocks: {inline}"


def test_swagger_ui_start_up_script_and_styles_are_files_of_their_own(client, db):
    docs = client.get("/api/docs/")  # signed out: the docs are open to anyone
    _assert_hardened(docs)
    page = docs.content.decode()
    assert "<style" not in page  # style-src 'self' would block it
    sources = re.findall(r"<script[^>]*\bsrc=\"([^\"]+)\"", page)
    local = [src for src in sources if "script" in src and src.startswith("/api/docs/")]
    assert local, sources
    script = client.get(local[0].replace("&amp;", "&"))
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert '"validatorUrl": null' in script.content.decode()  # no badge fetched from a validator elsewhere
    links = re.findall(r"<link[^>]*\bhref=\"([^\"]+)\"", page)
    assert all(not src.startswith(("http:", "https:", "//")) for src in sources + links)  # no CDN


def test_production_cookies_are_host_only_and_secure():
    code = (
        "import json; from django.conf import settings as s; print(json.dumps([s.SESSION_COOKIE_NAME, "
        "s.CSRF_COOKIE_NAME, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, "
        "s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_SSL_REDIRECT, s.PASSWORD_HASHERS[0]]))"
    )
    result = _manage("shell", "-c", code)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values == [
        "__Host-isn_session",
        "__Host-isn_csrf",
        True,
        True,
        True,
        31_536_000,
        True,
        True,
        "django.contrib.auth.hashers.Argon2PasswordHasher",
    ]


def test_the_portals_item_pages_carry_the_headers_and_no_inline_script(client, vn_officer, bavet):
    sign_in(client, vn_officer)
    for path in ("/items/", "/items/new/", "/notifications/", "/account/", "/statistics/"):
        response = client.get(path)
        assert response.status_code == (403 if path == "/statistics/" else 200), path
        _assert_hardened(response)
        assert _INLINE_SCRIPT.findall(response.content.decode()) == [], path
