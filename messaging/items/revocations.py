"""After a restore: the shreds of the revocation ledger (``audit.ledger``) applied again, each in its own
transaction, before ISN serves anything (``manage.py restore``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from messaging.items.changes import item_end_again, item_narrowing_again
from messaging.items.keys import country_key_retire_again
from messaging.models import ItemStatus

_ENDS = {"messaging.item.withdraw": ItemStatus.WITHDRAWN, "messaging.item.expire": ItemStatus.EXPIRED}


def ledger_line_apply(line: Mapping[str, Any]) -> bool:
    """Apply one ledger line to the restored database; True when it took something away that was still there."""
    action = line["action"]
    details = line.get("details") or {}
    event_id = int(line["event_id"])
    if action in _ENDS:
        return item_end_again(item_id=line["target_id"], status=_ENDS[action], ledger_event_id=event_id)
    if action == "messaging.item.release_narrow":
        return item_narrowing_again(
            item_id=line["target_id"],
            ledger_event_id=event_id,
            removed_countries=[*details.get("removed_countries", []), *details.get("consented_countries_cut", [])],
            removed_agencies=details.get("removed_agencies", []),
            restricted_to_agencies=details.get("restricted_to_agencies", []),
            removed_named_users=details.get("removed_named_users", []),
        )
    if action == "agencies.country_key.retire":
        return country_key_retire_again(country_code=line["target_country"], version=int(details["version"]))
    return False
