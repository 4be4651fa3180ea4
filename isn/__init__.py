"""ISN, the Mekong Information Sharing Network."""

from __future__ import annotations

from isn.celery import app as celery_app

__all__ = ["celery_app"]
