"""An agency system's view of the API: a Python client generated from /api/schema/ by openapi-python-client, used
as generated, drives the everyday flows against the live test server with agency API keys.

If the schema stops describing what the API does (a body, a status, a content type), the generated client fails to
build, to send or to parse, and so does this test.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from io import BytesIO
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer

from agencies.api_keys import api_key_issue
from agencies.keyring import forget_cached_keys
from agencies.models import ApiKeyScope, Role
from messaging.items.attachments import TEXT_TYPE
from tests.factories import MembershipFactory, UserFactory
from tests.messaging.conftest import api_payload
from tests.messaging.network import build_network, run_outbox

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PACKAGE = "isn_generated_client"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ModuleType]]:
    """The client package, generated from the schema into a temporary folder and imported from there."""
    folder = tmp_path_factory.mktemp("client")
    schema = folder / "schema.json"
    schema.write_bytes(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))
    config = folder / "config.json"
    # No formatter run (the code as generated). A download is a file whatever its type: a text attachment too, where
    # the generator would otherwise decode any text/* answer as a string (README, "Generated clients").
    settings = {"post_hooks": [], "content_type_overrides": {TEXT_TYPE: "application/octet-stream"}}
    config.write_text(json.dumps(settings))
    command = [GENERATOR, "generate", "--path", schema, "--output-path", folder / PACKAGE, "--meta", "none"]
    result = subprocess.run(
        [*command, "--config", config, "--fail-on-warning"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(folder))
    try:
        names = [
            "client",
            "models",
            "types",
            "api.v1.v1_items_create",
            "api.v1.v1_items_attachments_create",
            "api.v1.v1_items_attachments_retrieve",
            "api.v1.v1_items_list",
            "api.v1.v1_items_retrieve",
            "api.v1.v1_items_acknowledge_create",
            "api.v1.v1_items_forward_create",
            "api.v1.v1_consents_create",
            "api.v1.v1_rfis_create",
            "api.v1.v1_rfis_replies_create",
            "api.v1.v1_rfis_retrieve",
            "api.v1.v1_changes_list",
            "api.v1.v1_matches_create",
            "api.v1.v1_hits_list",
        ]
        yield {name.rsplit(".", 1)[-1]: importlib.import_module(f"{PACKAGE}.{name}") for name in names}
    finally:
        sys.path.remove(str(folder))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


@pytest.fixture(autouse=True)
def _no_cached_keys() -> Iterator[None]:
    forget_cached_keys()
    yield
    forget_cached_keys()


@pytest.fixture
def system(generated, live_server) -> Iterator[Any]:
    """``system(key)``: the generated client of an agency's system using that key (closed after the test)."""
    opened: list[Any] = []

    def open_client(key: str) -> Any:
        client = generated["client"].AuthenticatedClient(
            base_url=live_server.url, token=key, prefix="Api-Key", raise_on_unexpected_status=True
        )
        opened.append(client.__enter__())
        return client

    yield open_client
    for client in opened:
        client.__exit__(None, None, None)


def _key(admin: Any, agency: Any) -> str:
    issued = api_key_issue(
        actor=admin,
        agency=agency,
        name=f"{agency.short_name} case system",
        scopes=[ApiKeyScope.READ, ApiKeyScope.WRITE],
        expires_at=timezone.now() + timedelta(days=30),
    )
    return issued.plaintext


def _ok(response: Any, status: int) -> Any:
    assert response.status_code == status, response.content
    return response.parsed


def test_agency_systems_share_through_the_generated_client(generated, system):
    net = build_network()
    vn_admin = MembershipFactory(user=UserFactory(username="vn.admin"), agency=net.vn, role=Role.AGENCY_ADMIN).user
    vn_key, kh_key = _key(vn_admin, net.vn), _key(net.user("kh.admin"), net.kh)
    models, types = generated["models"], generated["types"]
    vn, kh = system(vn_key), system(kh_key)

    # Cambodia's system starts following its change feed from now.
    feed = generated["v1_changes_list"]
    kh_cursor = _ok(feed.sync_detailed(client=kh, start=models.V1ChangesListStart.LATEST), 200).cursor

    # Viet Nam posts two items released to Viet Nam, Cambodia and Thailand, and attaches a note to the second. Its
    # connection drops after the second post, so it posts again with the same key: one item, the same answer.
    posted = []
    create = generated["v1_items_create"]
    for number, title in enumerate(["Lorries expected at Moc Bai", "Meth pills in a tour bus"]):
        body = models.ItemCreate.from_dict(api_payload(title=title, countries=["VN", "KH", "TH"]))
        posted.append(_ok(create.sync_detailed(client=vn, body=body, idempotency_key=f"vn-post-{number}"), 201))
    replayed = _ok(create.sync_detailed(client=vn, body=body, idempotency_key="vn-post-1"), 201)
    assert replayed.id == posted[1].id
    item = posted[1]
    assert isinstance(item, models.ItemCreated)
    note = b"Bus plates 51B-123.45, leaves Ho Chi Minh City at 22:00."
    upload = models.AttachmentUpload(file=types.File(payload=BytesIO(note), file_name="plates.txt"))
    attachment = _ok(generated["v1_items_attachments_create"].sync_detailed(item.id, client=vn, body=upload), 201)
    run_outbox()  # routing, as the worker would

    # Cambodia's feed names both items (once each, though one was posted twice), oldest first, without content.
    changes = _ok(feed.sync_detailed(client=kh, cursor=kh_cursor), 200)
    assert [(c.kind, c.item) for c in changes.results] == [
        (models.ChangeKindEnum.ITEM_VISIBLE, posted[0].id),
        (models.ChangeKindEnum.ITEM_VISIBLE, item.id),
    ]
    assert "tour bus" not in json.dumps(changes.to_dict())
    kh_cursor = changes.cursor

    # Cambodia pages its inbox, one item a page, newest first.
    seen, cursor = [], types.UNSET
    while True:
        page = _ok(generated["v1_items_list"].sync_detailed(client=kh, page_size=1, cursor=cursor), 200)
        seen += [row.id for row in page.results]
        if not page.next_:
            break
        cursor = parse_qs(urlsplit(page.next_).query)["cursor"][0]
    assert seen == [item.id, posted[0].id]

    # It reads the item and downloads the attachment.
    read = _ok(generated["v1_items_retrieve"].sync_detailed(item.id, client=kh), 200)
    assert (read.title, read.body) == ("Meth pills in a tour bus", item.body)
    download = generated["v1_items_attachments_retrieve"].sync_detailed(item.id, attachment.id, client=kh)
    assert download.status_code == 200
    assert download.content == note
    assert download.headers["Content-Type"].startswith("text/plain")

    # It acknowledges; a second acknowledgement is refused as problem details the client parses.
    _ok(generated["v1_items_acknowledge_create"].sync_detailed(item.id, client=kh, body=models.Acknowledge()), 201)
    again = generated["v1_items_acknowledge_create"].sync_detailed(item.id, client=kh, body=models.Acknowledge())
    problem = again.parsed
    assert isinstance(problem, models.Problem)
    assert (again.status_code, problem.status, problem.code) == (409, 409, "already_acknowledged")
    assert again.headers["Content-Type"] == "application/problem+json"

    # It forwards the item to Cambodia's customs, asks consent to share it with Laos, and asks Viet Nam a question.
    forward = models.ForwardCreate(to_agency=net.kh_customs.pk, reason="Customs checks the bus at Bavet.")
    _ok(generated["v1_items_forward_create"].sync_detailed(item.id, client=kh, body=forward), 201)
    consent = models.ConsentCreate.from_dict(
        {"item": str(item.id), "target_country": "LA", "justification": "The bus continues to Laos."}
    )
    asked = _ok(generated["v1_consents_create"].sync_detailed(client=kh, body=consent), 201)
    assert asked.status == models.ConsentStatusEnum.PENDING
    question = models.RfiCreate(
        target_agency=net.vn.pk, item=str(item.id), subject="Bus operator", question="Which company runs the bus?"
    )
    rfi = _ok(generated["v1_rfis_create"].sync_detailed(client=kh, body=question), 201)

    # Viet Nam answers; Cambodia reads the answer in the thread.
    reply = models.RfiReplyCreate(body="Mekong Star Travel, licence 0312.")
    _ok(generated["v1_rfis_replies_create"].sync_detailed(rfi.id, client=vn, body=reply), 201)
    thread = _ok(generated["v1_rfis_retrieve"].sync_detailed(rfi.id, client=kh), 200)
    assert [r.body for r in thread.replies] == ["Mekong Star Travel, licence 0312."]

    # Viet Nam's system hears, from its own feed, of Cambodia's acknowledgement, consent request and question.
    vn_kinds = []
    cursor = types.UNSET
    while True:
        page = _ok(feed.sync_detailed(client=vn, cursor=cursor, limit=2), 200)
        vn_kinds += [change.kind for change in page.results]
        cursor = page.cursor
        if not page.more:
            break
    assert vn_kinds[-4:] == [
        models.ChangeKindEnum.ITEM_ACKNOWLEDGED,
        models.ChangeKindEnum.CONSENT_REQUESTED,
        models.ChangeKindEnum.RFI_OPENED,
        models.ChangeKindEnum.RFI_REPLIED,
    ]
    # Cambodia hears of the reply to its question too; nothing is waiting after that.
    later = _ok(feed.sync_detailed(client=kh, cursor=kh_cursor), 200)
    assert [c.kind for c in later.results][-1] == models.ChangeKindEnum.RFI_REPLIED
    assert not later.more

    # An item Cambodia may not see answers like one that does not exist, and the client reads it as a Problem.
    missing = generated["v1_items_retrieve"].sync_detailed(UUID(int=0), client=kh)
    assert missing.status_code == 404
    assert missing.parsed.to_dict()["code"] == "not_found"


def test_agency_systems_check_identifiers_and_follow_their_hits_through_the_generated_client(generated, system):
    net = build_network()
    vn_admin = MembershipFactory(user=UserFactory(username="vn.admin"), agency=net.vn, role=Role.AGENCY_ADMIN).user
    vn, kh = system(_key(vn_admin, net.vn)), system(_key(net.user("kh.admin"), net.kh))
    models = generated["models"]
    plate = {"type": "vehicle", "plate": "51C-123.45", "country": "VN"}

    # Viet Nam posts a discoverable item naming a plate, released to Viet Nam only; its own check finds nothing.
    body = models.ItemCreate.from_dict(api_payload(countries=["VN"], entities=[plate], discoverable=True))
    posted = _ok(generated["v1_items_create"].sync_detailed(client=vn, body=body), 201)
    assert posted.discoverable is True
    assert (posted.hits_checked, len(posted.hits), posted.hits[0].hits) == (True, 1, [])

    # Cambodia's system checks the plate as typed at the border: Viet Nam's agency holds something, nothing more.
    check = models.MatchRequest.from_dict({"identifiers": [{"type": "vehicle", "plate": "51c 12345", "country": "VN"}]})
    answer = _ok(generated["v1_matches_create"].sync_detailed(client=kh, body=check), 200)
    (result,) = answer.results
    (hit,) = result.hits
    assert (result.related, hit.country, hit.agency.code, hit.agency.id) == ([], "VN", net.vn.short_name, net.vn.pk)
    assert str(posted.id) not in json.dumps(answer.to_dict())

    # Viet Nam sees the hit on its item, and who asked; Cambodia sees the hit it received, without the item.
    hits = generated["v1_hits_list"]
    (on_ours,) = _ok(hits.sync_detailed(client=vn, direction=models.V1HitsListDirection.ON_OUR_ITEMS), 200).results
    assert (on_ours.reference, on_ours.item, on_ours.asker_agency.id) == (hit.reference, posted.id, net.kh.pk)
    (received,) = _ok(hits.sync_detailed(client=kh, direction=models.V1HitsListDirection.RECEIVED), 200).results
    assert (received.reference, received.item, received.holder_country) == (hit.reference, None, "VN")

    # Over 50 identifiers the check is refused as problem details the client parses.
    too_many = models.MatchRequest.from_dict({"identifiers": [plate] * 51})
    refused = generated["v1_matches_create"].sync_detailed(client=kh, body=too_many)
    assert (refused.status_code, refused.parsed.code) == (400, "invalid")
