"""More replicas of a stack's services (issue 11, "Scale out"): processes started as
deploy/local/services.sh starts the first ones, with the same settings but ports of their own, and
what shows that the replicas share the work: their consumer groups' members, and which process's
relay holds its service's advisory lock (kernel/relay.py)."""

import asyncio
import contextlib
import signal
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import psutil
from aiokafka.admin import AIOKafkaAdminClient

from kernel.kafka import KafkaAccess
from tests.support.applicant import eventually
from tests.support.processes import ROOT, free_port, stop_process
from tests.support.stack import VENV_PYTHON, LocalStack


@dataclass
class Replica:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def ready(self) -> bool:
        assert self.process.poll() is None, f"{self.name}'s replica exited: see {self.log}"
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        return False

    def kill(self) -> None:
        """SIGKILL: no shutdown, no lock released, no offsets committed, no leaving the groups."""
        assert self.process.poll() is None, f"{self.name}'s replica was not running"
        self.process.kill()
        assert self.process.wait(10) == -signal.SIGKILL

    def stop(self) -> None:
        stop_process(self.process)


def replica_environment(local: LocalStack) -> dict[str, str]:
    """What services.sh hands a service of this stack: the stack's derived settings (an explicit
    variable wins), never the administrator's URL."""
    env = local.env
    derived = {k: v for k, v in local.stack.derived(env).items() if v and k != "DATABASE_ADMIN_URL"}
    return {**env, **derived, "PYTHONPATH": str(ROOT)}


def start_replica(local: LocalStack, name: str, folder: Path) -> Replica:
    log = folder / f"{name}.log"
    env = {**replica_environment(local), "PORT": str(free_port()), "METRICS_PORT": str(free_port())}
    with log.open("ab") as out:  # the child keeps its own handle
        process = subprocess.Popen(
            [VENV_PYTHON, "-m", f"services.{name}"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    return Replica(name, int(env["PORT"]), process, log)


@contextlib.contextmanager
def second_replicas(local: LocalStack, services: Sequence[str]) -> Iterator[dict[str, Replica]]:
    """One more replica of each of `services`, ready (/readyz), logging beside the stack's file;
    stopped again on leaving (those still running)."""
    folder = local.file.parent / "replicas"
    folder.mkdir(exist_ok=True)
    replicas: dict[str, Replica] = {}
    try:
        for name in services:  # all started first: on 2 cores the imports overlap
            replicas[name] = start_replica(local, name, folder)
        for replica in replicas.values():
            eventually(replica.ready, f"{replica.name}'s second replica to be ready", timeout=90)
        yield replicas
    finally:
        for replica in replicas.values():
            replica.stop()


# --- consumer groups --------------------------------------------------------------------------------


async def _members(kafka: KafkaAccess) -> dict[str, int]:
    admin = AIOKafkaAdminClient(**kafka.options())
    await admin.start()
    try:
        groups = [str(g[0]) for g in await admin.list_consumer_groups()]
        # One group per request: asked for several at once, aiokafka failed to decode the answer here
        # ("Buffer underrun decoding string"); tests/support/crash.py asks for one group too.
        described = [r for group in groups for r in await admin.describe_consumer_groups([group])]
    finally:
        await admin.close()
    found: dict[str, int] = {}
    for response in described:
        for error_code, group_id, state, _, _, members in response.groups:
            assert error_code == 0, f"describe {group_id}: error {error_code}"
            found[str(group_id)] = len(members) if state == "Stable" else 0  # 0: rebalancing
    return found


def group_members(kafka: KafkaAccess) -> dict[str, int]:
    """Every consumer group (`<service>.<purpose>`) and its members while it is stable."""
    return asyncio.run(_members(kafka))


def groups_of(members: dict[str, int], service: str) -> dict[str, int]:
    return {group: n for group, n in members.items() if group.startswith(f"{service}.")}


# --- the relays' leadership ---------------------------------------------------------------------------

# The backends holding a service's relay lock, `pg_try_advisory_lock(hashtext('<schema>.relay'))`: a
# bigint key shows in pg_locks as classid (high half) and objid (low half), objsubid 1.
HOLDERS = """
SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a USING (pid)
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND (l.classid::text::bigint << 32 | l.objid::text::bigint) = hashtext($1)::bigint
"""


async def _holders(admin_url: str, schemas: Sequence[str]) -> dict[str, list[int]]:
    conn = await asyncpg.connect(admin_url)
    try:
        return {s: [int(r["client_port"]) for r in await conn.fetch(HOLDERS, f"{s}.relay")] for s in schemas}
    finally:
        await conn.close()


def local_ports(pid: int) -> set[int]:
    """The local ports of a process's TCP connections (its database connections among them)."""
    with contextlib.suppress(psutil.NoSuchProcess):
        return {c.laddr.port for c in psutil.Process(pid).net_connections(kind="tcp") if c.laddr}
    return set()


def _owner(port: int, pids: Sequence[int]) -> int:
    return next((pid for pid in pids if port in local_ports(pid)), 0)


def relay_leaders(admin_url: str, pids: dict[str, list[int]]) -> dict[str, list[int]]:
    """For each service of `pids` (its schema named after it), one entry per backend holding its
    relay's lock: the pid among `pids[service]` whose connection it is, 0 for any other process.
    `[pid]` is one leader, that process."""
    holders = asyncio.run(_holders(admin_url, list(pids)))
    return {s: [_owner(port, pids[s]) for port in ports] for s, ports in holders.items()}
