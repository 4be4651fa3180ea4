"""Where a webhook may point (server-side request forgery): with production's settings only https URLs whose host
resolves to public unicast addresses only, checked when set and again at every call, which connects to the address
it checked. Nothing here connects out of the machine: public addresses are only validated, never called."""

from __future__ import annotations

import contextlib
import http.server
import ipaddress
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from audit.models import AuditEvent
from isn.errors import InvalidInput
from messaging.delivery.routing import item_route
from messaging.delivery.webhooks import (
    WebhookTarget,
    WebhookTargetRefused,
    is_public_address,
    post_to,
    webhook_configure,
    webhook_send,
    webhook_target,
)
from messaging.models import AgencyWebhook, OutboxKind, OutboxMessage, WebhookDeadLetter
from tests.isn.test_settings import GOOD_PRODUCTION
from tests.messaging.network import Network, build_network, post_item
from tests.messaging.workers import webhook_receiver

ROOT = Path(__file__).resolve().parents[3]
NOT_PUBLIC = "not a public address"


@pytest.fixture
def production_targets(settings):
    """The production values of the two webhook settings (the rest of the test settings stay)."""
    settings.ISN_WEBHOOK_ALLOW_HTTP = False
    settings.ISN_WEBHOOK_ALLOW_PRIVATE_TARGETS = False


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.0.9",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "100.64.0.1",  # shared address space (carrier-grade NAT)
        "169.254.169.254",  # cloud metadata
        "169.254.10.10",
        "100.100.100.200",  # Alibaba's metadata
        "0.0.0.0",  # noqa: S104 - an address to judge, not to bind
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.10",  # documentation
        "198.18.0.1",  # benchmarking
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "fd00:ec2::254",  # AWS metadata over IPv6
        "fec0::1",
        "ff02::1",
        "ff0e::1",
        "2001:db8::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::7f00:1",  # IPv4-compatible, deprecated
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "64:ff9b:1::808:808",  # a network's own NAT64 prefix
    ],
)
def test_internal_addresses_are_not_public(address):
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001:82a::200e", "64:ff9b::808:808"],
)
def test_public_unicast_addresses_are(address):
    assert is_public_address(ipaddress.ip_address(address))


REFUSED_IN_PRODUCTION = {
    "http://127.0.0.1/isn": "scheme",
    "http://10.0.0.1/isn": "scheme",
    "http://93.184.216.34/isn": "scheme",
    "ftp://93.184.216.34/isn": "scheme",
    "https://127.0.0.1/isn": NOT_PUBLIC,
    "https://10.0.0.1/isn": NOT_PUBLIC,
    "https://192.168.0.10:8443/isn": NOT_PUBLIC,
    "https://169.254.169.254/latest/meta-data/": NOT_PUBLIC,
    "https://[::1]/isn": NOT_PUBLIC,
    "https://[::ffff:127.0.0.1]/isn": NOT_PUBLIC,
    "https://[fd00:ec2::254]/isn": NOT_PUBLIC,
    "https://localhost/isn": NOT_PUBLIC,  # a name that resolves to loopback
    "https://2130706433/isn": NOT_PUBLIC,  # 127.0.0.1 written as one number
    "https://user:secret@93.184.216.34/isn": "credentials",
    "https://93.184.216.34:99999/isn": "port",
}
ACCEPTED_IN_PRODUCTION = {
    "https://93.184.216.34/isn?agency=kh": ["93.184.216.34"],
    "https://[2606:4700:4700::1111]:8443/isn": ["2606:4700:4700::1111"],
}


@pytest.mark.parametrize(("url", "reason"), sorted(REFUSED_IN_PRODUCTION.items()))
def test_production_settings_refuse_internal_targets(production_targets, url, reason):
    with pytest.raises(WebhookTargetRefused) as refused:
        webhook_target(url)
    assert refused.value.reason == reason
    assert refused.value.extra == {"fields": {"url": [refused.value.message]}}


@pytest.mark.parametrize(("url", "addresses"), sorted(ACCEPTED_IN_PRODUCTION.items()))
def test_production_settings_accept_a_public_address(production_targets, url, addresses):
    target = webhook_target(url)
    assert list(target.addresses) == addresses
    assert target.scheme == "https"


def test_the_production_defaults_are_strict():
    """The real production settings (ISN_ENV=production, in a process of its own), not overrides."""
    script = (
        "import json\n"
        "from django.conf import settings\n"
        "from messaging.delivery.webhooks import WebhookTargetRefused, webhook_target\n"
        "results = {}\n"
        f"for url in {sorted([*REFUSED_IN_PRODUCTION, *ACCEPTED_IN_PRODUCTION])!r}:\n"
        "    try:\n"
        "        results[url] = list(webhook_target(url).addresses)\n"
        "    except WebhookTargetRefused as exc:\n"
        "        results[url] = exc.reason\n"
        "print('RESULT ' + json.dumps({'private': settings.ISN_WEBHOOK_ALLOW_PRIVATE_TARGETS,\n"
        "    'http': settings.ISN_WEBHOOK_ALLOW_HTTP, 'results': results}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISN_") and k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {**GOOD_PRODUCTION, "ISN_DATA_DIR": os.environ["ISN_DATA_DIR"]}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    got = json.loads(line.removeprefix("RESULT "))
    assert (got["private"], got["http"]) == (False, False)
    assert got["results"] == {**REFUSED_IN_PRODUCTION, **ACCEPTED_IN_PRODUCTION}


def test_private_targets_may_be_allowed_for_development(settings):
    settings.ISN_WEBHOOK_ALLOW_HTTP = True
    settings.ISN_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    assert webhook_target("http://127.0.0.1:8080/isn").addresses == ("127.0.0.1",)
    # Credentials stay refused whatever the settings.
    with pytest.raises(WebhookTargetRefused):
        webhook_target("http://user:pw@127.0.0.1:8080/isn")


# --- when an admin sets the URL --------------------------------------------------------------------------------------


@pytest.fixture
def net(db) -> Network:
    return build_network()


@pytest.mark.django_db
def test_configuring_an_internal_target_is_a_clear_validation_error(production_targets, net, api):
    for url in ("https://127.0.0.1/isn", "https://169.254.169.254/", "https://[::1]/isn", "https://localhost/isn"):
        with pytest.raises(InvalidInput, match="public address"):
            webhook_configure(actor=net.user("kh.admin"), url=url)
    api.force_authenticate(net.user("kh.admin"))
    for url in ("http://127.0.0.1/isn", "http://10.0.0.1/isn", "https://10.0.0.1/isn", "https://localhost:8443/"):
        response = api.post("/api/v1/webhooks/", {"url": url}, format="json")
        assert response.status_code == 400, (url, response.content)
        assert response.json()["errors"]["fields"]["url"], response.json()
    assert not AgencyWebhook.objects.exists()
    assert not AuditEvent.objects.filter(action="messaging.webhook.configure").exists()

    response = api.post("/api/v1/webhooks/", {"url": "https://93.184.216.34/isn"}, format="json")
    assert response.status_code == 200, response.content
    assert AgencyWebhook.objects.get().url == "https://93.184.216.34/isn"


# --- when a call is made -----------------------------------------------------------------------------------------


def _webhook_row(net: Network) -> OutboxMessage:
    item = post_item(net.user("vn.officer"))
    item_route(outbox_id=OutboxMessage.objects.get(item=item, kind=OutboxKind.ITEM_ROUTE).pk)
    return OutboxMessage.objects.get(item=item, kind=OutboxKind.NOTIFY_WEBHOOK)


@pytest.mark.django_db
def test_a_target_that_turned_internal_is_refused_at_call_time_and_dead_lettered(settings, net):
    settings.ISN_WEBHOOK_MAX_ATTEMPTS = 2
    with webhook_receiver(200) as receiver:
        # Accepted while private targets were allowed (as a name that resolved publicly then might be).
        webhook_configure(actor=net.user("kh.admin"), url=receiver.url.replace("127.0.0.1", "localhost"))
        row = _webhook_row(net)
        settings.ISN_WEBHOOK_ALLOW_PRIVATE_TARGETS = False

        assert webhook_send(outbox_id=row.pk).status == "retry"
        OutboxMessage.objects.filter(pk=row.pk).update(available_at=row.created_at)
        assert webhook_send(outbox_id=row.pk).status == "dead"

        assert receiver.received() == []
    letter = WebhookDeadLetter.objects.get()
    assert (letter.agency_id, letter.last_error) == (net.kh.pk, f"refused: {NOT_PUBLIC}")
    event = AuditEvent.objects.get(action="messaging.notification.dead_letter")
    assert event.details["error"] == f"refused: {NOT_PUBLIC}"


@pytest.mark.django_db
def test_a_name_is_resolved_once_per_call_and_sent_as_host(settings, net):
    with webhook_receiver(200) as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        webhook_configure(actor=net.user("kh.admin"), url=f"http://localhost:{port}/isn-hook")
        row = _webhook_row(net)
        assert webhook_send(outbox_id=row.pk).status == "sent"
        [(headers, _body)] = receiver.received()
    assert headers["host"] == f"localhost:{port}"


def test_a_call_goes_to_the_checked_address_never_to_a_new_lookup():
    """DNS rebinding: the name is never looked up again after the check; the call connects to what was checked."""
    with webhook_receiver(200) as receiver:
        port = int(receiver.url.split(":")[2].split("/")[0])
        # "rebind.invalid" resolves nowhere: only the pinned address can have been used.
        target = WebhookTarget("http", "rebind.invalid", port, "/isn-hook?agency=kh", ("127.0.0.1",))
        assert post_to(target, b"{}", {"Content-Type": "application/json"}) is None
        [(headers, body)] = receiver.received()
    assert headers["host"] == f"rebind.invalid:{port}"
    assert body == b"{}"


@contextlib.contextmanager
def redirecting_receiver(location: str) -> Iterator[tuple[str, list[str]]]:
    """Answers every POST with 307 to ``location``."""
    calls: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            calls.append(self.path)
            self.send_response(307)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/isn-hook", calls
    finally:
        server.shutdown()
        server.server_close()


def test_redirects_are_never_followed():
    with webhook_receiver(200) as elsewhere, redirecting_receiver(elsewhere.url) as (url, calls):
        target = webhook_target(url)
        assert post_to(target, b"{}", {}) == "HTTP 307"
        assert calls == ["/isn-hook"]
        assert elsewhere.received() == []


def test_an_https_target_speaks_tls_and_verifies_it():
    with webhook_receiver(200) as receiver:  # plain HTTP: no TLS handshake possible
        port = int(receiver.url.split(":")[2].split("/")[0])
        failure = post_to(WebhookTarget("https", "localhost", port, "/isn-hook", ("127.0.0.1",)), b"{}", {})
        assert failure is not None
        assert failure.startswith("SSL")
        assert receiver.received() == []
