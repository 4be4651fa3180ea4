"""The match key: blind tokens of matchable values, one versioned network key held wrapped by the master key."""

from __future__ import annotations

import threading
import time

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from agencies.keyring import (
    forget_cached_keys,
    match_key,
    match_key_retire,
    match_key_rotate,
    match_key_version,
    match_key_versions,
    match_token,
    match_token_table_register,
    match_token_tables,
    match_tokens,
    match_tokens_recompute,
    primary_key,
)
from agencies.models import MatchKey, MatchKeyStatus
from agencies.tasks import recompute_match_tokens
from audit.models import AuditEvent
from isn.crypto import DecryptionError, associated_data, unwrap_key
from isn.errors import Conflict

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache():
    forget_cached_keys()
    yield
    forget_cached_keys()


def _status(version: int) -> str:
    return MatchKey.objects.get(version=version).status


def test_first_use_makes_version_one_stored_only_wrapped(settings):
    version, key = match_key()
    stored = MatchKey.objects.get()
    assert (version, stored.version, stored.status) == (1, 1, MatchKeyStatus.PRIMARY)
    assert len(key) == 32
    assert key not in bytes(stored.wrapped_key)
    assert match_key() == (1, key)
    aad = associated_data("match-key", 1)
    assert unwrap_key(settings.ISN_MASTER_KEY, bytes(stored.wrapped_key), aad=aad) == key
    for wrong in (associated_data("match-key", 2), associated_data("country-key", "KH", 1)):
        with pytest.raises(DecryptionError):
            unwrap_key(settings.ISN_MASTER_KEY, bytes(stored.wrapped_key), aad=wrong)


def test_tokens_are_deterministic_binary_and_bound_to_their_kind():
    token = match_token("phone", "+84912345678")
    assert isinstance(token, bytes)
    assert len(token) == 32
    forget_cached_keys()
    assert match_token("phone", "+84912345678") == token
    assert match_token("email", "+84912345678") != token
    assert match_token("phone", "+84912345679") != token
    assert match_tokens([("phone", "+84912345678"), ("email", "x@example.org")]) == (
        1,
        [token, match_token("email", "x@example.org")],
    )


def test_kinds_are_a_vocabulary_and_empty_values_do_not_match():
    for kind in ("a|b", "", "Phone", "phone number"):
        with pytest.raises(ValueError, match="not a kind"):
            match_token(kind, "x")
    with pytest.raises(ValueError, match="empty value"):
        match_token("phone", "")


def test_the_key_is_not_a_country_key():
    version, kek = primary_key("KH")
    assert match_key() != (version, kek)


def test_wrapped_country_key_put_in_its_place_does_not_open():
    primary_key("KH")
    match_key()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE agencies_matchkey SET wrapped_key = (SELECT wrapped_key FROM agencies_countrykey "
            "WHERE country_id = 'KH' AND version = 1) WHERE version = 1"
        )
    forget_cached_keys()
    with pytest.raises(DecryptionError):
        match_key()
    with pytest.raises(DecryptionError):
        match_token("phone", "+84912345678")


def test_wrong_master_key_fails_closed(settings):
    match_key()
    forget_cached_keys()
    settings.ISN_MASTER_KEY = b"\x00" * 32
    with pytest.raises(DecryptionError):
        match_token("phone", "+84912345678")


def test_rotation_changes_tokens_keeps_the_previous_version_and_is_recorded(vn_admin):
    before = match_token("phone", "+84912345678")
    new = match_key_rotate(actor=vn_admin)
    assert (new.version, _status(1), _status(2)) == (2, MatchKeyStatus.PREVIOUS, MatchKeyStatus.PRIMARY)
    assert match_key()[0] == 2
    assert match_token("phone", "+84912345678") != before
    assert match_token("phone", "+84912345678", version=1) == before
    forget_cached_keys()
    assert match_token("phone", "+84912345678", version=1) == before
    assert match_key_versions() == [2, 1]
    event = AuditEvent.objects.get(action="agencies.match_key.rotate")
    assert (event.actor_label, event.target_country, event.details) == (
        "vn.admin",
        "",
        {"old_version": 1, "new_version": 2},
    )


def test_rotation_waits_for_the_previous_one():
    match_key_rotate(actor=None)
    with pytest.raises(Conflict):
        match_key_rotate(actor=None)


def test_retired_version_is_destroyed_and_refuses():
    match_key()
    match_key_rotate(actor=None)
    match_token("phone", "+84912345678", version=1)  # cached here, forgotten by the retirement
    match_key_retire(actor=None, version=1)
    stored = MatchKey.objects.get(version=1)
    assert (stored.status, bytes(stored.wrapped_key)) == (MatchKeyStatus.RETIRED, b"")
    with pytest.raises(DecryptionError):
        match_token("phone", "+84912345678", version=1)
    with pytest.raises(DecryptionError):
        match_key_version(3)
    assert match_key_versions() == [2]
    assert AuditEvent.objects.filter(action="agencies.match_key.retire").count() == 1


def test_primary_cannot_be_retired():
    match_key()
    with pytest.raises(Conflict):
        match_key_retire(actor=None, version=1)


def test_recompute_walks_the_registered_tables_and_retires_when_none_is_left(monkeypatch):
    import agencies.keyring as keyring

    monkeypatch.setattr(keyring, "_recompute_steps", {})
    # A stand-in table of tokens (the entities' tables register theirs): v1 tokens left, recomputed two at a time.
    table = {"left": 3}

    def step(*, old_version, new_version, deadline):
        done = min(2, table["left"])
        table["left"] -= done
        return done, table["left"]

    match_token_table_register("test.tokens", step)
    assert match_token_tables() == ("test.tokens",)
    match_key_rotate(actor=None)
    first = match_tokens_recompute(actor=None, old_version=1)
    assert (first.recomputed, first.remaining, first.retired, _status(1)) == (2, 1, False, MatchKeyStatus.PREVIOUS)
    second = match_tokens_recompute(actor=None, old_version=1)
    assert (second.recomputed, second.remaining, second.retired, _status(1)) == (1, 0, True, MatchKeyStatus.RETIRED)
    assert match_tokens_recompute(actor=None, old_version=1).retired
    events = AuditEvent.objects.filter(action="agencies.match_key.recompute").order_by("pk")
    assert [event.details["tables"] for event in events] == [
        {"test.tokens": {"recomputed": 2, "remaining": 1}},
        {"test.tokens": {"recomputed": 1, "remaining": 0}},
    ]
    with pytest.raises(Conflict):
        match_tokens_recompute(actor=None, old_version=2)


def test_command_rotates_queues_the_task_which_retires(capsys):
    before = match_token("email", "x@example.org")
    call_command("rotate_match_key")
    assert "v2 is now primary" in capsys.readouterr().out
    assert _status(1) == MatchKeyStatus.PREVIOUS
    assert match_token("email", "x@example.org", version=1) == before  # checks still find v1 tokens meanwhile
    recompute_match_tokens.apply(args=(1,))  # what the worker runs
    assert _status(1) == MatchKeyStatus.RETIRED
    assert AuditEvent.objects.filter(action="agencies.match_key.recompute", details__retired=True).count() == 1


def test_command_wait_resume_and_refusals(capsys):
    with pytest.raises(CommandError, match="No rotation"):
        call_command("rotate_match_key", "--resume")
    call_command("rotate_match_key", "--wait")
    assert "v1 retired" in capsys.readouterr().out
    assert [_status(1), _status(2)] == [MatchKeyStatus.RETIRED, MatchKeyStatus.PRIMARY]
    match_key_rotate(actor=None)
    with pytest.raises(CommandError, match="still under way"):
        call_command("rotate_match_key")
    call_command("rotate_match_key", "--resume", "--wait")
    assert _status(2) == MatchKeyStatus.RETIRED
    assert match_key_versions() == [3]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_holding_the_key_needs_a_transaction():
    with pytest.raises(RuntimeError):
        match_key(hold=True)
    with transaction.atomic():
        assert match_tokens([("phone", "+84912345678")], hold=True)[0] == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_first_key_is_made_once_when_processes_race():
    barrier = threading.Barrier(4)
    keys: list[tuple[int, bytes]] = []

    def first_use() -> None:
        try:
            barrier.wait(10)
            keys.append(match_key())
        finally:
            connection.close()

    threads = [threading.Thread(target=first_use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(keys) == 4
    assert len(set(keys)) == 1
    assert MatchKey.objects.count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_rotation_waits_for_tokens_being_written_with_the_old_version():
    """Tokens written with v1 but not yet committed must not be missed by the recompute that retires v1."""
    match_key()
    held, release, rotated = threading.Event(), threading.Event(), threading.Event()

    def writing() -> None:
        try:
            with transaction.atomic():
                assert match_tokens([("phone", "+84912345678")], hold=True)[0] == 1
                held.set()
                release.wait(10)
        finally:
            connection.close()

    def rotating() -> None:
        try:
            match_key_rotate(actor=None)
            rotated.set()
        finally:
            connection.close()

    writer = threading.Thread(target=writing)
    writer.start()
    assert held.wait(10)
    rotator = threading.Thread(target=rotating)
    rotator.start()
    time.sleep(0.5)
    assert not rotated.is_set()  # held off by the tokens still being written with v1
    release.set()
    writer.join(10)
    rotator.join(10)
    assert rotated.is_set()
    with transaction.atomic():
        assert match_key(hold=True)[0] == 2
