"""Canary strings planted in an item's title, body, attachment name and attachment bytes go through the whole flow
(post, list, read, download, correct, narrow, withdraw; the audit chain sealed) and are then looked for in
plaintext everywhere the host keeps anything: a pg_dump of the database, the revocation ledger, every Redis key
(including the Celery messages queued there), the logs and the sent e-mails. Only the people they were released
to ever see them.

The logs are searched as the operator keeps them (``ISN_LOG_FORMAT=json``, isn.logformat): this process's records
through the JSON formatter with the request-id and task filters, and the worker started with JSON logs.

The item is routed by a real Celery worker on a Redis of the test's own, which e-mails the counterpart officer
through a local SMTP server and calls the receiving agency's webhook on a local receiver: the worker's log, the
e-mails, the webhook bodies and that Redis are searched too. Requests for information are not built yet; when
they are, they belong here as well.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import subprocess
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
import redis
from django.conf import settings
from django.core import mail
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from agencies.keyring import forget_cached_keys
from agencies.models import Role
from agencies.services import office_link_counterpart
from isn.logformat import JsonFormatter, TaskLogFilter
from isn.middleware import RequestIdLogFilter
from messaging.delivery.webhooks import webhook_configure
from messaging.models.delivery import Delivery
from tests.factories import AgencyFactory, MembershipFactory, OfficeFactory, UserFactory, country
from tests.messaging.workers import private_broker, smtp_sink, start_worker, wait_for, webhook_receiver
from tests.servers import _find

CANARIES = {
    "title": "CANARY-TITLE-7f3a9c",
    "corrected title": "CANARY-CORRECTED-51be2d",
    "body": "CANARY-BODY-e81d04",
    "attachment name": "CANARY-NAME-0c4b77",
    "attachment": "CANARY-FILE-9d2e6a",
    "entity": "CANARY-ENTITY-4f81ac",
    "entity, normalised for matching": "canary entity 4f81ac|1980-03-12",
}


def _forms(canary: str) -> list[bytes]:
    """The plaintext as it could sit in a dump or a key: bytes, hex (bytea), base64 (Celery bodies), UTF-16."""
    raw = canary.encode()
    return [raw, raw.hex().encode(), base64.b64encode(raw)[:-4], canary.encode("utf-16-le")]


def _assert_absent(where: str, data: bytes) -> None:
    for name, canary in CANARIES.items():
        for form in _forms(canary):
            assert form not in data, f"the {name} canary is in {where} in plaintext ({form[:40]!r})"


def _pg_dump() -> bytes:
    db = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": db.get("PASSWORD") or ""}
    command = [_find("pg_dump", "Debian: apt-get install postgresql-client"), "--no-owner", "--no-privileges"]
    command += ["-h", db["HOST"] or "127.0.0.1", "-p", str(db["PORT"] or 5432), "-U", db["USER"], db["NAME"]]
    dump = subprocess.run(command, env=env, capture_output=True, check=True, timeout=120).stdout
    assert b"COPY public.messaging_item " in dump  # the dump holds the items at all
    assert b"COPY public.messaging_idempotencykey " in dump  # and the API's idempotency records
    return dump


def _redis_contents(url: str) -> bytes:
    """Every key and value of a Redis, with Celery's base64 message bodies decoded."""
    server = redis.Redis.from_url(url)
    chunks: list[bytes] = []
    for key in server.scan_iter("*"):
        kind = server.type(key).decode()
        if kind == "string":
            values = [server.get(key) or b""]
        elif kind == "list":
            values = server.lrange(key, 0, -1)
        elif kind == "hash":
            values = [b"%s=%s" % pair for pair in server.hgetall(key).items()]
        elif kind == "set":
            values = list(server.smembers(key))
        elif kind == "zset":
            values = server.zrange(key, 0, -1)
        else:
            values = [server.dump(key) or b""]
        chunks.append(key)
        for value in values:
            chunks.append(value)
            try:
                envelope = json.loads(value)
                chunks.append(base64.b64decode(envelope["body"]))
            except (ValueError, KeyError, TypeError):
                pass
    return b"\n".join(chunks)


@pytest.fixture
def people():
    forget_cached_keys()
    # Names of their own: this test commits, and must not meet rows another committing test failed to remove.
    run = uuid.uuid4().hex[:6]
    vn, kh, th, un = (
        AgencyFactory(country=country(code), name=f"{code} canary {run}", short_name=f"{code}C{run}")
        for code in ("VN", "KH", "TH", "UN")
    )
    users = {}
    offices = {}
    for name, agency, role in [
        ("vn.officer", vn, Role.OFFICER),
        ("kh.officer", kh, Role.OFFICER),
        ("th.officer", th, Role.OFFICER),
        ("un.auditor", un, Role.REGIONAL_AUDITOR),
        ("kh.admin", kh, Role.AGENCY_ADMIN),
    ]:
        user = UserFactory(username=f"canary-{run}.{name}")
        office = OfficeFactory(agency=agency) if role == Role.OFFICER else None
        offices[name] = office
        MembershipFactory(user=user, agency=agency, office=office, role=role)
        client = APIClient()
        client.force_authenticate(user)
        client.isn_user = user
        users[name] = client
    # The Cambodian officer's office is the Vietnamese one's counterpart, so routing e-mails the item to them.
    office_link_counterpart(actor=None, office=offices["vn.officer"], counterpart=offices["kh.officer"])
    yield users
    forget_cached_keys()


@pytest.fixture
def routing(tmp_path):
    """A real worker on a private Redis, an SMTP sink for its e-mails, a receiver for the agency's webhook."""
    with smtp_sink() as smtp, webhook_receiver(200) as hooks, private_broker(tmp_path) as broker_server:
        worker = start_worker(
            broker_server.url,
            tmp_path,
            name="canary",
            env={
                "ISN_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "ISN_EMAIL_HOST": "127.0.0.1",
                "ISN_EMAIL_PORT": str(smtp.port),
                "ISN_LOG_LEVEL": "DEBUG",
                "ISN_LOG_FORMAT": "json",
            },
        )
        try:
            yield SimpleNamespace(smtp=smtp, hooks=hooks, broker=broker_server, worker=worker)
        finally:
            worker.stop()


@pytest.fixture
def json_log():
    """This process's log records as ISN_LOG_FORMAT=json writes them (the settings' console handler, into a buffer)."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdLogFilter())
    handler.addFilter(TaskLogFilter())
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)


def _json_lines(text: str, where: str) -> list[dict]:
    """Every line a JSON object with the fields isn.logformat promises (a worker also prints a banner first)."""
    records = []
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        assert {"time", "level", "logger", "message", "request_id"} <= record.keys(), (where, record)
        records.append(record)
    assert records, f"nothing was logged as JSON in {where}"
    return records


@pytest.mark.slow
# Committed for real (the sealing and the Celery messages queued on commit happen); countries survive the flush.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_no_canary_in_plaintext_anywhere_after_the_whole_flow(people, routing, json_log, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    vn, kh, th, auditor = (people[name] for name in ("vn.officer", "kh.officer", "th.officer", "un.auditor"))
    webhook_configure(actor=people["kh.admin"].isn_user, url=routing.hooks.url)
    review = (timezone.now().date() + timedelta(days=60)).isoformat()
    posted = vn.post(
        "/api/v1/items/",
        {
            "title": CANARIES["title"],
            "body": f"Lorries at the crossing. {CANARIES['body']}",
            "language": "en",
            "category": "meth_pills",
            "priority": "flash",
            "source_reliability": "B",
            "info_credibility": 2,
            "handling_code": "amber",
            "review_date": review,
            "countries": ["VN", "KH"],
            "entities": [{"type": "person", "name": CANARIES["entity"], "birth_date": "1980-03-12"}],
            "discoverable": True,
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY="canary-post",  # the key store is in the dump searched below
    )
    assert posted.status_code == 201, posted.content
    item = posted.json()["id"]
    upload = vn.post(
        f"/api/v1/items/{item}/attachments/",
        {"file": (f"{CANARIES['attachment name']}.txt", CANARIES["attachment"].encode(), "text/plain")},
        format="multipart",
        HTTP_IDEMPOTENCY_KEY="canary-upload",
    )
    if upload.status_code == 400:  # APIClient's multipart tuple form differs by version: use a real file object
        from django.core.files.uploadedfile import SimpleUploadedFile

        upload = vn.post(
            f"/api/v1/items/{item}/attachments/",
            {"file": SimpleUploadedFile(f"{CANARIES['attachment name']}.txt", CANARIES["attachment"].encode())},
            format="multipart",
        )
    assert upload.status_code == 201, upload.content
    attachment = upload.json()["id"]
    kh_email = people["kh.officer"].isn_user.email
    wait_for(lambda: routing.smtp.to(kh_email) and routing.hooks.received(), timeout=60, what=routing.worker.output())
    assert Delivery.objects.filter(item_id=item, agency__country_id="KH").exists()

    # Thailand, which may not read it, checks the person: a hit, naming Viet Nam's agency and nothing of the item.
    identifiers = [{"type": "person", "name": CANARIES["entity"].lower(), "birth_date": "12/03/1980"}]
    checked = th.post("/api/v1/matches/", {"identifiers": identifiers}, format="json")
    assert checked.status_code == 200, checked.content
    assert [hit["country"] for hit in checked.json()["results"][0]["hits"]] == ["VN"]
    assert CANARIES["entity"] not in checked.content.decode()

    # The people it is released to see it all; nobody else sees any of it.
    assert CANARIES["title"] in kh.get("/api/v1/items/").content.decode()
    assert CANARIES["body"] in kh.get(f"/api/v1/items/{item}/").content.decode()
    assert CANARIES["entity"] in kh.get(f"/api/v1/items/{item}/").content.decode()
    download = kh.get(f"/api/v1/items/{item}/attachments/{attachment}/")
    assert download.content == CANARIES["attachment"].encode()
    assert download["Content-Disposition"].startswith("attachment;")
    # The platform's operator tries every way to a membership of Cambodia's agency (where the item is released): the
    # membership API, a proposal, and a membership written straight into the database. None reads anything.
    kh_agency = people["kh.admin"].isn_user.membership.agency
    operator_user = UserFactory(username=f"{kh_agency.short_name}.operator", is_staff=True, is_superuser=True)
    operator = APIClient()
    operator.force_authenticate(operator_user)
    for attempt in (
        operator.post("/api/v1/memberships/", {"username": operator_user.username, "role": "officer"}, format="json"),
        operator.post(
            "/api/v1/membership-proposals/",
            {"kind": "agency_admin", "username": operator_user.username},
            format="json",
        ),
        operator.post(
            "/api/v1/membership-proposals/",
            {"kind": "first_admin", "username": operator_user.username, "agency": kh_agency.pk},
            format="json",
        ),
    ):
        assert attempt.status_code in (403, 409), attempt.content
    MembershipFactory(user=operator_user, agency=kh_agency, role=Role.NATIONAL_FOCAL_POINT)
    for outsider in (th, auditor, operator):
        for path in ("/api/v1/items/", f"/api/v1/items/{item}/", f"/api/v1/items/{item}/attachments/{attachment}/"):
            _assert_absent(f"a response to an outsider ({path})", outsider.get(path).content)
    corrected = {"title": CANARIES["corrected title"]}
    assert (
        vn.patch(f"/api/v1/items/{item}/", corrected, format="json", HTTP_IDEMPOTENCY_KEY="canary-fix").status_code
        == 200
    )
    assert vn.get(f"/api/v1/items/{item}/access/").status_code == 200
    assert vn.patch(f"/api/v1/items/{item}/", {"countries": ["VN"]}, format="json").status_code == 200
    assert kh.get(f"/api/v1/items/{item}/").status_code == 404
    assert vn.post(f"/api/v1/items/{item}/withdraw/").status_code == 200
    audit_events = auditor.get("/api/v1/audit/events/?page_size=500")
    assert audit_events.status_code == 200
    _assert_absent("the audit API", audit_events.content)

    from audit.tasks import seal_events

    seal_events()  # the chain's hashes and checkpoint inputs are made from the events as stored

    _assert_absent("a pg_dump of the database", _pg_dump())
    ledger = settings.ISN_REVOCATION_LEDGER.read_bytes()
    assert item.encode() in ledger  # the narrowing and the withdrawal were appended to the revocation ledger
    _assert_absent("the revocation ledger", ledger)
    # One Redis for the cache and the broker, as the README configures it (``private_broker``).
    in_broker = _redis_contents(routing.broker.url)
    assert b"throttle_person_" in in_broker  # the search does reach this test's cache keys
    _assert_absent("Redis: the cache, and the Celery broker's queues and messages", in_broker)
    _assert_absent("the test run's own Redis", _redis_contents(settings.REDIS_URL))
    e_mails = b"\n".join(message.as_bytes() for _, message in routing.smtp.messages)
    assert kh_email.encode() in e_mails  # the search does reach the e-mail that was sent
    _assert_absent("e-mails sent by the worker", e_mails)
    webhook_bodies = b"\n".join(body for _, body in routing.hooks.received())
    assert item.encode() in webhook_bodies  # the agency's system was told of the item
    _assert_absent("webhook bodies", webhook_bodies)
    _assert_absent("the worker's log", routing.worker.log.read_bytes())
    worker_records = _json_lines(routing.worker.log.read_text(), "the worker's log")
    # The worker's records name the task they were written in (the routing task at least logged something).
    assert any(record.get("task_id") and record.get("task") for record in worker_records), routing.worker.output()
    _assert_absent("the captured logs", caplog.text.encode())
    web_records = _json_lines(json_log.getvalue(), "this process's JSON log")
    assert any(record["request_id"] != "-" for record in web_records)  # requests were logged with their ids
    _assert_absent("this process's JSON log", json_log.getvalue().encode())
    captured = capsys.readouterr()
    _assert_absent("stdout and stderr", (captured.out + captured.err).encode())
    _assert_absent("sent e-mails", b"\n".join(str(message.message()).encode() for message in mail.outbox))
