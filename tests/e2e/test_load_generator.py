"""The load generator (tests/load, `make load`) through the services as real processes on free
ports: accounts ahead, then journeys to `active` with the decision's SMS, and the CPU they cost."""

import asyncio
from pathlib import Path

from tests.load.cost import Watched
from tests.load.run import LoadSettings, run_load
from tests.load.stack import Stack
from tests.support.applicant import running_system

NAMES = ("identity", "enrollment", "review", "notify", "payment")


def test_journeys_reach_active_with_their_sms_and_every_service_costs_cpu(
    e2e_env: dict[str, str], log_dir: Path
) -> None:
    with running_system(e2e_env, log_dir, "e2e-load", NAMES) as system:
        identity = system["identity"]
        stack = Stack(
            urls={name: service.url for name, service in system.items()},
            env=identity.env,
            database_url=identity.env["DATABASE_URL"],
        )
        watched = [Watched(name, s.process.pid) for name, s in system.items() if s.process is not None]
        settings = LoadSettings(rate=1.0, count=3, drain_seconds=120.0, accounts_ahead=True, seed=10)
        run = asyncio.run(run_load(stack, watched, settings))

    accounts, pipeline = run.phases
    assert (accounts.ok, accounts.reached) == (3, {"verified": 3}), accounts.failures
    assert [(j.reached, j.error) for j in run.journeys] == [("active", None)] * 3, pipeline.failures
    assert all(j.sms_after_decision is not None and j.sms_after_decision > 0 for j in run.journeys)
    assert all(j.marks["sms_sent"] < j.marks["active"] for j in run.journeys)
    assert {"submit → under_review visible", "decision → SMS sent"} <= set(pipeline.latency)
    for name in NAMES:  # each service worked for the journeys, over both phases
        assert accounts.cpu_seconds[name] + pipeline.cpu_seconds[name] > 0, name
    assert accounts.cpu_seconds["identity"] > 0  # registration and verification hash passwords
    assert pipeline.system_cpu_per_journey > 0 and pipeline.requests_per_journey > 10
