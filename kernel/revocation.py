"""Revoked tokens, refused everywhere within a minute (services/identity/README.md, "Revocation").

identity keeps, per account ever disabled or bumped, its `token_version` and whether it is
disabled, and serves that short list at `GET /v1/token-revocations` (TOKEN_REVOCATIONS_PATH).
Every other service holds a copy (`RevocationList`), refreshed every
TOKEN_REVOCATIONS_REFRESH_SECONDS by `refresh_revocations`, and `kernel.auth.current_principal`
asks it about every token: a disabled account's is 401 `account_disabled`, one older than the
account's version 401 `token_revoked`. identity itself asks its own table (its own guard).

Until a first list arrives (identity not up yet) tokens are judged by signature only; the list
then keeps its last good copy while identity cannot be reached (each failed refresh is logged).
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx

from kernel.logging import get_logger
from kernel.problems import Unauthorized

log = get_logger(__name__)

TOKEN_REVOCATIONS_PATH = "/v1/token-revocations"


@dataclass(frozen=True)
class Revocation:
    """Tokens of the account older than `min_version` are refused; all of them while disabled."""

    min_version: int
    disabled: bool


def judge(entry: Revocation | None, version: int) -> None:
    """Raise the refusal for a token of `version` given the account's entry (None: never revoked)."""
    if entry is None:
        return
    if entry.disabled:
        raise Unauthorized("account_disabled", "该账户已停用，请联系管理员。")
    if version < entry.min_version:
        raise Unauthorized("token_revoked", "登录凭证已失效，请重新登录。")


class RevocationList:
    """The copy of identity's list a service holds (a TokenGuard)."""

    def __init__(self) -> None:
        self._entries: dict[UUID, Revocation] = {}
        self.loaded_at: float | None = None  # time.monotonic() of the last good refresh

    def replace(self, entries: Mapping[UUID, Revocation]) -> None:
        self._entries = dict(entries)
        self.loaded_at = time.monotonic()

    async def check(self, user_id: UUID, version: int) -> None:
        judge(self._entries.get(user_id), version)


def parse_revocations(body: Mapping[str, Any]) -> dict[UUID, Revocation]:
    return {
        UUID(str(r["user_id"])): Revocation(int(r["min_version"]), bool(r["disabled"])) for r in body["revocations"]
    }


class HttpFetcher:
    """Fetches identity's list over HTTP (IDENTITY_URL) with one client for all refreshes: a new
    httpx client per refresh loaded the CA bundle every time (about 30 ms of CPU, issue 10).
    `refresh_revocations` closes it when it stops."""

    def __init__(self, base_url: str, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._url = base_url
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    async def __call__(self) -> dict[UUID, Revocation]:
        if self._client is None:  # opened on the loop of the task that refreshes
            self._client = httpx.AsyncClient(base_url=self._url, transport=self._transport, timeout=5.0)
        answer = await self._client.get(TOKEN_REVOCATIONS_PATH)
        answer.raise_for_status()
        return parse_revocations(answer.json())

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def http_fetcher(base_url: str, transport: httpx.AsyncBaseTransport | None = None) -> HttpFetcher:
    """Fetch identity's list over HTTP (IDENTITY_URL)."""
    return HttpFetcher(base_url, transport)


async def refresh_revocations(
    revocations: RevocationList, fetch: Callable[[], Awaitable[dict[UUID, Revocation]]], period_seconds: float
) -> None:
    """Refresh `revocations` now and then every `period_seconds`, until cancelled."""
    try:
        await _refresh_forever(revocations, fetch, period_seconds)
    finally:
        if isinstance(fetch, HttpFetcher):  # the task owns its fetcher's client
            await fetch.aclose()


async def _refresh_forever(
    revocations: RevocationList, fetch: Callable[[], Awaitable[dict[UUID, Revocation]]], period_seconds: float
) -> None:
    failures = 0
    while True:
        try:
            revocations.replace(await fetch())
            if failures:
                log.info("token_revocations_refreshed", after_failures=failures)
            failures = 0
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # identity down or unreachable: keep the last good list
            failures += 1
            log.warning("token_revocations_refresh_failed", error=type(exc).__name__, failures=failures)
        await asyncio.sleep(period_seconds)
