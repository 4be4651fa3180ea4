from __future__ import annotations

from typing import Any

from django.apps import AppConfig


def _leaver_subscriptions(sender: Any, *, user_id: int, **kwargs: Any) -> dict[str, list[int]]:
    from messaging.delivery.subscriptions import subscriptions_cut_off

    return subscriptions_cut_off(user_id=user_id)


class MessagingConfig(AppConfig):
    name = "messaging"

    def ready(self) -> None:
        from agencies.keyring import match_token_table_register
        from agencies.leavers import member_cut_off
        from isn.metrics import register_source
        from messaging.matching.entities import match_tokens_recompute_step
        from messaging.selectors.metrics import messaging_gauges

        # A person cut off (membership suspended or lapsed, account disabled) loses their subscriptions at once.
        member_cut_off.connect(_leaver_subscriptions, dispatch_uid="messaging.leaver_subscriptions")
        # Entities' match tokens are recomputed after a rotation of the match key, before the old version retires.
        match_token_table_register("messaging.matchtoken", match_tokens_recompute_step)
        # The outbox, dead letters and pending FLASH escalations, read at each scrape of /metrics.
        register_source("messaging", messaging_gauges)
