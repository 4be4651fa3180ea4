from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from audit.selectors import is_auditor


def workspace(request: HttpRequest) -> dict[str, Any]:
    """``is_auditor`` for the navigation bar; the pages check it again themselves."""
    user = getattr(request, "user", None)
    return {"is_auditor": bool(user is not None and user.is_authenticated and is_auditor(user))}
