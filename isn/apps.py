from __future__ import annotations

from django.apps import AppConfig


class IsnConfig(AppConfig):
    name = "isn"
    verbose_name = "ISN platform"
