from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from agencies.selectors import is_network_member


class IsNetworkMember(BasePermission):
    """Default for every API view: an active member of an active agency, nobody else."""

    message = "You need an active membership of an ISN member agency."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and is_network_member(request.user))
