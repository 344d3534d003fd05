"""What a journey needs besides the applicant's phone: the services' URLs, a reviewer and an
operator (created ahead with `flexctl staff add --password-stdin`), the texted one-time codes (read
as the tests read them: tests/support/applicant.py `texted_code`), and monthly bills
(tests/load/billing.py)."""

import asyncio
import itertools
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from urllib.parse import urlsplit
from uuid import uuid4

import asyncpg
import httpx

from kernel.settings import local_secret
from tests.load.billing import Biller
from tests.load.http import RetryPolicy, StepFailed, call, poll
from tests.load.targets import NotLoopback, is_loopback_host, loopback_url
from tests.support.infra import admin_url_of
from tests.support.people import id_number
from tests.support.processes import ROOT

PASSWORD = "s3cret-pass"
# The reviewers of the accepting agency of the journeys' residence district (contracts/reference/districts.toml).
AGENCY = "320411"
# What asyncpg raises while PostgreSQL is stopped or restarting.
DATABASE_AWAY = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
CODE = re.compile(r"验证码为(\d{6})")


class CodeReader:
    """Reads the code last texted to a phone from notify's local sink gateway (`sms_sink`), as the
    administrator; one small pool for the whole run."""

    def __init__(self, database_url: str, schema: str = "notify", admin_url: str | None = None) -> None:
        if not is_loopback_host(urlsplit(database_url).hostname or "localhost"):
            raise NotLoopback(f"refusing database {database_url!r}: not on this machine")
        # A stack of its own names its administrator (DATABASE_ADMIN_URL); else the tests' cluster's.
        self.admin_url = admin_url or admin_url_of(database_url)
        self.schema = schema
        self.pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        self.pool = await asyncpg.create_pool(self.admin_url, min_size=1, max_size=2)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    async def backend_pids(self) -> list[int]:
        """The server processes of this database's connections (tests/load/cost.py)."""
        assert self.pool is not None, "CodeReader.open() first"
        try:
            rows = await self.pool.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        except DATABASE_AWAY:  # no backends to count
            return []
        return [int(r["pid"]) for r in rows]

    async def code(self, phone: str, policy: RetryPolicy) -> str:
        assert self.pool is not None, "CodeReader.open() first"
        pool, e164 = self.pool, "+86" + phone.removeprefix("+86")
        sql = f'SELECT text FROM "{self.schema}".sms_sink WHERE phone = $1 AND template = $2 ORDER BY id DESC LIMIT 1'

        async def texted() -> str | None:
            try:
                found = CODE.search(await pool.fetchval(sql, e164, "one_time_code") or "")
            except DATABASE_AWAY:  # a chaos run stopped it: ask again
                return None
            return found.group(1) if found else None

        return await poll(texted, "the one-time code on the phone", policy)


async def flexctl(env: dict[str, str], *args: str, stdin: str = "") -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ops.flexctl", *args, cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate(stdin.encode())
    if process.returncode != 0:
        raise StepFailed(f"flexctl {' '.join(args[:2])} failed: {out.decode()[-500:]}")
    return out.decode()


async def staff_token(env: dict[str, str], identity: str, role: str, policy: RetryPolicy) -> dict[str, str]:
    """A new staff account (a random phone and ID number of its own) and its bearer header; the
    password goes through stdin, never argv."""
    phone = f"137{uuid4().int % 10**8:08d}"
    number = id_number(date(1965, 1, 1) + timedelta(days=uuid4().int % 10000), region="320411", seq=uuid4().int % 400)
    agency = ["--agency", AGENCY] if role == "reviewer" else []
    await flexctl(
        env, "staff", "add", "--phone", phone, "--password-stdin", "--role", role, "--name", "李审核",
        "--id-number", number, *agency, stdin=PASSWORD + "\n",
    )  # fmt: skip
    async with httpx.AsyncClient(timeout=15) as http:
        body = {"phone": phone, "password": PASSWORD}
        answer = await call(http, "POST", f"{identity}/v1/sessions", {201}, policy, json=body)
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


class Balancer:
    """Hands out a service's replicas in turn to every phone's requests, as one load balancer in
    front of them would, and counts the answers each replica gave."""

    def __init__(self, routes: dict[str, list[str]]) -> None:
        """`routes`: service → every replica's base URL, the first the one a journey's URLs name."""
        self.routes = routes
        self.turns = {_origin(httpx.URL(urls[0])): itertools.cycle(urls) for urls in routes.values()}
        self.answered: Counter[str] = Counter()  # base URL → answers

    def pick(self, url: httpx.URL) -> str | None:
        """The base URL of the replica that is to answer `url`; None: not a replicated service."""
        turn = self.turns.get(_origin(url))
        return next(turn) if turn is not None else None


@dataclass
class Stack:
    """Everything a journey talks to; `open()` creates the staff and the code reader's pool."""

    urls: dict[str, str]
    env: dict[str, str]  # the services' settings (DATABASE_URL, SCHEMA_NAME ...) for flexctl
    database_url: str
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    counter_secret: str = local_secret("hmac", "bank_counter")  # payment's bank_counter secret (development)
    reviewer: dict[str, str] = field(default_factory=dict)
    operator: dict[str, str] = field(default_factory=dict)
    codes: CodeReader | None = None
    biller: Biller | None = None
    # service → the base URLs of its other replicas beside urls[service]: a journey's requests to the
    # service go to any of them (tests/load/phone.py, AnyReplica). Empty: one replica each.
    replicas: dict[str, list[str]] = field(default_factory=dict)
    balancer: Balancer | None = None  # made by open() when there are replicas

    async def open(self) -> None:
        self.urls = {name: loopback_url(url) for name, url in self.urls.items()}
        self.replicas = {name: [loopback_url(url) for url in urls] for name, urls in self.replicas.items()}
        routes = {name: [self.urls[name], *urls] for name, urls in self.replicas.items() if urls}
        self.balancer = Balancer(routes) if routes else None
        schema = self.env.get("NOTIFY_SCHEMA", "notify")
        self.codes = CodeReader(self.database_url, schema, self.env.get("DATABASE_ADMIN_URL") or None)
        await self.codes.open()
        self.biller = Biller(self.env)
        await self.biller.open()
        self.reviewer = await staff_token(self.env, self.urls["identity"], "reviewer", self.policy)
        self.operator = await staff_token(self.env, self.urls["identity"], "operator", self.policy)

    async def close(self) -> None:
        if self.codes is not None:
            await self.codes.close()
        if self.biller is not None:
            await self.biller.close()
