"""The webhook verifier published in README.md ("Verifying a webhook call"), run as printed against a real signed call
that ISN sent to a local receiver: if the README drifts from what ISN sends, this fails."""

from __future__ import annotations

import ast
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from messaging.delivery.routing import item_route
from messaging.delivery.webhooks import webhook_configure, webhook_send
from messaging.models import OutboxKind, OutboxMessage
from tests.messaging.network import build_network, post_item
from tests.messaging.workers import webhook_receiver

pytestmark = pytest.mark.django_db

HEADING = "### Verifying a webhook call"


def readme_verifier() -> tuple[str, Callable[..., bool]]:
    """The README's Python block under HEADING, and its function, defined by running exactly that text."""
    readme = (Path(settings.BASE_DIR) / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index(HEADING) :]
    found = re.search(r"^```python\n(.*?)^```$", section, flags=re.DOTALL | re.MULTILINE)
    assert found, f"README.md has no ```python block under {HEADING!r}"
    code = found.group(1)
    namespace: dict[str, Any] = {"__name__": "readme_webhook_verifier"}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 (our own README: the point of the test)
    return code, namespace["isn_webhook_verified"]


def test_the_readme_verifier_uses_only_the_standard_library():
    code, _ = readme_verifier()
    imported = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported
    assert imported <= sys.stdlib_module_names, imported - sys.stdlib_module_names


def test_the_readme_verifier_accepts_a_real_call_and_refuses_forgeries():
    _, verified = readme_verifier()
    net = build_network()
    with webhook_receiver(200) as receiver:
        _, secret = webhook_configure(actor=net.user("kh.admin"), url=receiver.url)
        item = post_item(net.user("vn.officer"))
        item_route(outbox_id=OutboxMessage.objects.get(item=item, kind=OutboxKind.ITEM_ROUTE).pk)
        row = OutboxMessage.objects.get(item=item, kind=OutboxKind.NOTIFY_WEBHOOK)
        assert webhook_send(outbox_id=row.pk).status == "sent"
        [(headers, body)] = receiver.received()

    assert verified(secret, headers, body)
    # Header names in whatever case a framework hands them over.
    assert verified(secret, {name.title(): value for name, value in headers.items()}, body)
    sent_at = int(headers["x-isn-timestamp"])
    assert verified(secret, headers, body, now=sent_at + 300)

    assert not verified("another secret", headers, body)
    assert not verified(secret, headers, body + b" ")
    assert not verified(secret, headers, body.replace(str(item.pk).encode(), b"0" * 36))
    assert not verified(secret, headers, body, now=sent_at + 301)  # a replay, too old
    assert not verified(secret, headers, body, now=sent_at - 301)
    assert not verified(secret, {**headers, "x-isn-timestamp": str(sent_at + 1)}, body)
    assert not verified(secret, {**headers, "x-isn-timestamp": "yesterday"}, body, now=time.time())
    assert not verified(secret, {**headers, "x-isn-signature": "sha256=ünicode"}, body)
    assert not verified(secret, {k: v for k, v in headers.items() if k != "x-isn-signature"}, body)
