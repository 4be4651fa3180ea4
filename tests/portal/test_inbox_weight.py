"""Weak links: the first inbox page with 50 items weighs under 100 KB transferred (HTML, CSS, JavaScript).

The figure tested is the uncompressed one: the HTML as Django serves it (no compression middleware) plus every
stylesheet and script it links, as WhiteNoise serves them to a client that does not ask for gzip. That is the most a
phone ever transfers; with gzip (WhiteNoise compresses static files in production) it is far less, and that figure
is reported in the assertion message too. Fonts are the phone's own: the stylesheet names only system fonts.
"""

from __future__ import annotations

import gzip
import re

import pytest
from django.test import Client, override_settings

from tests.auth import sign_in

pytestmark = pytest.mark.django_db

BUDGET = 100 * 1024
ITEMS = 50


def _linked_assets(html: str) -> list[str]:
    stylesheets = re.findall(r'<link[^>]*rel="stylesheet"[^>]*href="([^"]+)"', html)
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', html)
    images = re.findall(r'<img[^>]*src="([^"]+)"', html)
    return [*stylesheets, *scripts, *images]


def test_the_first_inbox_page_with_fifty_items_weighs_under_100_kb(net, post):
    vn = net.user("vn.officer")
    for number in range(ITEMS):
        post(
            vn,
            title=f"Methamphetamine pills hidden in a lorry of dried fruit heading for the border, report {number}",
            countries=["VN", "KH"],
            priority="flash" if number % 10 == 0 else "routine",
            border_crossing="Moc Bai - Bavet International Border Gate",
        )
    client = sign_in(Client(), net.user("kh.officer"))
    response = client.get("/items/")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count("report ") == ITEMS  # every item on the first page
    assets = _linked_assets(html)
    assert any(path.endswith(".css") for path in assets)
    assert any(path.endswith(".js") for path in assets)
    assert all(path.startswith("/static/") for path in assets), assets  # nothing from another origin
    sizes = {"/items/ (HTML)": len(response.content)}
    compressed = {"/items/ (HTML)": len(gzip.compress(response.content))}
    # WhiteNoise serves the static files from the apps' folders here, as it serves the collected ones in production.
    with override_settings(WHITENOISE_USE_FINDERS=True, WHITENOISE_AUTOREFRESH=True):
        assets_client = sign_in(Client(), net.user("kh.officer"))
        for path in assets:
            asset = assets_client.get(path)
            assert asset.status_code == 200, path
            body = b"".join(asset.streaming_content) if asset.streaming else asset.content
            sizes[path] = len(body)
            compressed[path] = len(gzip.compress(body))
    total = sum(sizes.values())
    assert total < BUDGET, f"{total} bytes (gzip: {sum(compressed.values())}): {sizes}"
    # The stylesheet asks for no web font: fonts are the phone's own.
    css = assets_client.get(next(path for path in assets if path.endswith(".css")))
    css_text = b"".join(css.streaming_content).decode() if css.streaming else css.content.decode()
    assert "@font-face" not in css_text
    assert "url(" not in css_text
