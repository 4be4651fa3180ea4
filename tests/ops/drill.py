"""The steps of the restore drill that act through ISN's services, each run in a process of its own against the
drill's scratch database: ``python -m tests.ops.drill STEP STATE_FILE``.

- ``populate STATE CHECKPOINT``: a small network (Viet Nam, Cambodia, Thailand), three items posted by the Viet Nam
  officer to all three countries, each with an attachment (ids and contents go to the state file), and a fourth
  withdrawn at once; then a checkpoint
  signed and exported to CHECKPOINT as a member would keep it (``audit_checkpoint --export``).
- ``revoke``: after the backup, the first item is withdrawn and the second narrowed (Cambodia removed).
- ``check``: after the restore, prints what each officer can open, as JSON.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "isn.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402 - after setup
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402

from agencies.models import Role  # noqa: E402
from messaging.core.sealing import ContentUnavailable  # noqa: E402
from messaging.items.attachments import attachment_add, attachment_download  # noqa: E402
from messaging.items.changes import item_change, item_withdraw  # noqa: E402
from messaging.items.lifecycle import item_create, item_read  # noqa: E402
from messaging.models import Item, ItemKey  # noqa: E402
from tests.factories import AgencyFactory, MembershipFactory, UserFactory, country  # noqa: E402

PEOPLE = {"VN": "drill.vn", "KH": "drill.kh", "TH": "drill.th"}


def _user(code: str) -> Any:
    return get_user_model().objects.get(username=PEOPLE[code])


def populate(state: dict[str, Any]) -> None:
    for code in PEOPLE:
        agency = AgencyFactory(country=country(code), name=f"Drill agency {code}", short_name=f"DR{code}")
        MembershipFactory(user=UserFactory(username=PEOPLE[code]), agency=agency, role=Role.OFFICER)
    officer = _user("VN")
    items = []
    for number in range(3):
        title, body = f"Drill item {number}", f"Lorry {number} crosses at Moc Bai on Thursday night."
        posted = item_create(
            actor=officer,
            title=title,
            body=body,
            language="en",
            category="meth_pills",
            source_reliability="B",
            info_credibility=2,
            handling_code="amber",
            review_date=timezone.now().date() + timedelta(days=90),
            countries=["VN", "KH", "TH"],
        )
        content = f"Seizure report {number}\n".encode()
        attachment = attachment_add(actor=officer, item_id=posted.item.pk, filename="report.txt", content=content)
        items.append(
            {
                "id": str(posted.item.pk),
                "title": title,
                "body": body,
                "attachment_id": str(attachment.id),
                "attachment": content.decode(),
            }
        )
    state["items"] = items
    # One item withdrawn before the backup: its ledger line names an act the backup holds, so restore skips it.
    early = item_create(
        actor=officer,
        title="Drill item withdrawn early",
        body="Withdrawn before the backup.",
        language="en",
        category="meth_pills",
        source_reliability="B",
        info_credibility=2,
        handling_code="amber",
        review_date=timezone.now().date() + timedelta(days=90),
        countries=["VN", "KH"],
    )
    item_withdraw(actor=officer, item_id=early.item.pk)
    state["early"] = str(early.item.pk)
    call_command("audit_checkpoint", "--export", sys.argv[3])


def revoke(state: dict[str, Any]) -> None:
    officer = _user("VN")
    withdrawn, narrowed, _kept = state["items"]
    item_withdraw(actor=officer, item_id=withdrawn["id"])
    item_change(actor=officer, item_id=narrowed["id"], countries=["VN", "TH"])


def check(state: dict[str, Any]) -> None:
    seen: dict[str, dict[str, Any]] = {}
    for item in state["items"]:
        seen[item["id"]] = {}
        for code in PEOPLE:
            try:
                content = item_read(actor=_user(code), item_id=item["id"])
                attachment = attachment_download(
                    actor=_user(code), item_id=item["id"], attachment_id=item["attachment_id"]
                )
            except ContentUnavailable:
                seen[item["id"]][code] = "unavailable"
            except Exception as exc:  # noqa: BLE001 - the test reads what kind of refusal it was
                seen[item["id"]][code] = type(exc).__name__
            else:
                seen[item["id"]][code] = [content.title, content.body, attachment.content.decode()]
    state["seen"] = seen
    state["keys"] = {
        item["id"]: sorted(ItemKey.objects.filter(item_id=item["id"]).values_list("country_id", flat=True))
        for item in state["items"]
    }
    state["status"] = {item["id"]: Item.objects.get(pk=item["id"]).status for item in state["items"]}


if __name__ == "__main__":
    step, path = sys.argv[1], Path(sys.argv[2])
    state = json.loads(path.read_text()) if path.exists() else {}
    {"populate": populate, "revoke": revoke, "check": check}[step](state)
    path.write_text(json.dumps(state))
