"""The faults of a chaos run (issue 10, "Chaos"): kill -9 each service at random moments and start
it again; stop the broker and PostgreSQL for a while and start them again. All on a stack of the
run's own (tests/support/stack.py), never on the default one.

Faults happen one after another at planned moments: a fault that takes longer than the gap to the
next one delays it, so that two outages never overlap and each is seen alone."""

import os
import random
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psutil

from tests.support.stack import LocalStack

KILL, BROKER, DATABASE = "kill -9", "broker restart", "database restart"


@dataclass(frozen=True, order=True)
class Fault:
    at: float  # seconds after the run's start
    kind: str
    target: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.target}".strip()


@dataclass(frozen=True)
class FaultPlan:
    kills_each: int = 1  # SIGKILLs per service
    broker_restarts: int = 1
    database_restarts: int = 1
    outage_seconds: float = 5.0  # how long the broker or the database stays down
    start: float = 5.0  # faults fall between these moments of the run
    end: float = 60.0

    def faults(self, services: Sequence[str], rng: random.Random) -> list[Fault]:
        kinds = [(KILL, name) for name in services for _ in range(self.kills_each)]
        kinds += [(BROKER, "kafka")] * self.broker_restarts + [(DATABASE, "postgresql")] * self.database_restarts
        return sorted(Fault(rng.uniform(self.start, self.end), kind, target) for kind, target in kinds)


@dataclass(frozen=True)
class Inflicted:
    fault: Fault
    began: float  # seconds after the run's start
    took: float


def _kill(local: LocalStack, service: str) -> None:
    pid = local.pids([service])[service]
    os.kill(pid, signal.SIGKILL)
    psutil.wait_procs([psutil.Process(pid)], timeout=10)
    local.script("services.sh", "start", service)  # waits until it answers /healthz


def _outage(local: LocalStack, script: str, seconds: float) -> None:
    local.script(script, "stop")
    time.sleep(seconds)
    local.script(script, "start")


def inflict(local: LocalStack, fault: Fault, plan: FaultPlan) -> None:
    if fault.kind == KILL:
        _kill(local, fault.target)
    elif fault.kind == BROKER:
        _outage(local, "kafka.sh", plan.outage_seconds)
    elif fault.kind == DATABASE:
        _outage(local, "postgres.sh", plan.outage_seconds)
    else:
        raise ValueError(f"unknown fault {fault.kind}")


def run_faults(
    local: LocalStack, faults: Sequence[Fault], plan: FaultPlan, on_fault: Callable[[Inflicted], None]
) -> list[Inflicted]:
    """Blocking (the scripts are processes): run it in a thread beside the journeys."""
    t0 = time.monotonic()
    done: list[Inflicted] = []
    for fault in faults:
        time.sleep(max(0.0, fault.at - (time.monotonic() - t0)))
        began = time.monotonic() - t0
        inflict(local, fault, plan)
        done.append(Inflicted(fault, began, time.monotonic() - t0 - began))
        on_fault(done[-1])
    return done
