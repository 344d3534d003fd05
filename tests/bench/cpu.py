"""CPU-seconds spent by this process, the PostgreSQL cluster and the Kafka broker, read cheaply.

Process CPU is `time.process_time()` (user + system of every thread of this process). The
cluster's is the sum over the postmaster listening on DATABASE_URL's port and its children
(sampled four times a second, so a backend that exits loses at most its last quarter second),
and the broker's is the JVM listening on KAFKA_BOOTSTRAP's port, both from psutil. On a shared machine other clients'
work is in those two figures too: they are indicative; the process's own is exact. Work done in
a child process (the rebuild workers) is counted by the child and reported separately.
"""

import contextlib
import functools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import psutil

from tests.support.infra import DATABASE_URL, KAFKA_BOOTSTRAP


@dataclass
class Cpu:
    """CPU-seconds over one measured span (None: not readable here)."""

    process: float = 0.0
    postgres: float | None = None
    broker: float | None = None

    def per_thousand(self, events: int) -> tuple[float, float | None, float | None]:
        k = max(events, 1) / 1000
        return (
            self.process / k,
            None if self.postgres is None else self.postgres / k,
            None if self.broker is None else self.broker / k,
        )


def _seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def _listener(name: str, port: int) -> psutil.Process | None:
    """The `name` process listening on `port` (other stacks on the machine listen elsewhere)."""
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] != name:
            continue
        with contextlib.suppress(psutil.Error):
            if any(c.laddr.port == port and c.status == psutil.CONN_LISTEN for c in proc.net_connections("tcp")):
                return proc
    return None


@functools.cache
def _postmaster() -> psutil.Process | None:
    return _listener("postgres", urlsplit(DATABASE_URL).port or 5432)


@functools.cache
def _broker() -> psutil.Process | None:
    return _listener("java", int(KAFKA_BOOTSTRAP.split(",")[0].rsplit(":", 1)[1]))


def _postgres() -> dict[int, float]:
    """The cluster of DATABASE_URL: its postmaster and every child (backends, writers, ...)."""
    postmaster = _postmaster()
    found: dict[int, float] = {}
    if postmaster is None:
        return found
    with contextlib.suppress(psutil.Error):
        for proc in (postmaster, *postmaster.children()):
            with contextlib.suppress(psutil.Error):
                found[proc.pid] = _seconds(proc)
    return found


def _broker_seconds() -> float | None:
    proc = _broker()
    if proc is None:
        return None
    try:
        return _seconds(proc)
    except psutil.Error:
        return None


class _PostgresWatch:
    """The cluster's processes read every `interval` seconds in a thread, so that a backend that
    is born and exits during the span (a worker process's) is counted up to its last reading."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.first = _postgres()
        self.last = dict(self.first)
        self.own_cpu = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-cpu", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        started = time.thread_time()
        while not self._stop.wait(self.interval):
            self.last.update(_postgres())
        self.own_cpu = time.thread_time() - started  # not the measured work's: subtracted

    def stop(self) -> float | None:
        self._stop.set()
        self._thread.join()
        self.last.update(_postgres())
        if not self.last:
            return None
        return sum(seconds - self.first.get(pid, 0.0) for pid, seconds in self.last.items())


@contextlib.contextmanager
def measured() -> Iterator[Cpu]:
    """CPU of the block, filled in when it ends."""
    cpu = Cpu()
    pg, broker, process = _PostgresWatch(), _broker_seconds(), time.process_time()
    try:
        yield cpu
    finally:
        cpu.postgres = pg.stop()
        cpu.process = time.process_time() - process - pg.own_cpu
        broker_after = _broker_seconds()
        if broker is not None and broker_after is not None:
            cpu.broker = broker_after - broker
