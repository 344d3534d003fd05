"""One HTTP client per process for the calls made on every decision or refresh (issue 10):
review's own-case check (services/review/separation.py) and the revocation list's fetcher
(kernel/revocation.py) keep theirs, and close it when they stop."""

import asyncio
from uuid import uuid4

import httpx

from kernel.revocation import RevocationList, http_fetcher, refresh_revocations
from services.review.separation import identity_same_person


def _identity(seen: list[str]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/v1/token-revocations":
            return httpx.Response(200, json={"revocations": []})
        return httpx.Response(200, json={"linked": True, "same_person": False})

    return httpx.MockTransport(answer)


async def test_the_own_case_check_keeps_one_client_until_closed() -> None:
    seen: list[str] = []
    ask = identity_same_person("http://identity.test", transport=_identity(seen))
    assert await ask("token", uuid4()) is False
    first = ask._client
    assert await ask("token", uuid4()) is False
    assert ask._client is first and first is not None
    await ask.aclose()
    assert first.is_closed
    assert await ask("token", uuid4()) is False  # opened again after a stop
    assert ask._client is not first
    await ask.aclose()
    assert len(seen) == 3


async def test_the_revocation_fetcher_keeps_one_client_and_the_refresh_closes_it() -> None:
    seen: list[str] = []
    fetch = http_fetcher("http://identity.test", transport=_identity(seen))
    revocations = RevocationList()
    task = asyncio.create_task(refresh_revocations(revocations, fetch, 0.01))
    while not seen:
        await asyncio.sleep(0.01)
    client = fetch._client
    while len(seen) < 3:
        await asyncio.sleep(0.01)
    assert fetch._client is client and client is not None and not client.is_closed
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert client.is_closed and fetch._client is None
    assert revocations.loaded_at is not None
