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

import pytest
from django.contrib.auth import get_user_model
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


def delivery_admin(p: Persona, n: Network) -> bool:
    """An agency admin in person, or an agency system whose key has the admin scope."""
    return agency_admin(p, n) or (p.key and "admin" in p.scopes)


def rfi_party(p: Persona, n: Network) -> bool:
    """A content member of the asking (Viet Nam's) or the asked (Cambodia's) agency of the matrix's RFI."""
    return p.content and p.agency_id in (n.originator_agency_id, n.agency_id)


def rfi_asker(p: Persona, n: Network) -> bool:
    return p.content and p.agency_id == n.originator_agency_id


def officer_person(p: Persona, n: Network) -> bool:
    """A content member in person (the portal's sharing pages take no API key)."""
    return p.content and p.session


def item_reader_person(p: Persona, n: Network) -> bool:
    return item_reader(p, n) and p.session


def party_person(p: Persona, n: Network) -> bool:
    """In person, of the Viet Nam (originating, asking) or Cambodian (asked, consent-requesting) agency of the matrix's
    RFI and consent request."""
    return rfi_party(p, n) and p.session


def consent_decider_person(p: Persona, n: Network) -> bool:
    """A supervisor of the originating agency, in person: decides on the matrix's consent request."""
    return party_person(p, n) and p.agency_id == n.originator_agency_id and p.role == "supervisor"


def consent_requester_person(p: Persona, n: Network) -> bool:
    return party_person(p, n) and p.agency_id == n.agency_id


def rfi_asker_person(p: Persona, n: Network) -> bool:
    return rfi_asker(p, n) and p.session


def consent_party(p: Persona, n: Network) -> bool:
    """A content member of the item's originating (Viet Nam's) or the asking (Cambodia's) agency of the matrix's
    consent request."""
    return p.content and p.agency_id in (n.originator_agency_id, n.agency_id)


def consent_decider(p: Persona, n: Network) -> bool:
    """A supervisor of the originating agency, in person or not (national focal points decide too; none here)."""
    return consent_party(p, n) and p.agency_id == n.originator_agency_id and p.role == "supervisor"


def consent_requester(p: Persona, n: Network) -> bool:
    return consent_party(p, n) and p.agency_id == n.agency_id


def originator_person(p: Persona, n: Network) -> bool:
    return originator(p, n) and p.session


def statistician_person(p: Persona, n: Network) -> bool:
    """Supervisors and national focal points (a state's: their country; UNODC's: all), and the regional auditor."""
    if not p.session or not p.member:
        return False
    return p.role in ("supervisor", "national_focal_point") or (p.role == "regional_auditor" and p.country == "UN")


def sync_declaration_decider(p: Persona, n: Network) -> bool:
    """A national auditor of the key's country (Viet Nam), in person."""
    return p.session and p.role == "national_auditor" and p.country == "VN"


def sync_declaration_viewer(p: Persona, n: Network) -> bool:
    """In person: the admins of the key's (Viet Nam's) agency, Viet Nam's national auditors, the regional auditor."""
    if not p.session:
        return False
    key_admin = p.role == "agency_admin" and p.agency_id == n.originator_agency_id
    return key_admin or sync_declaration_decider(p, n) or p.role == "regional_auditor"


def proposal_participant(p: Persona, n: Network) -> bool:
    """In person: an agency admin (national focal points too; none here) or the platform's operator (first admins)."""
    return agency_admin(p, n) or platform_admin(p, n)


def admin_or_auditor_person(p: Persona, n: Network) -> bool:
    return p.session and p.member and p.role in ("agency_admin", "national_auditor", "regional_auditor")


def reviewer_person(p: Persona, n: Network) -> bool:
    """In person: an agency admin (reviews their agency's members) or a national focal point (their country's
    agency admins; none here)."""
    return p.session and p.member and p.role in ("agency_admin", "national_focal_point")


def platform_admin(p: Persona, n: Network) -> bool:
    return p.name == "platform_admin"


def not_a_dead_key(p: Persona, n: Network) -> bool:
    """Anyone but a caller presenting an expired or revoked API key (refused before any view looks at the request)."""
    return p.kind != "key" or p.key


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
    admin_scope: bool = False  # an agency's delivery settings: a key's admin scope allows every method


PUBLIC = ("GET", "POST", "PUT", "PATCH", "DELETE")

RULES: list[Rule] = [
    # Public: sign-in and its second factor, sign-out, the health probe, the admin's redirect to our sign-in.
    Rule("login", PUBLIC, maybe=everyone, scoped=False),
    Rule("logout", PUBLIC, maybe=everyone, scoped=False),
    Rule("two_factor", PUBLIC, maybe=everyone, scoped=False),
    Rule("two_factor_enrol", PUBLIC, maybe=everyone, scoped=False),
    Rule("healthz", PUBLIC, maybe=everyone, scoped=False),
    # Prometheus: only its bearer token (tests/isn/test_metrics.py); none is configured here, so it is off (404).
    Rule("metrics", PUBLIC, scoped=False),
    Rule("<unnamed>/admin/login/", PUBLIC, maybe=everyone, scoped=False),
    # The portal.
    Rule("portal:home", ("GET",), allow=verified_person, scoped=False),
    Rule("portal:directory", ("GET",), allow=member_person, scoped=False),
    # The language picker: before sign-in too (the sign-in page has it); a member's choice is kept on them.
    Rule("portal:language", PUBLIC, maybe=everyone, scoped=False),
    Rule("portal:account", ("GET", "POST"), allow=member_person, scoped=False),
    Rule("portal:access_review", ("GET", "POST"), allow=reviewer_person, scoped=False),
    Rule("portal:notifications", ("GET",), allow=member_person, scoped=False),
    Rule("portal:notification_read", ("POST",), maybe=member_person, scoped=False),  # one's own only (none here)
    Rule("portal:statistics", ("GET",), allow=statistician_person, scoped=False),
    # Items in the portal (messaging.portal.views): officers in person, the matrix's item by its readers (everyone else
    # 404), its release, reads and withdrawal by the originating agency. It is not routed, so no agency may
    # acknowledge it (403): MAY.
    Rule("portal:inbox", ("GET",), allow=officer_person, scoped=False),
    Rule("portal:item_new", ("GET", "POST"), allow=officer_person, scoped=False),
    Rule("portal:item", ("GET",), allow=item_reader_person, scoped=False),
    Rule("portal:item_attachment", ("GET",), allow=item_reader_person, scoped=False),
    Rule("portal:item_stix", ("GET",), allow=item_reader_person, scoped=False),
    Rule("portal:item_acknowledge", ("POST",), maybe=item_reader_person, scoped=False),
    Rule("portal:item_attach", ("POST",), allow=originator_person, scoped=False),
    Rule("portal:item_tracking", ("GET",), allow=originator_person, scoped=False),
    Rule("portal:item_narrow", ("GET", "POST"), allow=originator_person, scoped=False),
    Rule("portal:item_withdraw", ("GET", "POST"), allow=originator_person, scoped=False),
    Rule("password_change", ("GET", "POST", "PUT"), allow=verified_person, scoped=False),
    Rule("password_change_done", ("GET",), allow=verified_person, scoped=False),
    Rule("audit:*", ("GET",), allow=auditor_person, scoped=False),
    # The Django admin: platform operators only (what they get inside depends on the object: MAY).
    Rule("admin:logout", PUBLIC, maybe=everyone, scoped=False),
    Rule("admin:index", ("GET",), allow=platform_admin, scoped=False),
    # Django's admin views answer any method for an operator; for anyone else its one gate refuses them all.
    Rule("admin:index", PUBLIC, maybe=platform_admin, scoped=False),
    Rule("admin:*", PUBLIC, maybe=platform_admin, scoped=False),
    # API documentation: anyone, signed in or not; only a key that is no longer valid is refused (401).
    Rule("schema", ("GET",), allow=not_a_dead_key, scoped=False),
    Rule("api-docs", ("GET",), allow=not_a_dead_key, scoped=False),
    # Any other path under /api/: 404 (or a refusal) for everyone, whatever the method.
    Rule("api-not-found", PUBLIC, scoped=False),
    # Directory: every member.
    Rule("agency-*", ("GET",), allow=member),
    Rule("office-*", ("GET",), allow=member),
    # API keys: agency admins, in person, of their own agency's keys; auditors, in person, list the audit keys of their
    # reach (and issue only audit keys: the matrix asks for a read key, which they are refused).
    Rule("api-key-list", ("GET",), allow=admin_or_auditor_person),
    Rule("api-key-list", ("POST",), allow=agency_admin),
    # Enrolment codes: agency admins, in person (the matrix's empty request is refused as invalid: allowed through).
    Rule("enrolment-code-list", ("POST",), allow=agency_admin),
    Rule("access-review-list", ("GET",), allow=reviewer_person),
    Rule("access-review-confirm", ("POST",), allow=reviewer_person),
    Rule("api-key-revoke", ("POST",), allow=originator_admin),
    # Sync keys: the key's agency admins declare; national auditors of its country approve or refuse (the regional
    # auditor sees all, decides none); the matrix's declaration is Viet Nam's.
    Rule("api-key-declare-sync", ("POST",), allow=originator_admin),
    Rule("sync-declaration-list", ("GET",), allow=admin_or_auditor_person),
    Rule("sync-declaration-detail", ("GET",), allow=sync_declaration_viewer),
    Rule("sync-declaration-approve", ("POST",), allow=sync_declaration_decider),
    Rule("sync-declaration-refuse", ("POST",), allow=sync_declaration_decider),
    # Memberships: agency admins, in person, of their own agency (the matrix's membership is Viet Nam's officer's;
    # the empty change changes nothing). Never the platform's operator, never a key.
    Rule("membership-list", ("GET", "POST"), allow=agency_admin),
    Rule("membership-detail", ("GET", "PATCH"), allow=originator_admin),
    # Two-person proposals: agency admins and the operator propose and list (what is theirs to see); the matrix's
    # proposal (Viet Nam's admin resets Viet Nam's officer's second factor) is seen by Viet Nam's admin, cancelled by
    # them, and approved or declined by nobody here: its proposer may not, and Viet Nam has no other admin or focal
    # point among the personas.
    Rule("membership-proposal-list", ("GET", "POST"), allow=proposal_participant),
    Rule("membership-proposal-detail", ("GET",), allow=originator_admin),
    Rule("membership-proposal-cancel", ("POST",), allow=originator_admin),
    Rule("membership-proposal-approve", ("POST",)),
    Rule("membership-proposal-decline", ("POST",)),
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
    # Everyone's own change feed (an auditor's is empty: it names only what its caller may read).
    Rule("change-list", ("GET",), allow=member),
    # TAXII 2.1: the server and its collections to any member; objects and manifests to those who read content (an
    # auditor's are the REST API's 404). The object id filled in names no object: 404 to everyone.
    Rule("taxii-discovery", ("GET",), allow=member),
    Rule("taxii-api-root", ("GET",), allow=member),
    Rule("taxii-collections", ("GET",), allow=member),
    Rule("taxii-collection", ("GET",), allow=member),
    Rule("taxii-objects", ("GET",), allow=content),
    Rule("taxii-manifest", ("GET",), allow=content),
    Rule("taxii-object", ("GET",)),
    Rule("taxii-versions", ("GET",)),
    # An agency's webhook: its admins, in person, and its systems by a key with the admin scope. The detail routes
    # name no webhook of the matrix (404).
    Rule("webhook-list", ("GET", "POST"), allow=delivery_admin, admin_scope=True),
    Rule("webhook-detail", ("GET", "DELETE"), maybe=delivery_admin, admin_scope=True),
    Rule("webhook-rotate-secret", ("POST",), maybe=delivery_admin, admin_scope=True),
    Rule("webhook-dead-letters", ("GET",), allow=delivery_admin, admin_scope=True),
    Rule("webhook-dead-letter-retry", ("POST",), maybe=delivery_admin, admin_scope=True),
    # Subscriptions: everyone who receives items manages their own (an admin or an admin key, the agency's); an
    # auditor's list is empty and posting is refused. The detail route names no subscription of the matrix (404 for
    # everyone).
    Rule("subscription-list", ("GET",), allow=member, admin_scope=True),
    Rule("subscription-list", ("POST",), allow=content, admin_scope=True),
    Rule("subscription-detail", ("GET", "PUT", "PATCH", "DELETE"), maybe=content, admin_scope=True),
    # Requests for information: content members ask and list; a request is seen and replied to by its two agencies
    # only (everyone else gets 404), and closed by the asking one.
    Rule("rfi-list", ("GET", "POST"), allow=content),
    Rule("rfi-detail", ("GET",), allow=rfi_party),
    Rule("rfi-replies", ("POST",), allow=rfi_party),
    Rule("rfi-close", ("POST",), allow=rfi_asker),
    # Hit/no-hit discovery: content members check identifiers (a check writes: a key needs the write scope) and list
    # their agency's hits, both ways.
    Rule("match-list", ("POST",), allow=content),
    Rule("hit-list", ("GET",), allow=content),
    # The portal's sharing pages (messaging.portal.sharing_views): officers in person. The matrix's item is forwarded
    # and shared by its readers; its consent request (Cambodia asks to share with Thailand) and its RFI are seen
    # by their two agencies only (everyone else 404); a supervisor of the originating agency decides,
    # the asking agency cancels.
    Rule("portal:item_forward", ("GET", "POST"), allow=item_reader_person, scoped=False),
    Rule("portal:item_consent", ("GET", "POST"), allow=item_reader_person, scoped=False),
    Rule("portal:consents", ("GET",), allow=officer_person, scoped=False),
    Rule("portal:consent", ("GET",), allow=party_person, scoped=False),
    Rule("portal:consent_approve", ("POST",), allow=consent_decider_person, scoped=False),
    Rule("portal:consent_decline", ("POST",), allow=consent_decider_person, scoped=False),
    Rule("portal:consent_cancel", ("POST",), allow=consent_requester_person, scoped=False),
    Rule("portal:rfis", ("GET",), allow=officer_person, scoped=False),
    Rule("portal:rfi_new", ("GET", "POST"), allow=officer_person, scoped=False),
    Rule("portal:rfi", ("GET",), allow=party_person, scoped=False),
    Rule("portal:rfi_reply", ("POST",), allow=party_person, scoped=False),
    Rule("portal:rfi_close", ("POST",), allow=rfi_asker_person, scoped=False),
    # Checking identifiers (hit/no-hit discovery): officers in person (the matrix's empty post is refused as invalid,
    # allowed through); the hits on an item are on its tracking page (portal:item_tracking).
    Rule("portal:check", ("GET", "POST"), allow=officer_person, scoped=False),
    # Forwarding inside one's own country: the item's readers forward it and list their forwards. Consent requests
    # (the third-party rule): content members ask and list; the matrix's request is seen by its two agencies only
    # (everyone else 404), decided by a supervisor of the originating agency, and cancelled by the asking agency.
    Rule("item-forward", ("POST",), allow=item_reader),
    Rule("item-forwards", ("GET",), allow=item_reader),
    Rule("consent-list", ("GET", "POST"), allow=content),
    Rule("consent-detail", ("GET",), allow=consent_party),
    Rule("consent-approve", ("POST",), allow=consent_decider),
    Rule("consent-decline", ("POST",), allow=consent_decider),
    Rule("consent-cancel", ("POST",), allow=consent_requester),
    # The auditors' workspace API: auditors, in person or by an audit key.
    Rule("audit-*", ("GET",), allow=auditor),
]

RFI_CANARY = "Matrix RFI canary W8PD"


@pytest.fixture(autouse=True)
def _rfi(network: Network) -> None:
    """A request for information from the matrix's Viet Nam agency to its Cambodian one, for the RFI routes."""
    from messaging.rfis.services import rfi_create

    asker = get_user_model().objects.get(username="vn.officer")
    rfi = rfi_create(
        actor=asker, target_agency=network.agency_id, subject=RFI_CANARY, question=RFI_CANARY, priority="routine"
    ).rfi
    network.extra["rfi_id"] = str(rfi.pk)


@pytest.fixture(autouse=True)
def _consent(network: Network) -> None:
    """Cambodia's officer asks consent to share the matrix's item with Thailand, for the consent pages."""
    from messaging.sharing.consents import consent_request_create

    asker = get_user_model().objects.get(username="kh.officer")
    consent = consent_request_create(
        actor=asker, item_id=network.item_id, target_country="TH", justification=RFI_CANARY
    ).consent
    network.extra["consent_id"] = str(consent.pk)


@pytest.fixture(autouse=True)
def _sync_declaration(network: Network) -> None:
    """Viet Nam's admin declares the matrix's read key a sync key, awaiting a national auditor."""
    from agencies.models import ApiKey
    from agencies.sync_keys import sync_key_declare

    admin = get_user_model().objects.get(username="vn.agency_admin")
    declaration = sync_key_declare(actor=admin, key=ApiKey.objects.get(pk=network.api_key_id), daily_reads=500)
    network.extra["sync_declaration_id"] = str(declaration.pk)


@pytest.fixture(autouse=True)
def _membership_proposal(network: Network) -> None:
    """Viet Nam's admin proposes to reset Viet Nam's officer's second factor, awaiting a second person."""
    from agencies.memberships import second_factor_reset_propose
    from agencies.models import Membership

    admin = get_user_model().objects.get(username="vn.agency_admin")
    proposal = second_factor_reset_propose(actor=admin, agency=admin.membership.agency, username="vn.officer")
    network.extra["membership_proposal_id"] = str(proposal.pk)
    network.extra["membership_id"] = str(Membership.objects.get(user__username="vn.officer").pk)


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
        "rfi": network.extra.get("rfi_id", network.item_id),
        "consent": network.extra.get("consent_id", network.item_id),
        "sync": network.extra.get("sync_declaration_id", network.item_id),
        "membership": network.extra.get("membership_id", network.item_id),
    }
    if view.startswith("membership-proposal"):
        basename = "membership-proposal"
        by_basename[basename] = network.extra.get("membership_proposal_id", network.item_id)

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
            "rfi_id": network.extra.get("rfi_id", network.item_id),
            "consent_id": network.extra.get("consent_id", network.item_id),
            "collection_id": "c0b5f7a2-3c0e-4a53-9d3e-6a1f0f6f1d01",  # every caller's TAXII inbox
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
        allowed = not rule.scoped or persona.may(method, admin_scope=rule.admin_scope)
        if rule.allow is not None and rule.allow(persona, network):
            return ALLOW if allowed else DENY
        if rule.maybe is not None and rule.maybe(persona, network):
            return MAY if allowed else DENY
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
                    "discoverable": False,
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
    if view == "rfi-list":
        from agencies.models import Agency

        target = Agency.objects.get(short_name="VN-M" if persona.country == "KH" else "KH-M")
        payload = {"target_agency": target.pk, "subject": "Matrix question", "question": "Who?"}
        return {"data": json.dumps(payload), "content_type": "application/json"}
    if view == "api-key-declare-sync":
        return {"data": json.dumps({"daily_reads": 2000}), "content_type": "application/json"}
    if view == "sync-declaration-refuse":
        return {"data": json.dumps({"reason": "Matrix refusal."}), "content_type": "application/json"}
    if view == "match-list":
        identifiers = [{"type": "vehicle", "plate": "51C-123.45", "country": "VN"}]
        return {"data": json.dumps({"identifiers": identifiers}), "content_type": "application/json"}
    if view == "rfi-replies":
        return {"data": json.dumps({"body": "Matrix reply."}), "content_type": "application/json"}
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
# Portal pages take GET and POST only, through one gate (agencies.portal.portal_view) that refuses every other method
# before looking at the caller: every persona tries GET and POST, these personas the other methods.
_PORTAL_SPARE_METHODS = ("PATCH", "PUT", "DELETE")


def _personas_for(endpoint: Endpoint, method: str, personas: list[Persona]) -> list[Persona]:
    admin_page = endpoint.view.startswith("admin:") and endpoint.view != "admin:index"
    portal_page = endpoint.view.startswith(("portal:", "audit:")) and method in _PORTAL_SPARE_METHODS
    if admin_page or portal_page:
        return [p for p in personas if p.name in _ADMIN_PERSONAS]
    return personas


def test_every_endpoint_method_and_persona_gets_what_the_table_says(network):
    unexpected: list[str] = []
    missing: set[str] = set()
    seen_views: set[str] = set()
    for endpoint in endpoints(network):
        seen_views.add(endpoint.view)
        methods = METHODS
        if endpoint.view.startswith("admin:") and endpoint.view != "admin:index":
            methods = ("GET", "POST")
        for method in methods:
            for persona in _personas_for(endpoint, method, network.personas):
                want = expected(endpoint, method, persona, network)
                if want is None:
                    missing.add(f"{endpoint.view} ({endpoint.route})")
                    break
                response = _request(persona, method, endpoint)
                got = outcome(response)
                body = response.body.decode(errors="replace")
                if CANARY_TITLE in body and not item_reader(persona, network):
                    unexpected.append(f"{persona.name} {method} {endpoint.path}: the item's title leaked")
                if RFI_CANARY in body and not rfi_party(persona, network):
                    unexpected.append(f"{persona.name} {method} {endpoint.path}: the RFI's subject leaked")
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
    ("POST", "forward/", "item-forward"),
    ("GET", "forwards/", "item-forwards"),
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
