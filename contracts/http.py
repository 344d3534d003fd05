"""HTTP paths that one service publishes and another links to (part of the public language).

A reviewer's console links each case's documents to the service that keeps them; the path is
written down here once, so the link and the route cannot drift apart.
"""

from typing import Final
from uuid import UUID

DOCUMENT_PATH: Final = "/v1/applications/{application_id}/documents/{kind}"
"""enrollment: one uploaded document of an application (its owner, reviewers and operators)."""


def document_url(base_url: str, application_id: UUID, kind: str) -> str:
    return base_url.rstrip("/") + DOCUMENT_PATH.format(application_id=application_id, kind=kind)
