"""The short chaos run (issue 10, "Chaos"; `make chaos` is the long one): journeys through a stack
of the test's own while each service is killed with SIGKILL and the broker and PostgreSQL are
stopped and started, then every count that must hold (tests/chaos/checks.py)."""

import asyncio

from contracts.topics import SERVICES
from tests.chaos.faults import BROKER, DATABASE, KILL, FaultPlan
from tests.chaos.run import ChaosSettings, assert_nothing_lost, chaos_run
from tests.load.run import LoadSettings
from tests.support.stack import running_stack

PLAN = FaultPlan(kills_each=1, broker_restarts=1, database_restarts=1, outage_seconds=3.0, start=5.0, end=40.0)
LOAD = LoadSettings(rate=0.3, count=12, max_seconds=40.0, drain_seconds=240.0, seed=7)


def test_nothing_is_lost_or_done_twice_through_kills_and_restarts() -> None:
    with running_stack(SERVICES) as local:
        report = asyncio.run(chaos_run(local, ChaosSettings(LOAD, PLAN, seed=7)))
    struck = sorted(str(f.fault) for f in report.faults)
    assert struck == sorted([f"{KILL} {s}" for s in SERVICES] + [f"{BROKER} kafka", f"{DATABASE} postgresql"])
    assert_nothing_lost(report.journeys, LOAD.count, report.drained_in, report.findings)
