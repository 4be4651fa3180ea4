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
        from agencies.masterkeys import master_sealed_table_register
        from isn.metrics import register_source
        from messaging.core.sealing import webhook_secret_aad
        from messaging.matching.entities import match_tokens_recompute_step
        from messaging.models import AgencyWebhook
        from messaging.selectors.metrics import messaging_gauges

        # A person cut off (membership suspended or lapsed, account disabled) loses their subscriptions at once.
        member_cut_off.connect(_leaver_subscriptions, dispatch_uid="messaging.leaver_subscriptions")
        # Entities' match tokens are recomputed after a rotation of the match key, before the old version retires.
        match_token_table_register("messaging.matchtoken", match_tokens_recompute_step)
        # Webhook secrets are sealed under the master key: a master key rotation re-wraps them with the keyring's.
        master_sealed_table_register(
            "messaging.agencywebhook",
            AgencyWebhook,
            value_field="secret_sealed",
            version_field="secret_master_version",
            aad_of=webhook_secret_aad,
        )
        # The outbox, dead letters and pending FLASH escalations, read at each scrape of /metrics.
        register_source("messaging", messaging_gauges)
