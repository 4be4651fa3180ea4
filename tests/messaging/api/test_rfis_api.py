"""/api/v1/rfis/: list, ask, open, reply, close; the same 404 for hidden and absent; key scopes; bounded queries;
and the admin shows metadata only."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from agencies.api_keys import api_key_issue
from agencies.models import ApiKeyScope
from audit.models import AuditEvent
from messaging.models import Notification, Rfi, RfiStatus
from messaging.rfis.services import rfi_create, rfi_reply
from tests.auth import sign_in
from tests.factories import UserFactory
from tests.messaging.network import build_network, post_item

pytestmark = pytest.mark.django_db

QUESTION = "Who owns the lorry with plates 70C-123.45?"


@pytest.fixture
def net():
    return build_network()


def ask(net, asker="vn.officer", **overrides):
    fields = {
        "target_agency": net.kh.pk,
        "target_office": net.bavet.pk,
        "subject": "Lorry owner",
        "question": QUESTION,
        "priority": "priority",
    }
    fields.update(overrides)
    return rfi_create(actor=net.user(asker), **fields).rfi


def as_user(api, user):
    api.force_authenticate(user)
    return api


def test_ask_open_reply_and_close_through_the_api(net, api):
    item = post_item(net.user("vn.officer"), countries=["VN"])
    due = (timezone.now() + timedelta(days=2)).replace(microsecond=0)
    as_user(api, net.user("vn.officer"))
    response = api.post(
        "/api/v1/rfis/",
        {
            "target_agency": net.kh.pk,
            "target_office": net.bavet.pk,
            "item": str(item.pk),
            "subject": "Lorry owner",
            "question": QUESTION,
            "priority": "flash",
            "due_at": due.isoformat(),
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["question"] == QUESTION
    assert created["direction"] == "sent"
    assert created["status"] == "open"
    assert created["item"] == str(item.pk)
    assert created["target_office"] == {"id": net.bavet.pk, "name": "Bavet BLO"}
    assert created["replies"] == []
    rfi_id = created["id"]
    assert Rfi.objects.get(pk=rfi_id).due_at == due

    as_user(api, net.user("kh.officer"))
    opened = api.get(f"/api/v1/rfis/{rfi_id}/")
    assert opened.status_code == 200
    assert (opened.json()["direction"], opened.json()["subject"]) == ("received", "Lorry owner")
    answer = api.post(f"/api/v1/rfis/{rfi_id}/replies/", {"body": "Sokha Trading Co."}, format="json")
    assert answer.status_code == 201, answer.content
    assert answer.json()["author_agency"]["id"] == net.kh.pk
    assert api.post(f"/api/v1/rfis/{rfi_id}/close/").status_code == 403

    as_user(api, net.user("vn.officer"))
    thread = api.get(f"/api/v1/rfis/{rfi_id}/").json()
    assert thread["status"] == "answered"
    assert [reply["body"] for reply in thread["replies"]] == ["Sokha Trading Co."]
    closed = api.post(f"/api/v1/rfis/{rfi_id}/close/")
    assert closed.status_code == 200
    assert closed.json()["status"] == "closed"
    refused = api.post(f"/api/v1/rfis/{rfi_id}/replies/", {"body": "More?"}, format="json")
    assert refused.status_code == 409
    assert refused.json()["code"] == "conflict"
    assert "closed" in refused.json()["detail"]


def test_bad_input_answers_400_naming_the_fields(net, api):
    as_user(api, net.user("vn.officer"))
    response = api.post(
        "/api/v1/rfis/", {"target_agency": net.vn.pk, "subject": "a\nb", "question": "q"}, format="json"
    )
    assert response.status_code == 400
    assert set(response.json()["errors"]["fields"]) == {"target_agency", "subject"}
    assert api.post("/api/v1/rfis/", {"target_agency": "x"}, format="json").status_code == 400
    assert not Rfi.objects.exists()


@pytest.mark.parametrize("name", ["th.officer", "kh.customs", "kh.auditor", "la.supervisor"])
def test_a_hidden_request_answers_exactly_like_one_that_does_not_exist(net, api, name):
    rfi = ask(net)
    as_user(api, net.user(name))
    for method, suffix, body in [("get", "", None), ("post", "replies/", {"body": "x"}), ("post", "close/", None)]:
        for payload in (body, {}):
            answers = []
            for rfi_id in (rfi.pk, uuid.uuid4()):
                response = getattr(api, method)(f"/api/v1/rfis/{rfi_id}/{suffix}", payload, format="json")
                answers.append((response.status_code, response.json()))
            assert answers[0] == answers[1], (name, method, suffix, answers)
            assert answers[0][0] == 404
    assert api.get("/api/v1/rfis/not-an-id/").status_code == 404
    listed = api.get("/api/v1/rfis/")
    assert str(rfi.pk) not in listed.content.decode()
    assert QUESTION not in listed.content.decode()


def test_list_filters_by_direction_and_status_and_records_the_ids(net, api):
    sent = ask(net)
    received = ask(net, asker="kh.officer", target_agency=net.vn.pk, target_office=net.moc_bai.pk)
    rfi_reply(actor=net.user("vn.officer"), rfi_id=received.pk, body="Answered.")
    as_user(api, net.user("vn.officer"))

    def ids(query=""):
        response = api.get(f"/api/v1/rfis/{query}")
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert ids() == [str(received.pk), str(sent.pk)]
    assert ids("?direction=sent") == [str(sent.pk)]
    assert ids("?direction=received") == [str(received.pk)]
    assert ids("?status=answered") == [str(received.pk)]
    assert ids("?status=open&direction=received") == []
    assert api.get("/api/v1/rfis/?direction=sideways").status_code == 400
    row = api.get("/api/v1/rfis/?direction=sent").json()["results"][0]
    assert row["subject"] == "Lorry owner"
    assert "question" not in row
    events = AuditEvent.objects.filter(action="messaging.rfi.list").order_by("id")
    assert events[0].details == {"rfi_ids": [str(received.pk), str(sent.pk)], "count": 2}


def test_list_query_count_is_bounded(net, api, django_assert_max_num_queries):
    for _ in range(5):
        ask(net)
    as_user(api, net.user("kh.officer"))
    with django_assert_max_num_queries(8):
        assert len(api.get("/api/v1/rfis/").json()["results"]) == 5


def test_auditors_and_outsiders_are_refused(net, api):
    ask(net)
    as_user(api, net.user("kh.auditor"))
    assert api.get("/api/v1/rfis/").status_code == 403
    assert api.post("/api/v1/rfis/", {}, format="json").status_code == 403  # before the body is judged
    api.force_authenticate(UserFactory(username="nobody"))
    assert api.get("/api/v1/rfis/").status_code == 403
    api.force_authenticate(None)
    assert api.get("/api/v1/rfis/").status_code in (401, 403)


def test_api_keys_need_the_write_scope_to_ask_and_reply(net, client):
    rfi = ask(net)
    admin = net.user("kh.admin")
    soon = timezone.now() + timedelta(days=30)
    read_key = api_key_issue(actor=admin, agency=net.kh, name="r", scopes=[ApiKeyScope.READ], expires_at=soon)
    write_key = api_key_issue(
        actor=admin, agency=net.kh, name="rw", scopes=[ApiKeyScope.READ, ApiKeyScope.WRITE], expires_at=soon
    )
    read = {"HTTP_AUTHORIZATION": f"Api-Key {read_key.plaintext}"}
    write = {"HTTP_AUTHORIZATION": f"Api-Key {write_key.plaintext}"}
    assert client.get(f"/api/v1/rfis/{rfi.pk}/", **read).status_code == 200
    url = f"/api/v1/rfis/{rfi.pk}/replies/"
    body = '{"body": "From our case system."}'
    assert client.post(url, body, content_type="application/json", **read).status_code == 403
    assert client.post(url, body, content_type="application/json", **write).status_code == 201
    assert Rfi.objects.get(pk=rfi.pk).status == RfiStatus.ANSWERED


def test_a_person_in_a_session_with_both_factors_uses_it_too(net, client):
    rfi = ask(net)
    sign_in(client, net.user("kh.officer"))
    assert client.get(f"/api/v1/rfis/{rfi.pk}/").status_code == 200
    assert (
        client.post(
            f"/api/v1/rfis/{rfi.pk}/replies/", {"body": "In person."}, content_type="application/json"
        ).status_code
        == 201
    )


def test_the_schema_documents_the_rfi_endpoints(net, api):
    as_user(api, net.user("vn.officer"))
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/rfis/"])
    assert "post" in paths["/api/v1/rfis/{id}/replies/"]
    assert "post" in paths["/api/v1/rfis/{id}/close/"]


def test_admin_shows_rfi_metadata_without_content(net, client):
    rfi = ask(net)
    rfi_reply(actor=net.user("kh.officer"), rfi_id=rfi.pk, body="Sokha Trading Co.")
    sign_in(client, UserFactory(username="root", is_staff=True, is_superuser=True))
    listing = client.get("/admin/messaging/rfi/")
    page = client.get(f"/admin/messaging/rfi/{rfi.pk}/change/")
    assert (listing.status_code, page.status_code) == (200, 200)
    assert str(rfi.pk) in listing.content.decode()
    for response in (listing, page):
        text = response.content.decode()
        assert "70C-123.45" not in text
        assert "Lorry owner" not in text
        assert "Sokha" not in text
        assert "sealed" not in text
    assert client.post(f"/admin/messaging/rfi/{rfi.pk}/change/", {"status": "closed"}).status_code == 403
    assert Rfi.objects.get(pk=rfi.pk).status == RfiStatus.ANSWERED


def test_rfi_notifications_are_listed_and_marked_read_through_the_notifications_api(net, api):
    rfi = ask(net)
    officer = net.user("kh.officer")
    as_user(api, officer)
    response = api.get("/api/v1/notifications/")
    assert response.status_code == 200
    assert [row["kind"] for row in response.json()["results"]] == ["rfi_received"]
    notification = Notification.objects.get(rfi=rfi, user=officer)
    assert api.post(f"/api/v1/notifications/{notification.pk}/read/").status_code == 200
