from __future__ import annotations

from django.apps import AppConfig


class AgenciesConfig(AppConfig):
    name = "agencies"
    verbose_name = "Agencies and offices"

    def ready(self) -> None:
        from agencies import (
            keyring,  # noqa: F401 - registers the country and match key tables with the master key's rotation
            schema,  # noqa: F401 - registers the API-key scheme with drf-spectacular
            signals,  # noqa: F401 - a disabled account is cut off at once (agencies.leavers)
        )
