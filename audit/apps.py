from __future__ import annotations

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from audit import signals  # noqa: F401 - connects the sign-in, sign-out and failed sign-in receivers
        from audit.metrics import audit_gauges
        from audit.services import record
        from isn import audit as audit_port
        from isn.metrics import register_source

        audit_port.register(record)
        register_source("audit", audit_gauges)
