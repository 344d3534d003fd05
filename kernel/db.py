"""PostgreSQL pool, provisioning and migrations. Every service works inside its own schema, as
its own role that owns only that schema (docs/personal-data.md, "In the databases")."""

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from kernel.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str


def migrations_from(package: str, folder: str = "migrations") -> list[Migration]:
    """The `NNN_name.sql` files of a package's folder, in name order."""
    root = resources.files(package).joinpath(folder)
    files = sorted((f for f in root.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [Migration(name=f"{package}:{f.name}", sql=f.read_text(encoding="utf-8")) for f in files]


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class _Connection(asyncpg.Connection):
    """A pooled connection that remembers whether it was given session state: a LISTEN or a
    session advisory lock (the relay's leadership, notify's sender, a projection rebuild).

    asyncpg's pool resets every connection it takes back (`UNLISTEN *`, `pg_advisory_unlock_all()`,
    `CLOSE ALL`, `RESET ALL`): one more round trip per request and per consumer batch, for state
    almost no code leaves. Nothing here leaves any other session state: no `SET` (the search path
    is a start-up parameter), no temporary tables, no cursors outside a transaction, and prepared
    statements are asyncpg's own cache, which its reset keeps too; an open transaction is rolled
    back by asyncpg whatever the reset. So only a connection that LISTENed or took a session lock
    gets the full reset (`_reset_session`), even if its user already undid both, which keeps
    the guarantee that a leaked lock never outlives its user. New session state must be added here.
    """

    _holds_session_state = False

    def _mark(self, query: str) -> None:
        # pg_advisory_lock, pg_try_advisory_lock and their _shared forms; not the _xact_ ones,
        # which the transaction's end releases.
        if "advisory_lock" in query or "LISTEN" in query.upper():
            self._holds_session_state = True

    async def add_listener(self, channel: str, callback: Any) -> None:
        self._holds_session_state = True
        await super().add_listener(channel, callback)

    async def execute(self, query: str, *args: object, timeout: float | None = None) -> str:
        self._mark(query)
        return await super().execute(query, *args, timeout=timeout)

    async def fetchval(self, query: str, *args: object, column: int = 0, timeout: float | None = None) -> Any:
        self._mark(query)
        return await super().fetchval(query, *args, column=column, timeout=timeout)


async def _reset_session(conn: asyncpg.Connection) -> None:
    """The pool's reset on release (asyncpg has already rolled back and forgotten listeners)."""
    if isinstance(conn, _Connection) and conn._holds_session_state:
        if query := conn.get_reset_query():
            await conn.execute(query)
        conn._holds_session_state = False


class SchemaMissing(RuntimeError):
    """The service's schema is not there for its role: an operator has to provision it first."""


async def create_pool(
    database_url: str,
    schema: str,
    min_size: int = 1,
    max_size: int = 10,
    *,
    user: str,
    password: str,
) -> asyncpg.Pool:
    """A pool on `database_url` (host, port and database; a user or password in it is overridden)
    connected as the service's own role `user`, working in `schema`.

    A service never creates its schema: provisioning does (`provision`, run by `make up`,
    `flexctl db provision` and the tests), so a role that may not create schemas is enough
    (docs/personal-data.md, "In the databases")."""
    pool = await asyncpg.create_pool(
        database_url,
        user=user,
        password=password,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        connection_class=_Connection,
        reset=_reset_session,
        server_settings={"search_path": schema, "application_name": f"flexenroll-{schema}"},
    )
    assert pool is not None
    try:
        owner = await pool.fetchval("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = $1", schema)
    except BaseException:
        await pool.close()
        raise
    if owner != user:
        await pool.close()
        where = "does not exist" if owner is None else f"belongs to role {owner}, not to {user}"
        raise SchemaMissing(
            f'schema "{schema}" {where}: provision it for role {user} first '
            "(flexctl db provision SERVICE; locally make up does it for every service)"
        )
    return pool


_PROVISION_LOCK = "flexenroll.provision"
# SCRAM-SHA-256 verifiers are computed here, so a clear password never reaches the server (not
# even its log); 4096 iterations is PostgreSQL's own default (scram_iterations).
_SCRAM_ITERATIONS = 4096


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = _SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677)."""
    salt = os.urandom(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = base64.b64encode
    return f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}${b64(stored_key).decode()}:{b64(server_key).decode()}"


def _verifier_matches(verifier: str | None, password: str) -> bool:
    try:
        method, rest = (verifier or "").split("$", 1)
        params, _keys = rest.split("$", 1)
        iterations, salt = params.split(":", 1)
        expected = scram_verifier(password, base64.b64decode(salt), int(iterations))
    except ValueError:
        return False
    return method == "SCRAM-SHA-256" and hmac.compare_digest(expected, verifier or "")


async def provision(admin_url: str, role: str, password: str, schema: str) -> None:
    """Create (or bring back in line) a service's role and give it its schema; idempotent.

    Run with the administrator's connection (`admin_url`), never by a service. The role may log
    in with `password` (scram-sha-256) and nothing else: no superuser, no CREATEDB, no
    CREATEROLE, no CREATE on the database; it owns `schema` (created here with
    `AUTHORIZATION role`, or handed over with everything in it if another role owned it)."""
    conn = await asyncpg.connect(admin_url)
    try:
        async with conn.transaction():
            # One provisioning at a time: CREATE ROLE is not "IF NOT EXISTS", and test sessions
            # provision the same roles concurrently.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", _PROVISION_LOCK)
            me = await conn.fetchval("SELECT current_user")
            if role == me:
                raise ValueError(f"{role} is the administrator who provisions: a service needs a role of its own")
            found = await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = $1", role)
            if found:
                raise ValueError(f"role {role} is a superuser: a service must not run as one; choose another DB_USER")
            stored = None
            if found is not None and await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
                # Only a superuser reads verifiers; an unchanged password is then not rewritten.
                stored = await conn.fetchval("SELECT rolpassword FROM pg_authid WHERE rolname = $1", role)
            rights = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
            verb = "CREATE" if found is None else "ALTER"
            if not _verifier_matches(stored, password):
                rights += f" PASSWORD {_literal(scram_verifier(password))}"
            await conn.execute(f"{verb} ROLE {_ident(role)} {rights}")
            database = _ident(await conn.fetchval("SELECT current_database()"))
            await conn.execute(f"REVOKE CREATE ON DATABASE {database} FROM {_ident(role)}")
            await conn.execute(f"GRANT CONNECT ON DATABASE {database} TO {_ident(role)}")
            # PostgreSQL 15 no longer lets everyone create in `public`; an older external cluster does.
            if await conn.fetchval(
                "SELECT CASE WHEN to_regnamespace('public') IS NULL THEN false "
                "ELSE has_schema_privilege('public', 'public', 'CREATE') END"
            ):
                await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
            owner = await conn.fetchval("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = $1", schema)
            if owner is None:
                await conn.execute(f"CREATE SCHEMA {_ident(schema)} AUTHORIZATION {_ident(role)}")
            elif owner != role:
                await _hand_over(conn, schema, role)
    finally:
        await conn.close()
    log.info("schema_provisioned", role=role, schema=schema)


async def _hand_over(conn: asyncpg.Connection, schema: str, role: str) -> None:
    """A schema created before services had roles of their own (it belonged to the administrator):
    the service's role becomes the owner of the schema and of everything in it."""
    await conn.execute(f"ALTER SCHEMA {_ident(schema)} OWNER TO {_ident(role)}")
    kinds = {"r": "TABLE", "p": "TABLE", "f": "FOREIGN TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE"}
    relations = await conn.fetch(
        "SELECT c.relname, c.relkind::text AS kind FROM pg_class c "
        "WHERE c.relnamespace = to_regnamespace($1) AND c.relkind::text = ANY($2::text[]) "
        # sequences owned by a table's column follow their table
        "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i') "
        "AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass)",
        schema,
        list(kinds),
    )
    for r in relations:
        await conn.execute(f"ALTER {kinds[r['kind']]} {_ident(schema)}.{_ident(r['relname'])} OWNER TO {_ident(role)}")
    routines = await conn.fetch(
        "SELECT p.oid::regprocedure::text AS signature, p.prokind::text AS kind FROM pg_proc p "
        "WHERE p.pronamespace = to_regnamespace($1)",
        schema,
    )
    for r in routines:
        verb = "PROCEDURE" if r["kind"] == "p" else "AGGREGATE" if r["kind"] == "a" else "FUNCTION"
        await conn.execute(f"ALTER {verb} {r['signature']} OWNER TO {_ident(role)}")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def migrate(pool: asyncpg.Pool, schema: str, migrations: Sequence[Migration]) -> list[str]:
    """Apply what is new, once, under an advisory lock so that concurrent starts take turns."""
    kernel = migrations_from("kernel")
    applied: list[str] = []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"{schema}.migrate")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for migration in [*kernel, *migrations]:
            if migration.name in done:
                continue
            await conn.execute(migration.sql)
            await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", migration.name)
            applied.append(migration.name)
    if applied:
        log.info("migrations_applied", schema=schema, migrations=applied)
    return applied


async def drop_schema(admin_url: str, schema: str) -> None:
    """For tests: remove a schema and everything in it, with the administrator's connection."""
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {_ident(schema)} CASCADE")
    finally:
        await conn.close()


# What a caller holds inside `async with pool.acquire() as conn`: either kind works everywhere.
Connection = asyncpg.Connection | PoolConnectionProxy
Executor = Connection | asyncpg.Pool


# What a request meets while PostgreSQL is away (stopped, restarting, refusing connections): not a
# fault of ours or of the request, so it is answered 503 with Retry-After (kernel.web), never 500.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.PostgresConnectionError,  # cannot connect now, connection lost, rejected, …
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    ConnectionError,  # refused, reset: the socket under asyncpg
)


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) says the database cannot be reached right now."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, _UNAVAILABLE):
            return True
        if isinstance(seen, asyncpg.InterfaceError) and "closed" in str(seen):
            return True  # a connection or pool closed under us by a restart
        seen = seen.__cause__ or seen.__context__
    return False
