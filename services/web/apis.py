"""The other services' APIs, called with the visitor's own token: web never holds more right than
the person in front of the page (services/web/README.md, "Who may see what").

One client per service for the process (each new client loaded the CA bundle: issue 10). A
refusal comes back as `ApiRefused` with the service's problem details, so a page can show the
service's own Chinese `detail`; a service that does not answer is `ApiUnavailable`."""

from collections.abc import Mapping
from typing import Any

import httpx

from kernel.asgi import CORRELATION_HEADER

SERVICES = ("identity", "enrollment", "review", "payment", "notify")


class ApiRefused(Exception):
    """A 4xx answer: what the service said (RFC 9457 problem details)."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        super().__init__(f"{status} {problem.get('code')}")
        self.status = status
        self.problem = dict(problem)

    @property
    def code(self) -> str:
        return str(self.problem.get("code", ""))

    @property
    def detail(self) -> str:
        return str(self.problem.get("detail") or "请求未能办理，请稍后再试。")


class ApiUnavailable(Exception):
    """The service did not answer, or answered 5xx: the visitor may try again later. `code` is
    the service's own when it said one (e.g. 503 `verification_pending`), else empty."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class Apis:
    """httpx clients to the five services, opened at start and closed at stop."""

    def __init__(self, urls: Mapping[str, str], timeout: float, transport: httpx.AsyncBaseTransport | None = None):
        self._urls = dict(urls)
        self._timeout = timeout
        self._transport = transport
        self._clients: dict[str, httpx.AsyncClient] = {}

    def client(self, service: str) -> httpx.AsyncClient:
        if service not in self._clients:
            self._clients[service] = httpx.AsyncClient(
                base_url=self._urls[service], timeout=self._timeout, transport=self._transport
            )
        return self._clients[service]

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        token: str | None = None,
        correlation_id: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """The answer of a 2xx; raises ApiRefused (4xx) or ApiUnavailable (5xx, no answer)."""
        headers: dict[str, str] = dict(kwargs.pop("headers", {}) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if correlation_id:
            headers[CORRELATION_HEADER] = correlation_id
        try:
            answer = await self.client(service).request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiUnavailable(f"{service}: {type(exc).__name__}") from exc
        if answer.status_code < 400:
            return answer
        problem = _problem(answer)
        if answer.status_code >= 500:
            raise ApiUnavailable(f"{service}: {answer.status_code}", str(problem.get("code", "")))
        raise ApiRefused(answer.status_code, problem)

    async def json(self, service: str, method: str, path: str, **kwargs: Any) -> Any:
        return (await self.call(service, method, path, **kwargs)).json()


def _problem(answer: httpx.Response) -> dict[str, Any]:
    try:
        problem = answer.json()
    except ValueError:
        return {"code": "refused", "detail": ""}
    return problem if isinstance(problem, dict) else {}
