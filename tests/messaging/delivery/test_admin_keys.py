"""An agency's own system with an admin-scoped API key manages the agency's webhook and subscriptions through the API,
recorded under the key's service account; keys without that scope do not, and no key manages keys."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from agencies.api_keys import api_key_issue, api_key_revoke
from agencies.models import ApiKey
from audit.models import AuditEvent
from isn.errors import PermissionDenied
from messaging.delivery.webhooks import webhook_configure
from messaging.models import AgencyWebhook, Subscription, WebhookDeadLetter
from tests.messaging.network import Network, build_network, post_item

pytestmark = pytest.mark.django_db

WEBHOOKS = "/api/v1/webhooks/"
SUBSCRIPTIONS = "/api/v1/subscriptions/"


@pytest.fixture
def net() -> Network:
    return build_network()


def issue(net: Network, *scopes: str, name: str = "kh-integration") -> tuple[ApiKey, str]:
    issued = api_key_issue(
        actor=net.user("kh.auditor" if scopes == ("audit",) else "kh.admin"),  # audit keys come from auditors
        agency=net.kh,
        name=name,
        scopes=list(scopes),
        expires_at=timezone.now() + timedelta(days=30),
    )
    return issued.key, issued.plaintext


def with_key(plaintext: str) -> Any:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plaintext}")
    return client


def test_an_admin_key_sets_sees_rotates_and_removes_its_agencys_webhook(net):
    key, plaintext = issue(net, "admin")
    client = with_key(plaintext)

    configured = client.post(WEBHOOKS, {"url": "https://kh.example.org/isn"}, format="json")
    assert configured.status_code == 200, configured.content
    webhook_id = configured.json()["id"]
    assert len(configured.json()["secret"]) >= 40
    assert AgencyWebhook.objects.get(pk=webhook_id).agency_id == net.kh.pk
    assert [row["id"] for row in client.get(WEBHOOKS).json()] == [webhook_id]
    assert client.get(f"{WEBHOOKS}{webhook_id}/").status_code == 200
    rotated = client.post(f"{WEBHOOKS}{webhook_id}/rotate-secret/")
    assert rotated.status_code == 200
    assert rotated.json()["secret"] != configured.json()["secret"]
    item = post_item(net.user("vn.officer"))
    WebhookDeadLetter.objects.create(agency=net.kh, item=item, event="item.routed", attempts=3, last_error="HTTP 500")
    assert len(client.get(f"{WEBHOOKS}dead-letters/").json()["results"]) == 1
    assert client.delete(f"{WEBHOOKS}{webhook_id}/").status_code == 204
    assert not AgencyWebhook.objects.exists()

    # The audit trail names the key's service account (and the key) as the actor, as for any key.
    for action in ("configure", "view", "rotate_secret", "dead_letter_list", "delete"):
        event = AuditEvent.objects.filter(action=f"messaging.webhook.{action}").latest("pk")
        assert (event.actor_user_id, event.actor_api_key_id, event.actor_agency_id) == (key.user_id, key.pk, net.kh.pk)


def test_keys_without_the_admin_scope_do_not_touch_the_webhook(net):
    webhook, _ = webhook_configure(actor=net.user("kh.admin"), url="https://kh.example.org/isn")
    _key, reader_writer = issue(net, "read", "write", name="case system")
    _key, auditor = issue(net, "audit", name="audit")
    for plaintext in (reader_writer, auditor):
        client = with_key(plaintext)
        assert client.get(WEBHOOKS).status_code == 403
        assert client.post(WEBHOOKS, {"url": "https://evil.example.org/"}, format="json").status_code == 403
        assert client.post(f"{WEBHOOKS}{webhook.pk}/rotate-secret/").status_code == 403
        assert client.delete(f"{WEBHOOKS}{webhook.pk}/").status_code == 403
    assert AgencyWebhook.objects.get().url == "https://kh.example.org/isn"


def test_another_agencys_admin_key_sees_none_of_this_webhook(net):
    webhook, _ = webhook_configure(actor=net.user("kh.admin"), url="https://kh.example.org/isn")
    customs_admin = net.user("kh.customs")
    customs_admin.membership.role = "agency_admin"
    customs_admin.membership.save(update_fields=["role"])
    issued = api_key_issue(
        actor=customs_admin,
        agency=net.kh_customs,
        name="customs hooks",
        scopes=["admin"],
        expires_at=timezone.now() + timedelta(days=30),
    )
    client = with_key(issued.plaintext)
    assert client.get(WEBHOOKS).json() == []
    assert client.get(f"{WEBHOOKS}{webhook.pk}/").status_code == 404
    assert client.delete(f"{WEBHOOKS}{webhook.pk}/").status_code == 404


def test_a_revoked_or_expired_admin_key_manages_nothing(net):
    key, plaintext = issue(net, "admin")
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert with_key(plaintext).get(WEBHOOKS).status_code == 401
    # Nor through the services, whatever calls them with its account.
    with pytest.raises(PermissionDenied):
        webhook_configure(actor=type(key.user).objects.get(pk=key.user_id), url="https://kh.example.org/isn")
    other, other_plaintext = issue(net, "admin", name="other")
    api_key_revoke(actor=net.user("kh.admin"), key=other)
    assert (
        with_key(other_plaintext).post(WEBHOOKS, {"url": "https://kh.example.org/"}, format="json").status_code == 401
    )
    assert not AgencyWebhook.objects.exists()


def test_an_admin_key_manages_every_subscription_of_its_agency(net):
    key, plaintext = issue(net, "admin")
    client = with_key(plaintext)
    officers_own = Subscription.objects.create(agency=net.kh, user=net.user("kh.officer"), category="heroin_opium")
    Subscription.objects.create(agency=net.th, office=net.chiang_saen, category="ketamine")  # another agency's

    for_office = client.post(SUBSCRIPTIONS, {"office": net.bavet.pk, "priority": "flash"}, format="json")
    for_person = client.post(SUBSCRIPTIONS, {"user": "kh.desk", "originator_country": "VN"}, format="json")
    assert for_office.status_code == for_person.status_code == 201, for_office.content
    assert (for_office.json()["office"]["id"], for_person.json()["user"]) == (net.bavet.pk, "kh.desk")
    listed = client.get(SUBSCRIPTIONS).json()["results"]
    assert {row["id"] for row in listed} == {officers_own.pk, for_office.json()["id"], for_person.json()["id"]}
    changed = client.patch(f"{SUBSCRIPTIONS}{officers_own.pk}/", {"is_active": False}, format="json")
    assert changed.status_code == 200
    assert client.delete(f"{SUBSCRIPTIONS}{for_person.json()['id']}/").status_code == 204
    assert not Subscription.objects.get(pk=officers_own.pk).is_active

    events = AuditEvent.objects.filter(action__startswith="messaging.subscription.").exclude(action__endswith=".list")
    assert {(e.action, e.actor_user_id, e.actor_api_key_id) for e in events} == {
        ("messaging.subscription.create", key.user_id, key.pk),
        ("messaging.subscription.change", key.user_id, key.pk),
        ("messaging.subscription.delete", key.user_id, key.pk),
    }


def test_a_key_without_admin_manages_only_its_own_accounts_subscriptions(net):
    key, plaintext = issue(net, "read", "write", name="case system")
    client = with_key(plaintext)
    Subscription.objects.create(agency=net.kh, user=net.user("kh.officer"), category="heroin_opium")
    assert client.post(SUBSCRIPTIONS, {"office": net.bavet.pk, "priority": "flash"}, format="json").status_code == 403
    own = client.post(SUBSCRIPTIONS, {"priority": "flash"}, format="json")
    assert own.status_code == 201
    assert own.json()["user"] == key.user.username
    assert [row["id"] for row in client.get(SUBSCRIPTIONS).json()["results"]] == [own.json()["id"]]
    # A read-only key reads its own and changes nothing.
    _key, reader = issue(net, "read", name="reader")
    assert with_key(reader).post(SUBSCRIPTIONS, {"priority": "flash"}, format="json").status_code == 403
