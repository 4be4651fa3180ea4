"""The renderer of the API's error answers (imported when first needed: DRF's renderers import its generic views,
which import ``isn.api`` for the pagination class)."""

from __future__ import annotations

from rest_framework.renderers import JSONRenderer

from isn.problems import PROBLEM_CONTENT_TYPE


class ProblemJSONRenderer(JSONRenderer):
    """Renders error answers: ``isn.api.exception_handler`` picks it whatever the caller accepted."""

    media_type = PROBLEM_CONTENT_TYPE
    format = "problem+json"
