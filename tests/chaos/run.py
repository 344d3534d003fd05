"""A chaos run as a library call (`make chaos` and the short end-to-end test use it): journeys
driven by the load generator (tests/load) through a stack of the run's own while the faults of
tests/chaos/faults.py strike, then a drain, then the checks of tests/chaos/checks.py."""

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from contracts.topics import SERVICES
from kernel.settings import local_secret
from ops.broker_access import BrokerAdminSettings
from tests.chaos.checks import Finding, Stack, check_all, no_lag, outboxes_empty
from tests.chaos.faults import FaultPlan, Inflicted, run_faults
from tests.load.http import RetryPolicy
from tests.load.journey import JourneyResult
from tests.load.run import LoadSettings, run_load
from tests.load.stack import Stack as LoadStack
from tests.support.stack import LocalStack

# Journeys ride out every outage: a request is tried for about a minute, a read model waited for
# four (a broker restart delays every fact that travels by Kafka).
PATIENT = RetryPolicy(attempts=40, first_wait=0.2, max_wait=2.0, poll_timeout=240.0)


@dataclass(frozen=True)
class ChaosSettings:
    load: LoadSettings
    plan: FaultPlan
    seed: int = 0
    drain_seconds: float = 120.0  # after the journeys: outboxes empty and lag 0 within this


@dataclass
class ChaosReport:
    journeys: list[JourneyResult] = field(default_factory=list)
    faults: list[Inflicted] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    drained_in: float | None = None  # seconds; None: not drained within drain_seconds

    @property
    def lost_journeys(self) -> list[JourneyResult]:
        return [j for j in self.journeys if not j.ok]

    @property
    def ok(self) -> bool:
        return bool(self.journeys) and not self.lost_journeys and all(f.ok for f in self.findings)


def environment(local: LocalStack) -> dict[str, str]:
    """The stack's own settings, derived from its file, as its services and flexctl see them."""
    env = local.env
    return {**env, **{k: v for k, v in local.stack.derived(env).items() if v}}


def checked_stack(local: LocalStack) -> Stack:
    derived = environment(local)
    kafka = BrokerAdminSettings(kafka_bootstrap=derived["KAFKA_BOOTSTRAP"]).access()
    return Stack(
        database_url=derived["DATABASE_URL"],
        admin_url=derived["DATABASE_ADMIN_URL"],
        schemas={name: name for name in SERVICES},
        kafka=kafka,
        enrollment_login=("enrollment", local_secret("db", "enrollment")),
    )


async def drained(stack: Stack, seconds: float) -> float | None:
    """Seconds until every outbox is empty and no group lags; None if not within `seconds`."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        if (await outboxes_empty(stack)).ok and (await no_lag(stack)).ok:
            return time.monotonic() - t0
        await asyncio.sleep(1.0)
    return None


async def chaos_run(
    local: LocalStack, settings: ChaosSettings, on_fault: Callable[[Inflicted], None] = lambda _: None
) -> ChaosReport:
    env = environment(local)
    urls = {name: local.stack.url(name) for name in SERVICES}
    journeys = LoadStack(urls=urls, env=env, database_url=env["DATABASE_URL"], policy=PATIENT)
    faults = settings.plan.faults(SERVICES, random.Random(settings.seed))
    report = ChaosReport()
    # No CPU watched: pids change with every kill, and a chaos run measures nothing but correctness.
    load = asyncio.create_task(run_load(journeys, [], settings.load))
    report.faults = await asyncio.to_thread(run_faults, local, faults, settings.plan, on_fault)
    report.journeys = (await load).journeys
    stack = checked_stack(local)
    report.drained_in = await drained(stack, settings.drain_seconds)
    report.findings = await check_all(stack)
    return report


def assert_nothing_lost(
    journeys: Sequence[JourneyResult], expected: int, drained_in: float | None, findings: Sequence[Finding]
) -> None:
    """The verdict of a run under faults (the short chaos run, the scale-out tests): every journey
    reached its state, everything drained, and every check held and counted something."""
    lost = [(j.index, j.reached, j.error) for j in journeys if not j.ok]
    assert len(journeys) == expected and not lost, lost
    assert drained_in is not None, "outboxes and consumer lag did not drain"
    failed = [(f.check, f.problems) for f in findings if not f.ok]
    assert not failed, failed
    assert all(f.counted > 0 for f in findings), [(f.check, f.counted) for f in findings]
