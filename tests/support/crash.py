"""The crash machinery of the end-to-end tests: killing and restarting a service's process, watching
its consumer group being taken over, and looking into (and holding) the services' databases as the
administrator."""

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient

from tests.support.applicant import eventually
from tests.support.infra import KAFKA_ADMIN, admin_url_of
from tests.support.processes import ServiceProcess

# --- crashing and restarting ----------------------------------------------------------------------


def crash(service: ServiceProcess) -> None:
    """kill -9: no shutdown hooks, no offset commits, no flushing."""
    assert service.process is not None and service.process.poll() is None, f"{service.name} was not running"
    service.kill()
    assert service.process.returncode == -signal.SIGKILL


def restart(service: ServiceProcess) -> None:
    """A new process of the service: same settings, port, database and consumer group prefix."""
    old = service.process
    service.start()
    assert service.process is not old


def group_members(group: str) -> tuple[str, set[str]]:
    """A consumer group's state and its member ids, as the broker sees them."""

    async def describe() -> tuple[str, set[str]]:
        admin = AIOKafkaAdminClient(**KAFKA_ADMIN.options())
        await admin.start()
        try:
            [response] = await admin.describe_consumer_groups([group])
        finally:
            await admin.close()
        [(error_code, _, state, _, _, members)] = response.groups
        assert error_code == 0, f"describe {group}: error {error_code}"
        return str(state), {str(m[0]) for m in members}

    return asyncio.run(describe())


def group(system: dict[str, ServiceProcess], service: str, purpose: str) -> str:
    return f"{system[service].env['CONSUMER_GROUP_PREFIX']}{service}.{purpose}"


def await_takeover(group_id: str, dead: set[str]) -> None:
    """Until the group is stable without the killed process's members: the new process owns the
    partitions and has resumed from the committed offsets (the broker drops a killed member after
    its session timeout, 10 s)."""

    def taken_over() -> bool:
        state, members = group_members(group_id)
        return state == "Stable" and bool(members) and not members & dead

    eventually(taken_over, f"the new process to take over consumer group {group_id}", timeout=60)


# --- looking into the services' databases -----------------------------------------------------------
# As the administrator: the test reads every service's schema and installs triggers on their tables.


def sql(system: dict[str, ServiceProcess], query: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(admin_url_of(system["notify"].env["DATABASE_URL"]))
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


def ddl(system: dict[str, ServiceProcess], statements: str) -> None:
    """Several statements in one go (the simple query protocol), e.g. to install a trigger."""

    async def run() -> None:
        conn = await asyncpg.connect(admin_url_of(system["notify"].env["DATABASE_URL"]))
        try:
            await conn.execute(statements)
        finally:
            await conn.close()

    asyncio.run(run())


@contextlib.contextmanager
def hold(
    system: dict[str, ServiceProcess], table: str, operation: str, when: str, column: str, key: str
) -> Iterator[Callable[[], bool]]:
    """Fault injection: a trigger makes a service's `operation` on `table` (schema-qualified) wait,
    inside its transaction, while the row's `column` equals `key` and the hold is on. Yields a probe
    "is a statement waiting in the hold?". On leaving, the hold is released (the waiting statement
    goes on; if its process was killed meanwhile, its transaction never commits) and removed."""
    name = "e2e_hold_" + table.replace(".", "_")
    ddl(
        system,
        f"""
        CREATE TABLE public.{name} (key text PRIMARY KEY);
        CREATE FUNCTION public.{name}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
        BEGIN
            FOR i IN 1..600 LOOP  -- at most a minute; each check sees the latest commit
                EXIT WHEN NOT EXISTS (SELECT 1 FROM public.{name} h WHERE h.key = NEW.{column}::text);
                PERFORM pg_sleep(0.1);
            END LOOP;
            RETURN NEW;
        END $$;
        CREATE TRIGGER {name} BEFORE {operation} ON {table} FOR EACH ROW WHEN ({when})
            EXECUTE FUNCTION public.{name}();
        """,
    )
    sql(system, f"INSERT INTO public.{name} VALUES ($1)", key)
    statement = f"{operation} %{table.rpartition('.')[2]}%"

    def waiting() -> bool:
        query = (
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep' "
            "AND query ILIKE $1"
        )
        return bool(sql(system, query, f"%{statement}"))

    try:
        yield waiting
    finally:
        # Released first, in a transaction of its own: the waiting statement ends (and, its client
        # gone, never commits), which frees the table for DROP TRIGGER.
        sql(system, f"DELETE FROM public.{name}")
        ddl(system, f"DROP TRIGGER {name} ON {table}; DROP FUNCTION public.{name}(); DROP TABLE public.{name}")


def published(system: dict[str, ServiceProcess], schema: str, event_type: str, application_id: str) -> bool:
    """The service stored the event of the application and its relay has handed it to the broker
    (the outbox row is deleted only after the broker acknowledged it)."""
    rows = sql(
        system,
        f"SELECT o.position IS NULL AS published FROM {schema}.events e LEFT JOIN {schema}.outbox o USING (position) "
        "WHERE e.event_type = $1 AND e.data->>'application_id' = $2",
        event_type,
        application_id,
    )
    return bool(rows) and all(r["published"] for r in rows)


def stored_events(system: dict[str, ServiceProcess], schema: str, event_type: str, key: str, value: str) -> int:
    query = f"SELECT count(*) AS n FROM {schema}.events WHERE event_type = $1 AND data->>$2 = $3"
    rows = sql(system, query, event_type, key, value)
    return int(rows[0]["n"])
