"""RFC 9457 problem details: every refusal has a stable machine `code` and a Chinese `detail`."""

from typing import Any

from pydantic import BaseModel, Field

PROBLEM_MEDIA_TYPE = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    410: "Gone",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class ProblemDetails(BaseModel):
    """The body of every error answer (documented in each service's OpenAPI)."""

    type: str = Field(default="about:blank", description="URI naming the problem type")
    title: str
    status: int
    code: str = Field(description="stable machine code, e.g. not_eligible_age")
    detail: str = Field(description="explanation for people, in Chinese")
    instance: str | None = None
    errors: list[dict[str, Any]] | None = Field(default=None, description="per-field errors, if any")


class Problem(Exception):
    """Raise from a domain or a route; the HTTP shell turns it into problem+json."""

    status: int = 422

    def __init__(
        self,
        code: str,
        detail: str,
        status: int | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        if status is not None:
            self.status = status
        self.errors = errors
        self.extensions = extensions

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body = ProblemDetails(
            type=f"https://flexenroll.changzhou.example/problems/{self.code}",
            title=_TITLES.get(self.status, "Error"),
            status=self.status,
            code=self.code,
            detail=self.detail,
            instance=instance,
            errors=self.errors,
        ).model_dump(exclude_none=True)
        body.update(self.extensions)
        return body


class Refused(Problem):
    """A business rule says no (422)."""

    status = 422


class Conflict(Problem):
    status = 409


class NotFound(Problem):
    status = 404


class Unauthorized(Problem):
    status = 401


class Forbidden(Problem):
    status = 403
