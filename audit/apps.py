from __future__ import annotations

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from audit import signals  # noqa: F401 - connects the sign-in, sign-out and failed sign-in receivers
        from audit.services import record
        from isn import audit as audit_port

        audit_port.register(record)
