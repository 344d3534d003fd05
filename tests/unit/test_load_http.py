"""The journeys' requests under faults (tests/load/http.py): bounded retries, lost answers."""

from collections.abc import Iterator

import httpx
import pytest

from tests.load.http import RetryPolicy, StepFailed, call

QUICK = RetryPolicy(attempts=3, first_wait=0.0, max_wait=0.0)


def scripted(*answers: httpx.Response | Exception) -> tuple[httpx.AsyncClient, list[httpx.Request]]:
    """A client whose transport gives `answers` in order (an exception is raised, as a fault)."""
    script: Iterator[httpx.Response | Exception] = iter(answers)
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        step = next(script)
        if isinstance(step, Exception):
            raise step
        return step

    return httpx.AsyncClient(transport=httpx.MockTransport(handle)), seen


def problem(status: int, code: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"code": code}, headers=headers)


async def test_unavailable_and_refused_are_tried_again_until_the_answer_comes() -> None:
    refused = httpx.ConnectError("connection refused")
    http, seen = scripted(problem(503, "service_unavailable", **{"Retry-After": "0"}), refused, httpx.Response(201))
    answer = await call(http, "POST", "http://127.0.0.1:1/x", {201}, QUICK)
    assert answer.status_code == 201 and len(seen) == 3


async def test_retries_are_bounded() -> None:
    http, seen = scripted(*[httpx.ReadTimeout("slow")] * 3)
    with pytest.raises(StepFailed, match="gave up after 3 tries"):
        await call(http, "GET", "http://127.0.0.1:1/x", {200}, QUICK)
    assert len(seen) == 3


async def test_a_refusal_ends_the_journey_at_once() -> None:
    http, seen = scripted(problem(422, "not_eligible_age"))
    with pytest.raises(StepFailed, match="not_eligible_age"):
        await call(http, "POST", "http://127.0.0.1:1/x", {201}, QUICK)
    assert len(seen) == 1


async def test_already_done_counts_as_done_only_after_a_lost_answer() -> None:
    http, _ = scripted(httpx.ReadTimeout("answer lost"), problem(409, "already_submitted"))
    answer = await call(http, "POST", "http://127.0.0.1:1/x", {202}, QUICK, ("already_submitted",))
    assert answer.status_code == 409
    http, _ = scripted(problem(409, "already_submitted"))
    with pytest.raises(StepFailed, match="already_submitted"):  # first try: a real conflict
        await call(http, "POST", "http://127.0.0.1:1/x", {202}, QUICK, ("already_submitted",))


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    policy = RetryPolicy(first_wait=0.1, max_wait=2.0)
    assert policy.wait(0, "1") == 1.0
    assert policy.wait(0, "30") == 2.0
    assert policy.wait(2, None) == pytest.approx(0.4)
    assert policy.wait(1, "Wed, 21 Oct 2015 07:28:00 GMT") == pytest.approx(0.2)
