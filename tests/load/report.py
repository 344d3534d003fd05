"""The figures of a load run: per phase, journeys/s sustained and whether a backlog grew, the
latencies' p50/p95/p99, and the headline, CPU-seconds per journey per process; printed as rich
tables and written as JSON (docs/benchmarks.md, "Cost per journey")."""

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tests.load.cost import SYSTEM, per_journey, system_total
from tests.load.generator import Run
from tests.load.phone import JourneyResult
from tests.load.stats import Backlog, Spread, backlog

# name → (first mark, last mark): seconds between two marks of one journey
INTERVALS = {
    "submit → under_review visible": ("submit_sent", "under_review"),
    "decision → status visible": ("decision_sent", "approved"),
    "payment notification → active": ("payment_sent", "active"),
}


@dataclass
class Phase:
    name: str
    offered_per_s: float
    journeys: int
    reached: dict[str, int]  # state → journeys that stopped there
    ok: int  # journeys that reached what was expected
    sustained_per_s: float  # ok journeys ÷ the phase's elapsed time
    elapsed_s: float
    generator_max_lag_s: float
    backlog: Backlog
    latency: dict[str, Spread]
    cpu_seconds: dict[str, float]
    cpu_per_journey: dict[str, float]
    system_cpu_per_journey: float  # everything but the generator and its commands
    requests_per_journey: float
    failures: list[dict[str, Any]]


def spreads(results: list[JourneyResult]) -> dict[str, Spread]:
    done = [r for r in results if r.ok]
    found = {"journey, from its intended start": Spread.of([r.marks["end"] for r in done])}
    for name, (first, last) in INTERVALS.items():
        values = [r.marks[last] - r.marks[first] for r in done if first in r.marks and last in r.marks]
        if values:
            found[name] = Spread.of(values)
    sms = [r.sms_after_decision for r in done if r.sms_after_decision is not None]
    if sms:
        found["decision → SMS sent"] = Spread.of(sms)
    return found


def phase(name: str, rate: float, run: Run[JourneyResult], cpu: dict[str, float]) -> Phase:
    results = [o.result for o in run.outcomes if o.result is not None]
    ok = [r for r in results if r.ok]
    count = len(run.outcomes)
    ends = [o.ended for o in run.outcomes]  # a failed journey ended too: only a cancelled one did not
    latencies = [o.result.marks.get("end") if o.result is not None and o.result.ok else None for o in run.outcomes]
    failures = [
        {"index": r.index, "reached": r.reached, "expected": r.expected, "error": r.error} for r in results if not r.ok
    ]
    return Phase(
        name=name,
        offered_per_s=rate,
        journeys=count,
        reached=dict(Counter(r.reached for r in results)),
        ok=len(ok),
        sustained_per_s=len(ok) / run.elapsed if run.elapsed > 0 else 0.0,
        elapsed_s=run.elapsed,
        generator_max_lag_s=run.max_lag,
        backlog=backlog([o.intended for o in run.outcomes], ends, latencies),
        latency=spreads(results),
        cpu_seconds=cpu,
        cpu_per_journey=per_journey(cpu, count),
        system_cpu_per_journey=system_total(cpu) / count if count else 0.0,
        requests_per_journey=sum(r.requests for r in results) / count if count else 0.0,
        failures=failures,
    )


def _ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1000:.0f}"


def cpu_table(phases: list[Phase]) -> Table:
    table = Table(title="CPU per journey (ms of CPU; the headline)")
    table.add_column("process")
    for p in phases:
        table.add_column(f"{p.name} (ms/journey)", justify="right")
        table.add_column("CPU-s total", justify="right")
    names = sorted({n for p in phases for n in p.cpu_seconds}, key=lambda n: (n in SYSTEM, n))
    for name in names:
        cells = [c for p in phases for c in (_ms(p.cpu_per_journey.get(name)), f"{p.cpu_seconds.get(name, 0):.2f}")]
        table.add_row(name, *cells)
    totals = [c for p in phases for c in (_ms(p.system_cpu_per_journey), f"{system_total(p.cpu_seconds):.2f}")]
    table.add_row("[bold]system (all but the generator)[/bold]", *totals)
    return table


def latency_table(p: Phase) -> Table:
    table = Table(title=f"{p.name}: latencies (ms)")
    for column in ("interval", "n", "p50", "p95", "p99"):
        table.add_column(column, justify="left" if column == "interval" else "right")
    for name, s in p.latency.items():
        table.add_row(name, str(s.count), _ms(s.p50), _ms(s.p95), _ms(s.p99))
    return table


def summary(p: Phase) -> str:
    b = p.backlog
    ratio = "–" if b.latency_ratio_last_to_first_third is None else f"{b.latency_ratio_last_to_first_third:.2f}"
    return (
        f"[bold]{p.name}[/bold]: {p.ok}/{p.journeys} reached their expected state {p.reached}; offered "
        f"{p.offered_per_s:g}/s, sustained {p.sustained_per_s:.2f}/s over {p.elapsed_s:.1f} s; last third completed "
        f"{b.completed_per_s_last_third:.2f}/s, in flight at the window's end {b.in_flight_at_window_end}, "
        f"median latency last÷first third {ratio}: backlog grew: {'YES' if b.grew else 'no'}; "
        f"{p.requests_per_journey:.1f} requests/journey; generator's worst lag {p.generator_max_lag_s * 1000:.0f} ms"
    )


def show(console: Console, phases: list[Phase]) -> None:
    for p in phases:
        console.print(summary(p))
        console.print(latency_table(p))
        for failure in p.failures[:10]:
            console.print(f"  journey {failure['index']}: reached {failure['reached']}: {failure['error']}")
    console.print(cpu_table(phases))


def write_json(path: Path, phases: list[Phase], meta: dict[str, Any]) -> None:
    path.write_text(json.dumps({**meta, "phases": [asdict(p) for p in phases]}, ensure_ascii=False, indent=2) + "\n")
