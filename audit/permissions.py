from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from audit.selectors import is_auditor


class IsAuditor(BasePermission):
    """A national auditor or the regional auditor; officers, admins and anonymous callers are refused."""

    message = "Only ISN auditors may use the audit workspace."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and is_auditor(request.user))
