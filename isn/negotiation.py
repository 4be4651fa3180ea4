"""Content negotiation for the API."""

from __future__ import annotations

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request

from isn.problems import PROBLEM_CONTENT_TYPE


class ContentNegotiation(DefaultContentNegotiation):
    """Accept: application/problem+json is a caller that reads our errors: answer it as one that accepts JSON."""

    def get_accept_list(self, request: Request) -> list[str]:
        return [
            "application/json" if media.split(";")[0].strip() == PROBLEM_CONTENT_TYPE else media
            for media in super().get_accept_list(request)
        ]
