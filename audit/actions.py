"""The action registry: every audit action code ISN records, and what kind of act it is.

``record`` refuses a code that is not listed here, so a new act cannot be audited under a misspelt or unreviewed
code; the refusal fails the act like any other audit failure. The kind, not the spelling of the code, decides what
the auditors' flags count as a read (``messaging.notification.read`` marks a notification read: a write).
Codes are a contract with every auditor's saved searches and exports: never rename one, add a new one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from django.db import models


class ActionKind(models.TextChoices):
    READ = "read"  # one protected object (an item, an RFI, a subscription) or a view of one
    LIST = "list"  # many objects at once: a list, a search, a count
    EXPORT = "export"  # a file or a bulk copy leaves ISN
    WRITE = "write"  # anything that changes state, by a person or by ISN itself
    AUTH = "auth"  # sign-in, sign-out, second factor, session ends
    DENIAL = "denial"  # a refused request
    ERROR = "error"  # something went wrong that an auditor should be able to see


# What the auditors' flags count as reading (bulk reads, reads out of hours, reads across many countries).
READ_KINDS: frozenset[ActionKind] = frozenset({ActionKind.READ, ActionKind.LIST, ActionKind.EXPORT})


class UnregisteredActionError(ValueError):
    """An audit action code that is not in the registry: a programming error, and the act it records fails."""


def _admin(model: str, *verbs: str) -> dict[str, ActionKind]:
    # isn.admin_audit records admin.<app label>.<model name>.<verb> for the admins that may add, change or delete.
    return {f"admin.{model}.{verb}": ActionKind.WRITE for verb in verbs}


_W, _R, _L, _E = ActionKind.WRITE, ActionKind.READ, ActionKind.LIST, ActionKind.EXPORT

ACTIONS: Mapping[str, ActionKind] = MappingProxyType(
    {
        # isn: refusals, sign-in and the session
        "access.denied": ActionKind.DENIAL,
        "auth.login": ActionKind.AUTH,
        "auth.login_failed": ActionKind.AUTH,
        "auth.logout": ActionKind.AUTH,
        "auth.password_change": ActionKind.AUTH,
        "auth.second_factor": ActionKind.AUTH,
        "auth.second_factor_enrol": ActionKind.AUTH,
        "auth.second_factor_enrol_failed": ActionKind.AUTH,
        "auth.enrolment_code_used": ActionKind.AUTH,
        "auth.second_factor_failed": ActionKind.AUTH,
        "auth.session_expired": ActionKind.AUTH,
        # the Django admin (isn.admin_audit), for each admin that can write
        **_admin("auth.user", "add", "change", "delete"),
        **_admin("auth.group", "add", "change", "delete"),
        **_admin("otp_totp.totpdevice", "change", "delete"),
        **_admin("otp_static.staticdevice", "change", "delete"),
        **_admin("isn.workerheartbeat", "delete"),
        **_admin("agencies.country", "change"),
        **_admin("agencies.agency", "add", "change", "delete"),
        **_admin("agencies.office", "add", "change", "delete"),
        **_admin("agencies.membership", "add", "change", "delete"),
        **_admin("messaging.subscription", "add", "change", "delete"),
        # agencies
        "agencies.agency.create": _W,
        "agencies.agency.restore": _W,
        "agencies.agency.suspend": _W,
        "agencies.api_key.denied": ActionKind.DENIAL,
        "agencies.api_key.issue": _W,
        "agencies.api_key.revoke": _W,
        "agencies.country_key.retire": _W,
        "agencies.enrolment_code.issue": _W,
        "agencies.country_key.rotate": _W,
        "agencies.master_key.destroy": _W,
        "agencies.master_key.rewrap": _W,
        "agencies.master_key.rotate": _W,
        "agencies.match_key.recompute": _W,
        "agencies.match_key.retire": _W,
        "agencies.match_key.rotate": _W,
        "agencies.membership.change": _W,
        "agencies.membership.confirm": _W,
        "agencies.membership.create": _W,
        "agencies.membership.preferences": _W,
        "agencies.membership.restore": _W,
        "agencies.membership.review_lapsed": _W,
        "agencies.membership.suspend": _W,
        "agencies.membership_proposal.apply": _W,
        "agencies.membership_proposal.approve": _W,
        "agencies.membership_proposal.cancel": _W,
        "agencies.membership_proposal.decline": _W,
        "agencies.membership_proposal.propose": _W,
        "agencies.office.counterpart_link": _W,
        "agencies.office.counterpart_unlink": _W,
        "agencies.office.create": _W,
        "agencies.office.read": _R,
        "agencies.sync_key.approve": _W,
        "agencies.sync_key.declare": _W,
        "agencies.sync_key.refuse": _W,  # the audited office read of bench/urls.py, measuring what auditing costs
        "agencies.user.cut_off": _W,
        # audit: the chain and the auditors' workspace
        "audit.archive.create": _W,
        "audit.backup.create": _E,
        "audit.chain.gap": ActionKind.ERROR,
        "audit.checkpoint.create": _W,
        "audit.checkpoint.export": _E,
        "audit.checkpoints.view": _L,
        "audit.restore": _W,
        "audit.events.export": _E,
        "audit.events.search": _L,
        "audit.flags.view": _R,
        "audit.status.view": _R,
        "audit.timeline.view": _L,
        # messaging: the API (a write retried with its Idempotency-Key answers with a fresh read of what it made)
        "messaging.api.idempotent_replay": _R,
        # messaging: items and attachments
        "messaging.attachment.add": _W,
        "messaging.attachment.download": _R,
        "messaging.item.access_view": _R,
        "messaging.item.acknowledge": _W,
        "messaging.item.change": _W,
        "messaging.item.count": _L,
        "messaging.item.create": _W,
        "messaging.item.decrypt_failed": ActionKind.ERROR,
        "messaging.item.deliveries_view": _R,
        "messaging.item.expire": _W,
        "messaging.item.export": _E,
        "messaging.item.forward": _W,
        "messaging.item.list": _L,
        "messaging.changes.list": _L,
        "messaging.item.read": _R,
        "messaging.item.release_narrow": _W,
        "messaging.item.revoke_notify": _W,
        "messaging.item.route": _W,
        "messaging.item.withdraw": _W,
        "messaging.item.reshred": _W,
        "messaging.country_key.rewrap": _W,
        "messaging.flash.escalate": _W,
        # messaging: sharing
        "messaging.consent.approve": _W,
        "messaging.consent.cancel": _W,
        "messaging.consent.decline": _W,
        "messaging.consent.deliver": _W,
        "messaging.consent.escalate": _W,
        "messaging.consent.list": _L,
        "messaging.consent.read": _R,
        "messaging.consent.remind": _W,
        "messaging.consent.request": _W,
        "messaging.consent.revoke": _W,
        "messaging.forward.deliver": _W,
        "messaging.forward.read": _R,
        "messaging.forward.revoke": _W,
        # messaging: requests for information
        "messaging.rfi.close": _W,
        "messaging.rfi.create": _W,
        "messaging.rfi.decrypt_failed": ActionKind.ERROR,
        "messaging.rfi.escalate": _W,
        "messaging.rfi.list": _L,
        "messaging.rfi.read": _R,
        "messaging.rfi.remind": _W,
        "messaging.rfi.reply": _W,
        # messaging: hit/no-hit discovery (a check is a search; a hit tells its asker that an item exists)
        "messaging.match.check": _L,
        "messaging.match.hit": _R,
        "messaging.hit.list": _L,
        # messaging: delivery, notifications, subscriptions, webhooks
        "messaging.notification.dead_letter": ActionKind.ERROR,
        "messaging.notification.email": _W,
        "messaging.notification.list": _L,
        "messaging.notification.read": _W,  # marking a notification read changes it; it opens no item
        "messaging.notification.webhook": _W,
        # messaging: hits of identifier checks (issue 15)
        "messaging.hit.purge": _W,  # hits and checks past ISN_HIT_RETENTION_DAYS deleted: counts only
        "messaging.item.hits_view": _R,  # the originator's view of the hits on an item (its tracking page)
        "messaging.subscription.change": _W,
        "messaging.subscription.create": _W,
        "messaging.subscription.delete": _W,
        "messaging.subscription.list": _L,
        "messaging.subscription.read": _R,
        "messaging.task.dead_letter": ActionKind.ERROR,
        "messaging.webhook.configure": _W,
        "messaging.webhook.dead_letter_list": _L,
        "messaging.webhook.dead_letter_retry": _W,
        "messaging.webhook.delete": _W,
        "messaging.webhook.rotate_secret": _W,
        "messaging.webhook.view": _R,
        # messaging: statistics
        "messaging.statistics.export": _E,
        "messaging.statistics.view": _R,
    }
)


def kind_of(action: str) -> ActionKind:
    """The kind of a registered code; UnregisteredActionError for any other."""
    try:
        return ACTIONS[action]
    except KeyError:
        raise UnregisteredActionError(
            f"audit action {action!r} is not registered in audit/actions.py: add it with its kind"
        ) from None


def codes_of_kind(kinds: Iterable[ActionKind]) -> tuple[str, ...]:
    """Every registered code of one of ``kinds``, sorted."""
    wanted = set(kinds)
    return tuple(sorted(code for code, kind in ACTIONS.items() if kind in wanted))
