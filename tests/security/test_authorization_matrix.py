"""Every endpoint and page x every method x every persona, against the expected table below.

The endpoints are read from the URL configuration itself (``get_resolver()``), so a new endpoint cannot escape: one
that no rule in ``RULES`` names makes the test fail and say which rule to add. Each request runs in a transaction
that is rolled back, so one persona's successful write never changes what the next one sees.

Outcomes: ALLOW means the request reached the view's work (2xx, 3xx other than to sign-in, or 400/409 from input
checks); DENY means it was refused (401, 403, 404, 405, 429, or a redirect to sign-in or to the second factor). A
5xx is always a failure. MAY means either is acceptable (public pages, or an answer that depends on data).
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RegexPattern, RoutePattern
from django.utils import timezone

from tests.security.conftest import CANARY_TITLE, ITEM_COUNTRIES, Network, Persona

METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")
ALLOW, DENY, MAY = "allow", "deny", "may"
Who = Callable[[Persona, Network], bool]


def everyone(p: Persona, n: Network) -> bool:
    return True


def verified_person(p: Persona, n: Network) -> bool:
    return p.session


def member(p: Persona, n: Network) -> bool:
    return p.member


def member_person(p: Persona, n: Network) -> bool:
    return p.member and p.session


def auditor(p: Persona, n: Network) -> bool:
    return p.auditor


def auditor_person(p: Persona, n: Network) -> bool:
    return p.auditor and p.session


def content(p: Persona, n: Network) -> bool:
    return p.content


def item_reader(p: Persona, n: Network) -> bool:
    return p.content and p.country in ITEM_COUNTRIES


def originator(p: Persona, n: Network) -> bool:
    return p.content and p.agency_id == n.originator_agency_id


def originator_admin(p: Persona, n: Network) -> bool:
    return p.session and p.role == "agency_admin" and p.agency_id == n.originator_agency_id


def agency_admin(p: Persona, n: Network) -> bool:
    return p.session and p.role == "agency_admin"


def platform_admin(p: Persona, n: Network) -> bool:
    return p.name == "platform_admin"


def authenticated(p: Persona, n: Network) -> bool:
    return p.session or p.key


@dataclass(frozen=True)
class Rule:
    """Requests to views named like ``view`` (a glob) with one of ``methods``: ALLOW for ``allow``, else DENY.

    ``maybe`` personas may get either answer. Methods named by no rule of a view must be refused (405 or a denial).
    """

    view: str
    methods: tuple[str, ...]
    allow: Who | None = None
    maybe: Who | None = None
    scoped: bool = True  # an API view: a key's scopes apply


PUBLIC = ("GET", "POST", "PUT", "PATCH", "DELETE")

RULES: list[Rule] = [
    # Public: sign-in and its second factor, sign-out, the health probe, the admin's redirect to our sign-in.
    Rule("login", PUBLIC, maybe=everyone, scoped=False),
    Rule("logout", PUBLIC, maybe=everyone, scoped=False),
    Rule("two_factor", PUBLIC, maybe=everyone, scoped=False),
    Rule("two_factor_enrol", PUBLIC, maybe=everyone, scoped=False),
    Rule("healthz", PUBLIC, maybe=everyone, scoped=False),
    Rule("<unnamed>/admin/login/", PUBLIC, maybe=everyone, scoped=False),
    # The portal.
    Rule("portal:home", ("GET",), allow=verified_person, scoped=False),
    Rule("portal:directory", ("GET",), allow=member_person, scoped=False),
    Rule("password_change", ("GET", "POST", "PUT"), allow=verified_person, scoped=False),
    Rule("password_change_done", ("GET",), allow=verified_person, scoped=False),
    Rule("audit:*", ("GET",), allow=auditor_person, scoped=False),
    # The Django admin: platform operators only (what they get inside depends on the object: MAY).
    Rule("admin:logout", PUBLIC, maybe=everyone, scoped=False),
    Rule("admin:index", ("GET",), allow=platform_admin, scoped=False),
    # Django's admin views answer any method for an operator; for anyone else its one gate refuses them all.
    Rule("admin:index", PUBLIC, maybe=platform_admin, scoped=False),
    Rule("admin:*", PUBLIC, maybe=platform_admin, scoped=False),
    # API documentation: anyone signed in (a person or a live key).
    Rule("schema", ("GET",), allow=authenticated, scoped=False),
    Rule("api-docs", ("GET",), allow=authenticated, scoped=False),
    # Directory: every member.
    Rule("agency-*", ("GET",), allow=member),
    Rule("office-*", ("GET",), allow=member),
    # API keys: agency admins, in person, of their own agency's keys.
    Rule("api-key-list", ("GET", "POST"), allow=agency_admin),
    Rule("api-key-revoke", ("POST",), allow=originator_admin),
    # Items: content for officers (not auditors), scoped to the release; changes by the originating agency.
    Rule("item-list", ("GET", "POST"), allow=content),
    # Counting answers 0 to an auditor (they read no content): not a leak, checked in test_nothing_leaks.
    Rule("item-count", ("GET",), allow=content, maybe=auditor),
    Rule("item-detail", ("GET",), allow=item_reader),
    Rule("item-detail", ("PATCH",), allow=originator),
    Rule("item-withdraw", ("POST",), allow=originator),
    Rule("item-attachments", ("POST",), allow=originator),
    Rule("item-attachment-download", ("GET",), allow=item_reader),
    Rule("item-access", ("GET",), allow=originator),
    # Routing and notifications: recipients acknowledge; only the originating agency sees where an item went.
    Rule("item-acknowledge", ("POST",), maybe=item_reader),
    Rule("item-deliveries", ("GET",), allow=originator),
    # Everyone's own notifications (an auditor's list is empty); one to mark read must be one's own (none here).
    Rule("notification-list", ("GET",), allow=member),
    Rule("notification-unread-count", ("GET",), allow=member),
    Rule("notification-read", ("POST",), maybe=member),
    # An agency's webhook: its admins, in person.
    Rule("webhook-list", ("POST",), allow=agency_admin),
    Rule("webhook-dead-letters", ("GET",), allow=agency_admin),
    # The auditors' workspace API: auditors, in person or by an audit key.
    Rule("audit-*", ("GET",), allow=auditor),
]


@dataclass(frozen=True)
class Endpoint:
    view: str
    route: str  # the pattern as written, for messages
    path: str


def _walk(patterns: list, prefix: list, namespace: str, out: list[tuple[list, str, URLPattern]]) -> None:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            _walk(pattern.url_patterns, [*prefix, pattern.pattern], inner, out)
        else:
            out.append(([*prefix, pattern.pattern], namespace, pattern))


_ROUTE_PARAM = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")


def _fill_regex(regex: str, value: Callable[[str], str]) -> str:
    out, index = [], 0
    while index < len(regex):
        if regex.startswith("(?P<", index):
            name = regex[index + 4 : regex.index(">", index)]
            depth, end = 0, index
            while True:
                if regex[end] == "(" and regex[end - 1] != "\\":
                    depth += 1
                elif regex[end] == ")" and regex[end - 1] != "\\":
                    depth -= 1
                    if depth == 0:
                        break
                end += 1
            out.append(value(name))
            index = end + 1
        else:
            out.append(regex[index])
            index += 1
    text = "".join(out).lstrip("^").removesuffix("\\Z").removesuffix("$")
    return text.replace("\\.", ".").replace("\\/", "/")


def _values(network: Network, view: str) -> Callable[[str], str]:
    basename = view.split("-")[0] if "-" in view else ""
    by_basename = {
        "item": network.item_id,
        "office": str(network.office_id),
        "agency": str(network.agency_id),
        "api": str(network.api_key_id),
    }

    def value(name: str) -> str:
        if name in ("pk", "id", "item_id"):
            return by_basename.get(basename, network.item_id)
        return {
            "attachment_id": network.attachment_id,
            "user_id": str(network.user_id),
            "app_label": "agencies",
            "object_id": str(network.office_id),
            "content_type_id": "1",
            "url": "nowhere/",
        }.get(name, "1")

    return value


def endpoints(network: Network) -> list[Endpoint]:
    found: list[tuple[list, str, URLPattern]] = []
    _walk(get_resolver().url_patterns, [], "", found)
    result: dict[str, Endpoint] = {}
    for pieces, namespace, pattern in found:
        names = set()
        for piece in pieces:
            names |= set(piece.regex.groupindex)
        if "format" in names:
            continue  # DRF's ".json" suffix routes: the same views again
        view = f"{namespace}{pattern.name or '<unnamed>'}"
        value = _values(network, view)
        path = "/"
        for piece in pieces:
            if isinstance(piece, RoutePattern):
                path += _ROUTE_PARAM.sub(lambda m, value=value: value(m.group("name")), str(piece))
            elif isinstance(piece, RegexPattern):
                path += _fill_regex(piece.regex.pattern, value)
        if view.endswith("<unnamed>"):
            view += path
        assert resolve(path).func is pattern.callback or view.startswith("admin:"), (view, path)
        result.setdefault(f"{view} {path}", Endpoint(view, "/".join(str(p) for p in pieces), path))
    return list(result.values())


def expected(endpoint: Endpoint, method: str, persona: Persona, network: Network) -> str | None:
    """ALLOW, DENY or MAY; None when no rule names the endpoint at all."""
    rules = [rule for rule in RULES if fnmatch.fnmatchcase(endpoint.view, rule.view)]
    if not rules:
        return None
    for rule in rules:
        if method not in rule.methods:
            continue
        if rule.allow is not None and rule.allow(persona, network):
            return ALLOW if (not rule.scoped or persona.may(method)) else DENY
        if rule.maybe is not None and rule.maybe(persona, network):
            return MAY if (not rule.scoped or persona.may(method)) else DENY
        return DENY
    return DENY  # a method no rule accepts: 405, or refused before that


def _body(endpoint: Endpoint, method: str, persona: Persona) -> dict:
    if method not in ("POST", "PATCH", "PUT"):
        return {}
    view = endpoint.view
    if view == "item-list":
        return {
            "data": json.dumps(
                {
                    "title": "Posted by the matrix",
                    "body": "Text.",
                    "language": "en",
                    "category": "meth_pills",
                    "source_reliability": "B",
                    "info_credibility": 2,
                    "handling_code": "amber",
                    "review_date": (timezone.now().date() + timedelta(days=30)).isoformat(),
                    "countries": [persona.country or "VN"],
                }
            ),
            "content_type": "application/json",
        }
    if view == "item-detail":
        review = (timezone.now().date() + timedelta(days=45)).isoformat()
        return {"data": json.dumps({"review_date": review}), "content_type": "application/json"}
    if view == "api-key-list":
        expires = (timezone.now() + timedelta(days=30)).isoformat()
        payload = {"name": "matrix key", "scopes": ["read"], "expires_at": expires}
        return {"data": json.dumps(payload), "content_type": "application/json"}
    if view == "webhook-list":
        return {"data": json.dumps({"url": "https://hooks.example.org/isn"}), "content_type": "application/json"}
    if view == "item-attachments":
        return {"data": {"file": SimpleUploadedFile("matrix.txt", b"matrix attachment")}}
    return {"data": "{}", "content_type": "application/json"}


_DENIAL_REDIRECTS = ("/accounts/login/", "/accounts/two-factor/", "/admin/login/")


def outcome(response) -> str:
    status = response.status_code
    if 300 <= status < 400:
        return DENY if response["Location"].startswith(_DENIAL_REDIRECTS) else ALLOW
    if status in (401, 403, 404, 405, 429):
        return DENY
    if status < 300 or status in (400, 409):
        return ALLOW
    return f"server error {status}"


def _request(persona: Persona, method: str, endpoint: Endpoint):
    # Rolled back below, like the database: a sign-out or a renewed session key must not carry over either.
    cookies = copy.deepcopy(persona.client.cookies)
    with transaction.atomic():
        response = getattr(persona.client, method.lower())(endpoint.path, **_body(endpoint, method, persona))
        if response.streaming:
            response.body = b"".join(response.streaming_content)  # read inside the transaction it streams from
        else:
            response.body = response.content
        transaction.set_rollback(True)
    persona.client.cookies = cookies
    return response


# The admin has six pages per model, all behind the same admin_view gate and all answering any method alike: each
# is requested with GET and POST by these personas; the admin index by everyone with every method.
_ADMIN_PERSONAS = {"anonymous", "vn.officer", "vn.agency_admin", "un.regional_auditor", "disabled_user"}
_ADMIN_PERSONAS |= {"password_only_session", "vn_key_read_write", "platform_admin"}


def test_every_endpoint_method_and_persona_gets_what_the_table_says(network):
    unexpected: list[str] = []
    missing: set[str] = set()
    seen_views: set[str] = set()
    for endpoint in endpoints(network):
        seen_views.add(endpoint.view)
        personas, methods = network.personas, METHODS
        if endpoint.view.startswith("admin:") and endpoint.view != "admin:index":
            personas = [p for p in personas if p.name in _ADMIN_PERSONAS]
            methods = ("GET", "POST")
        for method in methods:
            for persona in personas:
                want = expected(endpoint, method, persona, network)
                if want is None:
                    missing.add(f"{endpoint.view} ({endpoint.route})")
                    break
                response = _request(persona, method, endpoint)
                got = outcome(response)
                body = response.body.decode(errors="replace")
                if CANARY_TITLE in body and not item_reader(persona, network):
                    unexpected.append(f"{persona.name} {method} {endpoint.path}: the item's title leaked")
                if got.startswith("server error") or (want != MAY and got != want):
                    unexpected.append(
                        f"{persona.name} {method} {endpoint.path} [{endpoint.view}]: expected {want}, got "
                        f"{response.status_code} {response.get('Location', '')} {body[:120]!r}"
                    )
    assert not missing, (
        "No expectation for these endpoints: add a Rule to RULES in tests/security/test_authorization_matrix.py "
        "saying who may use each of them:\n" + "\n".join(sorted(missing))
    )
    assert {"item-detail", "item-attachment-download", "audit-event-list", "portal:home", "admin:index"} <= seen_views
    assert not unexpected, f"{len(unexpected)} unexpected answers:\n" + "\n".join(unexpected)


def test_table_is_not_vacuous(network):
    """Each persona is allowed somewhere and refused somewhere else, so a broken sign-in cannot pass as 'denied'."""
    everything = [(e, m) for e in endpoints(network) for m in METHODS]
    for persona in network.personas:
        answers = {expected(e, m, persona, network) for e, m in everything}
        if persona.usable:
            assert ALLOW in answers, persona.name
        assert DENY in answers, persona.name


_ITEM_REQUESTS = [
    ("GET", "", "item-detail"),
    ("PATCH", "", "item-detail"),
    ("POST", "withdraw/", "item-withdraw"),
    ("GET", "access/", "item-access"),
    ("POST", "attachments/", "item-attachments"),
    ("GET", "attachments/{attachment}/", "item-attachment-download"),
]


def test_a_hidden_item_answers_exactly_like_one_that_does_not_exist(network):
    for method, suffix, view in _ITEM_REQUESTS:
        hidden = f"/api/v1/items/{network.item_id}/{suffix}".replace("{attachment}", network.attachment_id)
        absent = hidden.replace(network.item_id, "00000000-0000-4000-8000-000000000000")
        for persona in network.personas:
            if item_reader(persona, network):
                continue
            answers = []
            for path in (hidden, absent):
                response = _request(persona, method, Endpoint(view, path, path))
                answers.append((response.status_code, response.body))
            assert answers[0] == answers[1], f"{persona.name} {method} {hidden}: {answers}"


def test_nothing_leaks_through_lists_counts_and_filters(network):
    for persona in network.personas:
        if not persona.member or item_reader(persona, network):
            continue
        client = persona.client
        for path in (
            "/api/v1/items/",
            "/api/v1/items/?originator_country=VN",
            "/api/v1/items/?status=active&priority=priority",
        ):
            response = client.get(path)
            assert network.item_id not in response.content.decode(), (persona.name, path)
            assert CANARY_TITLE not in response.content.decode()
        for query in ("", "?originator_country=VN", "?category=meth_pills", "?status=withdrawn"):
            response = client.get(f"/api/v1/items/count/{query}")
            if response.status_code == 200:
                assert response.json() == {"count": 0}, (persona.name, query)
    # And those who may see it do: the test would pass vacuously otherwise.
    kh = next(p for p in network.personas if p.name == "kh.officer")
    assert kh.client.get("/api/v1/items/count/?originator_country=VN").json() == {"count": 1}
    assert network.item_id in kh.client.get("/api/v1/items/").content.decode()
