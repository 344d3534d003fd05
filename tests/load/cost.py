"""CPU-seconds per process, read with psutil (/proc) before and after a phase: each service, the
PostgreSQL cluster (postmaster, its live backends and the ones that exited), the Kafka broker, the
generator itself and the commands it ran (docs/benchmarks.md, "Cost per journey")."""

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from tests.load.targets import stack_value
from tests.support.processes import ROOT

GENERATOR = "generator"
COMMANDS = "generator's commands"  # its exited children (flexctl staff add)
BILLING = "billing (operator, in the generator)"  # tests/load/billing.py's thread
# Part of "postgresql", shown apart because the cluster is shared with other work: the live
# backends of the run's own database (one that exited during the phase is not in it).
DB_BACKENDS = "  of which this database's backends"


@dataclass(frozen=True)
class Watched:
    """A process to account for; `tree`: with its children, live and exited (PostgreSQL's backends)."""

    name: str
    pid: int
    tree: bool = False


def cpu_of(process: psutil.Process, tree: bool) -> float:
    """CPU-seconds (user + system) of `process`; with `tree`, also of its children: the exited
    ones through its children_* times (they were waited for) and the live ones read directly."""
    times = process.cpu_times()
    total = times.user + times.system
    if not tree:
        return total
    total += times.children_user + times.children_system
    for child in process.children():
        try:
            own = child.cpu_times()
        except psutil.NoSuchProcess:
            continue  # exited between the listing and the reading: counted by the parent next time
        total += own.user + own.system
    return total


def sample(watched: list[Watched], threads: Mapping[str, int | None] | None = None) -> dict[str, float]:
    """CPU-seconds so far of each watched process (absent when it is gone), of the generator, and
    of its own `threads` (name → native thread id) apart from the generator's."""
    seen: dict[str, float] = {}
    for w in watched:
        with contextlib.suppress(psutil.NoSuchProcess):  # gone: left out of this phase
            seen[w.name] = cpu_of(psutil.Process(w.pid), w.tree)
    me = psutil.Process()
    times = me.cpu_times()
    ids = {tid: name for name, tid in (threads or {}).items() if tid is not None}
    apart = {ids[t.id]: t.user_time + t.system_time for t in me.threads() if t.id in ids}
    seen[GENERATOR] = times.user + times.system - sum(apart.values())
    seen[COMMANDS] = times.children_user + times.children_system
    return {**seen, **apart}


def delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """CPU-seconds spent between two samples, per process seen in both. A process restarted in
    between (its counter went back) is left out rather than reported negative."""
    return {name: after[name] - before[name] for name in before if name in after and after[name] >= before[name]}


def pids_cpu(pids: list[int]) -> dict[int, float]:
    """CPU-seconds so far of each of `pids` still alive."""
    seen: dict[int, float] = {}
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = psutil.Process(pid).cpu_times()
            seen[pid] = times.user + times.system
    return seen


def pids_delta(before: Mapping[int, float], after: Mapping[int, float]) -> float:
    """CPU-seconds spent between two readings by the processes alive at the second: all of a new
    one's time (it started in between); a reused pid (its counter went back) counts from zero."""
    return sum(now - (before.get(pid, 0.0) if now >= before.get(pid, 0.0) else 0.0) for pid, now in after.items())


def per_journey(spent: Mapping[str, float], journeys: int) -> dict[str, float]:
    if journeys <= 0:
        return {}
    return {name: seconds / journeys for name, seconds in spent.items()}


SYSTEM = (GENERATOR, COMMANDS, BILLING, DB_BACKENDS)


def system_total(spent: Mapping[str, float]) -> float:
    """The system's CPU: everything but the generator, its commands and the billing (reported
    apart), and without counting the database's backends twice."""
    return sum(seconds for name, seconds in spent.items() if name not in SYSTEM)


def pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def run_dir() -> Path:
    """The stack's run directory (deploy/local/stack.sh, FLEXENROLL_RUN_DIR), else .run."""
    found = stack_value("FLEXENROLL_RUN_DIR")
    return Path(found) if found else ROOT / ".run"


def stack_processes(services: list[str], run: Path | None = None) -> list[Watched]:
    """`make up`'s processes from their pid files in the run directory: services/<name>.pid, the
    broker's kafka/kafka.pid (deploy/local/kafka.sh) and the postmaster's postgres/data/postmaster.pid."""
    run = run or run_dir()
    found = [Watched(n, p) for n in services if (p := pid_in(run / "services" / f"{n}.pid"))]
    if postmaster := pid_in(run / "postgres" / "data" / "postmaster.pid"):
        found.append(Watched("postgresql", postmaster, tree=True))
    if broker := pid_in(run / "kafka" / "kafka.pid"):
        found.append(Watched("kafka", broker))
    return found
