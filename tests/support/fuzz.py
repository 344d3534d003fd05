"""Schemathesis against a service app in-process, with the real database and broker behind it.

The schema comes from the app's own OpenAPI (`app.openapi()`, nothing started). The app's
lifespan, i.e. its runtime, runs on schemathesis' ASGI event-loop thread: `Target.running()` starts
it, seeds through a client into it, and at the end stops it and drops the test schema.

The checks are the standard of every service: never a server error; every answer's status code,
content type and body as the service's own OpenAPI declares them (schemathesis' conformance
checks: a mismatch is fixed in the declaration, so that the schema tells the truth); and every
refusal an RFC 9457 problem+json with a stable `code`, a `detail` in Chinese and the answer's own
`status`.
"""

import asyncio
import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast
from uuid import UUID, uuid4

import requests
import schemathesis
from fastapi import FastAPI
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from kernel.auth import Principal, Role
from kernel.problems import PROBLEM_MEDIA_TYPE
from kernel.runtime import ServiceRuntime
from tests.support.infra import drop_schemas
from tests.support.tokens import bearer

# Small and deterministic: a bounded run that finds the same things every time.
MAX_EXAMPLES = 15
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 9457,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        "phases": {"stateful": {"enabled": False}},
    }
)
ROLES: tuple[Role, ...] = ("applicant", "reviewer", "operator")


def has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


@schemathesis.check
def problem_details(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> None:
    """Every 4xx is application/problem+json with a non-empty `code` and a Chinese `detail`."""
    if not 400 <= response.status_code < 500:
        return
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.startswith(PROBLEM_MEDIA_TYPE), f"{response.status_code} as {content_type!r}, not a problem"
    body = response.json()
    assert isinstance(body, dict), f"problem body is not an object: {body!r}"
    code, detail = body.get("code"), body.get("detail")
    assert isinstance(code, str) and code, f"problem without a code: {body!r}"
    assert isinstance(detail, str) and has_chinese(detail), f"problem detail not in Chinese: {body!r}"
    assert body.get("status") == response.status_code, f"problem status differs from the answer's: {body!r}"


CHECKS: list[schemathesis.CheckFunction] = [
    not_a_server_error,
    problem_details,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


class Target:
    """One service under fuzzing: its app, runtime, schema and a caller in each role.

    Random ids in paths mostly meet 404 early; `known` path values (resources seeded while the
    runtime runs) let the same generated request reach the domain: each case is sent once more
    with them, by every role.
    """

    def __init__(self, app: FastAPI, runtime: ServiceRuntime) -> None:
        self.app, self.runtime = app, runtime
        self.schema = schemathesis.openapi.from_dict(app.openapi(), config=CONFIG)
        self.schema.app = app
        self.ids: dict[Role, UUID] = {role: uuid4() for role in ROLES}
        self.headers: dict[Role, dict[str, str]] = {
            role: bearer(Principal(uid, role)) for role, uid in self.ids.items()
        }
        self._known: dict[str, Iterator[str]] = {}

    def act_as(self, role: Role, user_id: UUID) -> dict[str, str]:
        """From now on `role` is played by `user_id` (a person seeded in the service)."""
        self.ids[role] = user_id
        self.headers[role] = bearer(Principal(user_id, role))
        return self.headers[role]

    def know(self, parameter: str, values: Sequence[str]) -> None:
        self._known[parameter] = itertools.cycle(values)

    @contextmanager
    def running(self) -> Iterator[requests.Session]:
        """The runtime started (as the app's lifespan, on schemathesis' loop) and a client into it;
        the runtime stopped and its database schema dropped after."""
        try:
            with asgi.get_client(cast(asgi.ASGIApp, self.app)) as client:
                yield client
        finally:
            try:
                asgi.shutdown_lifespans()
            finally:
                asyncio.run(drop_schemas(self.runtime.settings.db_schema))

    def call_as_everyone(self, case: schemathesis.Case[Any]) -> None:
        """The case as generated (no token, or what schemathesis put there), then once per role,
        then once more per role with known resources in the path."""
        case.call_and_validate(checks=CHECKS)
        generated = dict(case.path_parameters or {})
        known = {name: next(self._known[name]) if name in self._known else v for name, v in generated.items()}
        for path_parameters in [generated] if known == generated else [generated, known]:
            case.path_parameters = path_parameters
            for headers in self.headers.values():
                case.call_and_validate(headers=headers, checks=CHECKS)


def problem_of(response: Any) -> dict[str, Any]:
    """The problem body of a refusal, after the same checks the fuzzing makes."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE), response.headers["content-type"]
    body: dict[str, Any] = response.json()
    assert body["code"] and has_chinese(body["detail"]) and body["status"] == response.status_code, body
    return body
