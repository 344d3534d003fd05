"""Requests that survive a system under faults: bounded retries on 502/503/504 (honouring
Retry-After up to a cap), refused connections, resets and timeouts; and bounded polling of a
read model until it shows what is awaited (docs/benchmarks.md, "The journey")."""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

T = TypeVar("T")
RETRYABLE = frozenset({502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8  # tries of one request before the journey gives up
    first_wait: float = 0.1
    max_wait: float = 2.0  # a longer Retry-After is cut to this: the run measures, it does not idle
    poll_first: float = 0.05  # a read model is asked again after this, then 1.5 times longer each time
    poll_max: float = 0.5
    poll_timeout: float = 60.0

    def wait(self, attempt: int, retry_after: str | None) -> float:
        backoff = self.first_wait * 2.0**attempt
        with contextlib.suppress(ValueError):  # an HTTP date: keep our own backoff
            backoff = float(retry_after) if retry_after else backoff
        return min(backoff, self.max_wait)


class StepFailed(Exception):
    """A step ended the journey: an unexpected answer, or retries or polling exhausted."""


def _code(answer: httpx.Response) -> str | None:
    try:
        code = answer.json().get("code")
    except ValueError:
        return None
    return code if isinstance(code, str) else None


async def call(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    ok: Collection[int],
    policy: RetryPolicy,
    done_before: Collection[str] = (),
    **kwargs: Any,
) -> httpx.Response:
    """The first answer with a status in `ok`; other answers but 502/503/504 end the journey.
    `done_before`: refusal codes meaning "already done", taken as success on a second try only
    (the first try's answer was lost, e.g. to a timeout, after the request had its effect)."""
    last = ""
    for attempt in range(policy.attempts):
        retry_after = None
        try:
            answer = await http.request(method, url, **kwargs)
        except httpx.TransportError as exc:  # refused, reset, timed out: the service may be restarting
            last = f"{type(exc).__name__}: {exc}"
        else:
            if answer.status_code in ok or (attempt > 0 and _code(answer) in done_before):
                return answer
            last = f"{answer.status_code} {answer.text[:300]}"
            if answer.status_code not in RETRYABLE:
                raise StepFailed(f"{method} {url}: {last}")
            retry_after = answer.headers.get("retry-after")
        await asyncio.sleep(policy.wait(attempt, retry_after))
    raise StepFailed(f"{method} {url}: gave up after {policy.attempts} tries; last {last}")


async def poll(probe: Callable[[], Awaitable[T | None]], what: str, policy: RetryPolicy) -> T:
    """`probe()`'s first truthy result, asked again at growing intervals up to poll_timeout."""
    deadline = time.monotonic() + policy.poll_timeout
    pause = policy.poll_first
    while True:
        found = await probe()
        if found:
            return found
        if time.monotonic() >= deadline:
            raise StepFailed(f"timed out after {policy.poll_timeout} s waiting for {what}")
        await asyncio.sleep(pause)
        pause = min(pause * 1.5, policy.poll_max)
