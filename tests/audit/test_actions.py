"""The action registry: every code ISN records is registered with a kind, and record() refuses any other."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import RequestFactory

from agencies.models import Agency
from audit.actions import ACTIONS, READ_KINDS, ActionKind, UnregisteredActionError, codes_of_kind, kind_of
from audit.models import AuditEvent
from audit.services import record
from isn import audit as audit_port
from isn.admin_audit import AuditedAdminMixin

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("agencies", "audit", "isn", "messaging", "bench")
CODE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
# Functions that pass an action code on to record() from a parameter or a variable: the code's values are literals
# elsewhere (arguments, assignments), which the scan below collects. A new one must be looked at and listed here.
FORWARDERS = {
    "record",  # audit.services.record calling itself inside a new transaction
    "_record_counterpart_change",  # agencies.services: one event per office of a counterpart link
    "_verified",  # isn.twofactor: auth.second_factor and auth.second_factor_enrol
    "_consent_escalate",  # messaging: messaging.consent.remind or .escalate
    "_rfi_escalate",  # messaging: messaging.rfi.remind or .escalate
    "_record_step",  # agencies.memberships: agencies.membership_proposal.propose, .approve, ...
    "_audit",  # isn.admin_audit: admin.<app>.<model>.<verb>, checked against the admin site below
}


def _literals(node: ast.expr) -> list[str] | None:
    """The string codes an expression can take, or None when it is not made of literals."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        body, orelse = _literals(node.body), _literals(node.orelse)
        return body + orelse if body is not None and orelse is not None else None
    return None


def _scan() -> tuple[dict[str, list[str]], list[str]]:
    """Codes written in the source (where each is), and calls passing a non-literal ``action`` outside FORWARDERS."""
    found: dict[str, list[str]] = {}
    unexplained: list[str] = []

    def add(code: str, where: str) -> None:
        if CODE.match(code):
            found.setdefault(code, []).append(where)

    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            functions = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
            owner = {id(child): fn.name for fn in functions for child in ast.walk(fn)}
            for node in ast.walk(tree):
                where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"
                if isinstance(node, ast.Call):
                    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                    for keyword in node.keywords:
                        if keyword.arg != "action":
                            continue
                        codes = _literals(keyword.value)
                        if codes is not None:
                            for code in codes:
                                add(code, where)
                        elif name in ("record", "_verified") and owner.get(id(node)) not in FORWARDERS:
                            unexplained.append(f"{where} {ast.unparse(node)[:100]}")
                    if name.startswith("_record") and node.args and (codes := _literals(node.args[0])):
                        for code in codes:
                            add(code, where)
                elif isinstance(node, ast.Assign):
                    # action = "...", kind, action = X, "...", GAP_ACTION = "...", ACCESS_ACTIONS = ("...", ...)
                    for target in node.targets:
                        pairs = (
                            zip(target.elts, node.value.elts, strict=False)
                            if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple)
                            else [(target, node.value)]
                        )
                        for name_node, value in pairs:
                            if not isinstance(name_node, ast.Name) or "action" not in name_node.id.lower():
                                continue
                            values = value.elts if isinstance(value, ast.Tuple | ast.List) else [value]
                            for element in values:
                                for code in _literals(element) or []:
                                    add(code, where)
    return found, unexplained


def test_every_registered_code_has_a_kind_and_a_well_formed_name():
    assert len(ACTIONS) > 100
    for code, kind in ACTIONS.items():
        assert CODE.match(code), code
        assert isinstance(kind, ActionKind), code
        assert kind in ActionKind.values, code
        assert kind_of(code) is kind


def test_every_code_written_in_the_source_is_registered():
    found, unexplained = _scan()
    assert unexplained == [], "record() called with a code the scan cannot see: list the function in FORWARDERS"
    # The scan must find what it is meant to: codes of every app, including those behind helpers and choices.
    for known in (
        "messaging.item.read",
        "agencies.office.counterpart_link",
        "auth.second_factor_enrol",
        "messaging.consent.remind",
        "messaging.rfi.escalate",
        "agencies.membership.suspend",
        "audit.chain.gap",
        "audit.events.export",
        "access.denied",
    ):
        assert known in found, known
    assert len(found) > 90
    unregistered = {code: places for code, places in found.items() if code not in ACTIONS}
    assert unregistered == {}


@pytest.mark.django_db
def test_every_admin_that_can_write_records_registered_codes():
    superuser = get_user_model()(username="root", is_superuser=True, is_staff=True, is_active=True)
    request = RequestFactory().get("/admin/")
    request.user = superuser
    checked = 0
    for model, model_admin in admin.site._registry.items():
        if not isinstance(model_admin, AuditedAdminMixin):
            continue
        allowed = {
            "add": model_admin.has_add_permission(request),
            "change": model_admin.has_change_permission(request),
            "delete": model_admin.has_delete_permission(request),
        }
        for verb, permitted in allowed.items():
            if permitted:
                code = f"admin.{model._meta.app_label}.{model._meta.model_name}.{verb}"
                assert code in ACTIONS, code
                assert ACTIONS[code] == ActionKind.WRITE
                checked += 1
    assert checked >= 15  # memberships and members' devices are no longer written through the admin


@pytest.mark.django_db
def test_recording_an_unregistered_code_raises_and_writes_nothing(vn_officer):
    before = AuditEvent.objects.count()
    with pytest.raises(UnregisteredActionError, match=r"'messaging\.item\.peek' is not registered"):
        record(action="messaging.item.peek", actor=vn_officer)
    with pytest.raises(UnregisteredActionError), transaction.atomic():
        record(action="messaging.item.peek", actor=vn_officer)
    with pytest.raises(UnregisteredActionError):
        audit_port.record(action="agencies.agency.rename", actor=vn_officer)
    assert AuditEvent.objects.count() == before


@pytest.mark.django_db
def test_an_act_recorded_under_an_unregistered_code_fails_with_it(vn_officer):
    """Fail closed, like any audit failure: the write the event was meant to record is rolled back."""
    agency = Agency.objects.get(pk=vn_officer.membership.agency_id)
    name = agency.name

    @transaction.atomic
    def rename() -> None:
        Agency.objects.filter(pk=agency.pk).update(name="Renamed")
        record(action="agencies.agency.rename", actor=vn_officer, target=agency)

    with pytest.raises(UnregisteredActionError):
        rename()
    agency.refresh_from_db()
    assert agency.name == name


def test_reads_are_decided_by_kind_not_by_spelling():
    reads = set(codes_of_kind(READ_KINDS))
    assert "messaging.notification.read" not in reads  # marking a notification read is a write
    assert kind_of("messaging.notification.read") == ActionKind.WRITE
    for code in (
        "messaging.item.read",
        "messaging.item.list",
        "messaging.attachment.download",
        "messaging.item.deliveries_view",
        "messaging.item.access_view",
        "messaging.item.count",
        "messaging.consent.list",
        "messaging.statistics.export",
        "audit.events.export",
    ):
        assert code in reads, code
    assert kind_of("messaging.statistics.export") == kind_of("audit.events.export") == ActionKind.EXPORT
    assert not reads & set(codes_of_kind([ActionKind.WRITE, ActionKind.AUTH, ActionKind.DENIAL, ActionKind.ERROR]))


def test_an_unregistered_code_has_no_kind():
    with pytest.raises(UnregisteredActionError):
        kind_of("messaging.item.read.extra")
    assert "messaging.item.peek" not in codes_of_kind(ActionKind)
