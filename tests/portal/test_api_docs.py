"""/api/docs/ in a real browser: a signed-out visitor sees Swagger UI list the API's operations, served by ISN alone,
and the strict Content-Security-Policy blocks nothing on the way (``new_page`` also fails on a CSP console message)."""

from __future__ import annotations

import pytest

from tests.portal.conftest import screenshot

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

# Every securitypolicyviolation event of the page, kept where the test can read it (injected by the browser's
# tooling before any of the page's scripts, which the CSP does not govern).
_WATCH_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def test_a_signed_out_visitor_reads_the_operations_with_no_csp_violation(new_page, live_server):
    page = new_page()
    page.add_init_script(_WATCH_VIOLATIONS)
    foreign: list[str] = []
    page.on("request", lambda request: None if request.url.startswith(live_server.url) else foreign.append(request.url))
    page.goto("/api/docs/")
    page.wait_for_selector(".opblock-summary-path", timeout=20_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/items/" in paths
    assert "/api/v1/offices/" in paths
    assert "ISN" in page.locator(".info .title").inner_text()
    page.locator(".opblock-summary", has_text="/api/v1/offices/").first.click()  # one operation, opened
    responses = page.locator(".opblock.is-open .responses-table").first
    responses.wait_for()
    assert "RateLimit-Policy" in responses.inner_text()
    assert page.evaluate("window.cspViolations") == []
    assert foreign == []  # no CDN, no validator badge: everything from ISN itself
    screenshot(page, "api-docs-signed-out")
