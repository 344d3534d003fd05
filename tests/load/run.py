"""A load run as a library call (the CLI, the end-to-end test and a chaos harness use it): the
accounts phase when asked (register + verify ahead, password hashing apart), then the journeys,
each phase between two CPU samples of the watched processes."""

import random
from dataclasses import dataclass, field

from tests.load.cost import BILLING, DB_BACKENDS, Watched, delta, pids_cpu, pids_delta, sample
from tests.load.generator import Run, open_loop
from tests.load.journey import account_journey, application_journey
from tests.load.phone import Account, JourneyResult
from tests.load.report import Phase, phase
from tests.load.stack import Stack


@dataclass(frozen=True)
class LoadSettings:
    rate: float = 1.0  # journeys/s offered
    count: int = 20
    max_seconds: float | None = 120.0  # no journey is started later than this in a phase
    drain_seconds: float = 60.0  # in-flight journeys get this long after the last was due
    accounts_ahead: bool = False
    accounts_rate: float = 2.0
    seed: int | None = None


@dataclass
class LoadRun:
    phases: list[Phase] = field(default_factory=list)
    journeys: list[JourneyResult] = field(default_factory=list)  # every journey of the last phase


@dataclass(frozen=True)
class Reading:
    cpu: dict[str, float]
    backends: dict[int, float]  # the run's database's live backends


async def _read(stack: Stack, watched: list[Watched]) -> Reading:
    pids = await stack.codes.backend_pids() if stack.codes else []
    return Reading(sample(watched, {BILLING: stack.biller.native_id if stack.biller else None}), pids_cpu(pids))


def _spent(before: Reading, after: Reading) -> dict[str, float]:
    spent = delta(before.cpu, after.cpu)
    if "postgresql" in spent:
        spent[DB_BACKENDS] = pids_delta(before.backends, after.backends)
    return spent


async def _accounts(
    stack: Stack, watched: list[Watched], s: LoadSettings, rng: random.Random
) -> tuple[Phase, list[Account]]:
    before = await _read(stack, watched)

    async def job(index: int, intended: float) -> JourneyResult:
        return await account_journey(stack, index, intended, rng)

    run = await open_loop(job, s.accounts_rate, s.count, s.max_seconds, s.drain_seconds)
    made = [o.result.account for o in run.outcomes if o.result is not None and o.result.ok and o.result.account]
    return phase("accounts ahead", s.accounts_rate, run, _spent(before, await _read(stack, watched))), made


async def _journeys(
    stack: Stack, watched: list[Watched], s: LoadSettings, rng: random.Random, accounts: list[Account] | None
) -> tuple[Phase, Run[JourneyResult]]:
    before = await _read(stack, watched)

    async def job(index: int, intended: float) -> JourneyResult:
        return await application_journey(stack, index, intended, rng, accounts[index] if accounts else None)

    count = len(accounts) if accounts is not None else s.count
    run = await open_loop(job, s.rate, count, s.max_seconds, s.drain_seconds)
    name = "application pipeline" if accounts is not None else "whole journey"
    return phase(name, s.rate, run, _spent(before, await _read(stack, watched))), run


async def run_load(stack: Stack, watched: list[Watched], settings: LoadSettings) -> LoadRun:
    """Opens the stack (staff, code reader), runs the phases, closes it."""
    rng = random.Random(settings.seed)
    await stack.open()
    result = LoadRun()
    try:
        accounts = None
        if settings.accounts_ahead:
            made, accounts = await _accounts(stack, watched, settings, rng)
            result.phases.append(made)
        measured, run = await _journeys(stack, watched, settings, rng, accounts)
        result.phases.append(measured)
        expected = "active"
        never = "cancelled before it started: the run's time was up"
        result.journeys = [o.result or JourneyResult(o.index, expected, error=never) for o in run.outcomes]
    finally:
        await stack.close()
    return result
