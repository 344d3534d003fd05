"""Rebuild of the status projection from the topics, into a shadow table, then a switch.

`status_facts` is a SET of facts keyed by event_id (see projections.py), so a rebuild is a union:
the shadow is filled from the topics with the live handler's own insert
(`projections.record_facts`), then, in one short transaction that holds off writers (readers go
on until the rename), every live fact the shadow lacks is copied over (facts that arrived while
the topics were read), the shadow takes the live table's name and its indexes the live ones'
names, and the old table is dropped (or kept as `status_facts_old`).

Writers blocked by the lock resolve `status_facts` again once it is released, so they write to
the new table: no fact is lost and no writer fails.

Only `status_facts` is rebuilt. `people` (identity's facts, upserted column by column) and
`applications` (written by enrollment's own commands, with the one-open-application rule) are
not sets of facts and are left alone.

The caller (`flexctl projection rebuild enrollment-status`) reads `TOPICS`; this module owns
the tables. Every function works on one connection whose search_path is the service's schema.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from contracts.envelope import Envelope
from contracts.topics import ENROLLMENT_EVENTS
from kernel.consumer import INFRASTRUCTURE_ERRORS
from kernel.db import Connection
from kernel.logging import get_logger
from services.enrollment import projections
from services.enrollment.status import FACT_TYPES, SUBSCRIBED_TOPICS

log = get_logger(__name__)

LIVE = "status_facts"
SHADOW = "status_facts_rebuild"
OLD = "status_facts_old"
# Live, the facts come from two places: enrollment's own events, recorded by the service layer as
# it appends them (on enrollment.events), and the `status` subscription's topics. A rebuild reads both.
TOPICS: tuple[str, ...] = (ENROLLMENT_EVENTS, *SUBSCRIBED_TOPICS)
FACT_EVENT_TYPES = frozenset(cls.event_type for cls in FACT_TYPES)

Hook = Callable[[], Awaitable[None]]


class RebuildRefused(Exception):
    """The schema is not in a state to rebuild (no live table, a kept old table in the way, ...)."""


@dataclass
class Added:
    facts: int = 0  # fact envelopes offered (duplicates included)
    failed: int = 0  # facts the insert refused (the live consumer dead-letters those)


async def require_live_table(conn: Connection, schema: str) -> None:
    """Refuse early if the projection is not there."""
    found = await conn.fetchval("SELECT to_regclass(format('%I.%I', $1::text, $2::text))", schema, LIVE)
    if found is None:
        raise RebuildRefused(f"no {schema}.{LIVE}: wrong --schema, or the service never started there")


async def lock_rebuild(conn: Connection, schema: str) -> None:
    """One rebuild per schema at a time (a session lock, released when the connection closes)."""
    if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", f"{schema}.{LIVE}.rebuild"):
        raise RebuildRefused(f"another rebuild of {schema}.{LIVE} is running")


async def prepare_shadow(conn: Connection) -> None:
    """An empty shadow with the live table's columns, constraints and indexes."""
    if await conn.fetchval("SELECT to_regclass($1)", LIVE) is None:
        raise RebuildRefused(f"no {LIVE} table here: has the enrollment service ever started on this schema?")
    if await conn.fetchval("SELECT to_regclass($1)", OLD) is not None:
        raise RebuildRefused(f"{OLD} is still there (an earlier --keep-old): drop it first")
    await conn.execute(f"DROP TABLE IF EXISTS {SHADOW}")  # left over by an interrupted rebuild
    await conn.execute(f"CREATE TABLE {SHADOW} (LIKE {LIVE} INCLUDING ALL)")


async def drop_shadow(conn: Connection) -> None:
    """After a failed rebuild (the live table is untouched); best effort, the next one drops it too."""
    try:
        await conn.execute(f"DROP TABLE IF EXISTS {SHADOW}")
    except Exception as exc:
        log.warning("rebuild_shadow_not_dropped", error=repr(exc))


async def add_facts(conn: Connection, envelopes: Sequence[Envelope]) -> Added:
    """Insert the facts among `envelopes` into the shadow, in one transaction, as the live handler
    does; a fact that cannot be inserted is skipped and counted (live, it would be dead-lettered)."""
    facts = list({e.event_id: e for e in envelopes if e.event_type in FACT_EVENT_TYPES}.values())
    added = Added(facts=len(facts))
    if not facts:
        return added
    try:
        if conn.is_in_transaction():  # a savepoint, so that a refused batch spares the caller's
            async with conn.transaction():
                await projections.record_facts(conn, facts, table=SHADOW)
        else:  # one statement is atomic on its own: no BEGIN/COMMIT round trips
            await projections.record_facts(conn, facts, table=SHADOW)
        return added
    except INFRASTRUCTURE_ERRORS:
        raise
    except Exception as exc:
        log.warning("rebuild_batch_failed_one_by_one", error=repr(exc))
    for envelope in facts:
        try:
            async with conn.transaction():
                await projections.record_facts(conn, [envelope], table=SHADOW)
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:
            added.failed += 1
            log.warning("rebuild_fact_skipped", event_id=str(envelope.event_id), error=repr(exc))
    return added


async def fill_without_waiting_for_disk(conn: Connection) -> None:
    """The shadow's inserts commit without waiting for their WAL to reach the disk: a crash can
    lose only the last of them, which a rebuild would redo anyway (the live table is untouched
    until the switch), and the switch's own commit waits for everything written before it."""
    await conn.execute("SET synchronous_commit = off")


async def count(conn: Connection, table: str) -> int:
    return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))


async def switch(conn: Connection, *, keep_old: bool = False, while_locked: Hook | None = None) -> int:
    """Carry over the live facts the shadow lacks and put the shadow in the live table's place,
    in one transaction. Returns how many facts were carried over.

    `while_locked` runs after the copy, with the lock held (tests use it to block a writer)."""
    await conn.execute("RESET synchronous_commit")  # the switch is durable before it returns
    await conn.execute(f"ANALYZE {SHADOW}")  # statistics before it serves reads, outside the lock
    async with conn.transaction():
        # EXCLUSIVE: writers wait, readers go on (until the rename's brief ACCESS EXCLUSIVE).
        await conn.execute(f"LOCK TABLE {LIVE} IN EXCLUSIVE MODE")
        status = await conn.execute(f"INSERT INTO {SHADOW} SELECT * FROM {LIVE} ON CONFLICT (event_id) DO NOTHING")
        carried = int(status.split()[-1])
        if while_locked is not None:
            await while_locked()
        renames = await _index_renames(conn)
        await conn.execute(f"ALTER TABLE {LIVE} RENAME TO {OLD}")
        if keep_old:
            for _, live_name in renames:
                await conn.execute(f'ALTER INDEX "{live_name}" RENAME TO "{live_name[:59]}_old"')
        else:
            await conn.execute(f"DROP TABLE {OLD}")
        await conn.execute(f"ALTER TABLE {SHADOW} RENAME TO {LIVE}")
        for shadow_name, live_name in renames:
            await conn.execute(f'ALTER INDEX "{shadow_name}" RENAME TO "{live_name}"')
    return carried


async def _index_renames(conn: Connection) -> list[tuple[str, str]]:
    """(shadow index, live index) pairs of the same shape, so the new table keeps the index (and
    primary key) names that migrations know."""
    query = """
        SELECT i.relname AS name, x.indisunique AS is_unique,
               substring(pg_get_indexdef(i.oid) FROM ' USING .*$') AS shape
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = to_regclass($1) ORDER BY i.relname
    """
    live: dict[tuple[bool, str], list[str]] = {}
    for row in await conn.fetch(query, LIVE):
        live.setdefault((row["is_unique"], row["shape"]), []).append(row["name"])
    pairs: list[tuple[str, str]] = []
    for row in await conn.fetch(query, SHADOW):
        names = live.get((row["is_unique"], row["shape"]))
        if names:
            pairs.append((row["name"], names.pop(0)))
    return pairs
