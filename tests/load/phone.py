"""A simulated applicant's phone: who they are, their own HTTP client and source address, and what
their journey reached with its timings (tests/load/journey.py drives it)."""

import random
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx

from tests.load.http import call
from tests.load.stack import Balancer, Stack
from tests.load.targets import phone_address
from tests.support.people import id_number

# The steps a journey reaches, in order ("started" first): what a chaos harness compares.
ACCOUNT_STEPS = ("code_texted", "registered", "logged_in", "verified")
APPLICATION_STEPS = ("applied", "uploaded", "submitted", "under_review", "approved", "sms_sent", "billed", "active")
STEPS = ("started", *ACCOUNT_STEPS, *APPLICATION_STEPS)
NAMES = ("张三", "李四", "王芳", "赵敏", "陈静", "刘洋", "周杰", "吴磊")


@dataclass
class Account:
    phone: str
    name: str
    id_number: str
    address: str  # the phone's own source address in 127.0.0.0/8
    user_id: str = ""
    auth: dict[str, str] = field(default_factory=dict)


@dataclass
class JourneyResult:
    index: int
    expected: str
    reached: str = "started"
    error: str | None = None
    marks: dict[str, float] = field(default_factory=dict)  # step → seconds since the intended start
    sms_after_decision: float | None = None  # notify's sent_at − the decision's sending (wall clocks)
    requests: int = 0
    last_fault: str | None = None  # the last fault a step got past (chaos runs)
    account: Account | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.reached == self.expected


class Clock:
    """Seconds since a journey's intended start on the monotonic clock."""

    def __init__(self, intended: float) -> None:
        self.intended = intended

    def now(self) -> float:
        return time.monotonic() - self.intended


def new_account(rng: random.Random) -> Account:
    # 25 to 45 years old: within the ages the guide admits (Q2: from 16, men under 60, women under 55).
    born = date.today() - timedelta(days=rng.randrange(25 * 366, 45 * 365))
    male = rng.random() < 0.5
    number = id_number(born, male=male, seq=rng.randrange(400))
    return Account(f"139{rng.randrange(10**8):08d}", rng.choice(NAMES), number, phone_address(rng))


class AnyReplica(httpx.AsyncBaseTransport):
    """Sends each request for a replicated service to the replica the balancer picks: a request
    retried after a refused connection goes to another replica."""

    def __init__(self, inner: httpx.AsyncBaseTransport, balancer: Balancer) -> None:
        self.inner = inner
        self.balancer = balancer

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        base = self.balancer.pick(request.url)
        if base is None:
            return await self.inner.handle_async_request(request)
        to = httpx.URL(base)
        request.url = request.url.copy_with(scheme=to.scheme, host=to.host, port=to.port)
        request.headers["Host"] = to.netloc.decode("ascii")
        response = await self.inner.handle_async_request(request)
        self.balancer.answered[base] += 1
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def phone_client(account: Account, result: JourneyResult, balancer: Balancer | None = None) -> httpx.AsyncClient:
    """The phone's HTTP client: its own source address, every request counted; with a `balancer`,
    each request to a replicated service goes to the replica it picks."""

    async def count(_: httpx.Request) -> None:
        result.requests += 1

    transport: httpx.AsyncBaseTransport = httpx.AsyncHTTPTransport(local_address=account.address, retries=0)
    if balancer is not None:
        transport = AnyReplica(transport, balancer)
    return httpx.AsyncClient(transport=transport, timeout=15, event_hooks={"request": [count]})


@dataclass
class Phone:
    """One applicant's phone during a journey: what it talks to, who it is, what it reached."""

    stack: Stack
    http: httpx.AsyncClient
    account: Account
    result: JourneyResult
    clock: Clock

    def reach(self, step: str) -> None:
        self.result.reached = step
        self.result.marks[step] = self.clock.now()

    def mark(self, name: str) -> None:
        self.result.marks[name] = self.clock.now()

    async def call(
        self, method: str, url: str, ok: Collection[int], done_before: Collection[str] = (), **kwargs: Any
    ) -> httpx.Response:
        return await call(self.http, method, url, ok, self.stack.policy, done_before, **kwargs)

    async def mine(
        self, method: str, url: str, ok: Collection[int], done_before: Collection[str] = (), **kwargs: Any
    ) -> httpx.Response:
        """A request with the applicant's bearer token."""
        return await self.call(method, url, ok, done_before, headers=self.account.auth, **kwargs)
