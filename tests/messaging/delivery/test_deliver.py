"""The one ``deliver``: a copy is given (or given back) only to a recipient the item reaches now, checked under a lock
that an originator's narrowing waits for and is waited for; a message that arrives after a narrowing, or again, gives
back nothing the narrowing took away."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from messaging.delivery.deliveries import Recipient, deliver
from messaging.items.changes import item_change
from messaging.models import DeliveryReason, OutboxKind
from messaging.models.delivery import Delivery
from tests.messaging.network import build_network, post_item, run_outbox


def _live(item, agency):
    return Delivery.objects.filter(item=item, agency=agency, revoked_at__isnull=True).exists()


def _desk_of(agency):
    return Recipient(agency.pk, None, None, DeliveryReason.DUTY_DESK)


@pytest.mark.django_db
def test_a_message_after_a_narrowing_gives_nothing_back():
    net = build_network()
    item = post_item(net.user("vn.officer"))
    run_outbox(OutboxKind.ITEM_ROUTE)
    assert _live(item, net.la)
    item_change(actor=net.user("vn.officer"), item_id=item.pk, countries=["VN", "KH", "TH"])
    run_outbox(OutboxKind.ITEM_REVOKE)
    assert not _live(item, net.la)
    with transaction.atomic():
        assert deliver(item, [_desk_of(net.la)]) == []
    assert not _live(item, net.la)
    assert Delivery.objects.filter(item=item, agency=net.la).count() == 1  # the revoked row, still revoked


@pytest.mark.django_db
def test_a_recipient_outside_the_release_gets_no_new_row():
    net = build_network()
    item = post_item(net.user("vn.officer"), countries=["VN", "KH"])
    with transaction.atomic():
        assert deliver(item, [_desk_of(net.th), _desk_of(net.kh)]) == [_desk_of(net.kh)]
    assert not Delivery.objects.filter(item=item, agency=net.th).exists()


@pytest.mark.django_db
def test_a_revoked_copy_comes_back_for_a_recipient_the_item_reaches_again():
    net = build_network()
    item = post_item(net.user("vn.officer"))
    run_outbox(OutboxKind.ITEM_ROUTE)
    Delivery.objects.filter(item=item, agency=net.kh).update(revoked_at=item.created_at)
    recipient = Recipient(net.kh.pk, net.bavet.pk, None, DeliveryReason.FORWARDED)
    with transaction.atomic():
        assert deliver(item, [recipient]) == [recipient]
    revived = Delivery.objects.get(item=item, agency=net.kh, office=net.bavet)
    assert revived.revoked_at is None
    assert revived.reason == DeliveryReason.FORWARDED


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_deliver_racing_a_narrowing_waits_for_it_and_then_gives_nothing():
    """The narrowing holds the item while it commits; a delivery for the country it removes, started meanwhile, must
    wait and then see the narrowed release. Without the lock it would read the release as it was and deliver."""
    net = build_network()
    item = post_item(net.user("vn.officer"))
    narrowed = threading.Event()
    delivered: list[object] = []
    errors: list[BaseException] = []

    def narrow_and_hold() -> None:
        try:
            with transaction.atomic():
                item_change(actor=net.user("vn.officer"), item_id=item.pk, countries=["VN", "KH", "TH"])
                narrowed.set()
                time.sleep(1.5)  # the delivery below starts while this transaction is still open
        except BaseException as error:  # noqa: BLE001 - reported to the test's thread
            errors.append(error)
            narrowed.set()
        finally:
            connection.close()

    def deliver_to_laos() -> None:
        try:
            with transaction.atomic():
                delivered.extend(deliver(item, [_desk_of(net.la)]))
        except BaseException as error:  # noqa: BLE001 - reported to the test's thread
            errors.append(error)
        finally:
            connection.close()

    narrowing = threading.Thread(target=narrow_and_hold)
    narrowing.start()
    assert narrowed.wait(30)
    started = time.monotonic()
    delivering = threading.Thread(target=deliver_to_laos)
    delivering.start()
    delivering.join(30)
    narrowing.join(30)
    assert errors == []
    assert time.monotonic() - started > 0.5, "deliver did not wait for the narrowing's transaction"
    assert delivered == []
    assert not Delivery.objects.filter(item=item, agency=net.la).exists()
