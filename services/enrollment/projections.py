"""Read models of enrollment, built from events: people (from identity.events) and the facts
of the status projection (from every topic). Both are order-tolerant and idempotent.

`people` is enrollment's one clear copy of a person (phone, name, birth date: opened from the
sealed events with the person's key, docs/personal-data.md); `PersonErased` deletes the row and
remembers the person as erased, so that no late or replayed event brings the data back. The status
facts keep envelopes as they came: their sealed fields stay sealed."""

from collections.abc import Sequence
from datetime import date, datetime
from uuid import UUID

import asyncpg

from contracts.envelope import Envelope
from contracts.events.identity import UserVerified
from kernel.db import Connection, Executor
from kernel.eventstore import envelope_columns
from services.enrollment.domain import Person
from services.enrollment.status import links

# Each event fills only its own columns, so UserVerified before UserRegistered (a replay) and
# the other way round end in the same row. Nothing is written for an erased person.
_NOT_ERASED = "WHERE NOT EXISTS (SELECT 1 FROM erased_people WHERE user_id = $1)"
_UPSERT_PHONE = f"""
INSERT INTO people (user_id, phone) SELECT $1, $2 {_NOT_ERASED}
ON CONFLICT (user_id) DO UPDATE SET phone = EXCLUDED.phone
"""
_UPSERT_VERIFIED = f"""
INSERT INTO people (user_id, name, birth_date, gender, id_number_masked, verified_at)
SELECT $1, $2, $3::date, $4, $5, $6 {_NOT_ERASED}
ON CONFLICT (user_id) DO UPDATE SET name = EXCLUDED.name, birth_date = EXCLUDED.birth_date,
    gender = EXCLUDED.gender, id_number_masked = EXCLUDED.id_number_masked, verified_at = EXCLUDED.verified_at
"""


async def record_registered(conn: Connection, user_id: UUID, phone: str) -> None:
    """The phone of a `UserRegistered`, opened."""
    await conn.execute(_UPSERT_PHONE, user_id, phone)


async def record_verified(conn: Connection, e: UserVerified, name: str, birth_date: date) -> None:
    """A `UserVerified` with its sealed name and birth date, opened."""
    await conn.execute(_UPSERT_VERIFIED, e.user_id, name, birth_date, e.gender, e.id_number_masked, e.verified_at)


async def erase_person(conn: Connection, user_id: UUID, erased_at: datetime) -> None:
    """`PersonErased`: the person's clear data leaves enrollment."""
    await conn.execute(
        "INSERT INTO erased_people (user_id, erased_at) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING",
        user_id,
        erased_at,
    )
    await conn.execute("DELETE FROM people WHERE user_id = $1", user_id)


async def person(conn: Executor, user_id: UUID) -> Person | None:
    row = await conn.fetchrow(
        "SELECT user_id, phone, name, birth_date, gender, id_number_masked FROM people WHERE user_id = $1", user_id
    )
    return Person(**dict(row)) if row else None


# --- applications by applicant: the one-open-application rule -------------------------------


async def enrolled_application(conn: Executor, applicant_id: UUID) -> UUID | None:
    """The person's approved application, if any: after approval they are enrolled, not applying."""
    found: UUID | None = await conn.fetchval(
        "SELECT application_id FROM applications WHERE applicant_id = $1 AND approved_at IS NOT NULL", applicant_id
    )
    return found


async def reserve_application(conn: Connection, application_id: UUID, applicant_id: UUID, now: datetime) -> UUID | None:
    """Record a new open application; when the person has one open already, return its id instead
    (the partial unique index decides races between two requests)."""
    try:
        async with conn.transaction():  # a savepoint: the caller's transaction survives the refusal
            await conn.execute(
                "INSERT INTO applications (application_id, applicant_id, created_at) VALUES ($1, $2, $3)",
                application_id,
                applicant_id,
                now,
            )
        return None
    except asyncpg.UniqueViolationError:
        existing: UUID = await conn.fetchval(
            "SELECT application_id FROM applications WHERE applicant_id = $1 AND approved_at IS NULL", applicant_id
        )
        return existing


async def close_application(conn: Connection, application_id: UUID, approved_at: datetime) -> None:
    """After approval the person is enrolled: the application no longer counts as open."""
    await conn.execute(
        "UPDATE applications SET approved_at = $2 WHERE application_id = $1", application_id, approved_at
    )


# --- facts of the status projection ------------------------------------------------------------

_INSERT_FACTS = """
INSERT INTO {table} (event_id, stream_id, stream_version, event_type, schema_version, occurred_at,
                     correlation_id, causation_id, data, producer, application_id, person_id)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::int[], $6::timestamptz[],
                     $7::text[], $8::text[], $9::jsonb[], $10::text[], $11::uuid[], $12::uuid[])
ON CONFLICT (event_id) DO NOTHING
"""
_FACT_COLUMNS = (
    "event_id, event_type, schema_version, stream_id, stream_version, occurred_at, producer, "
    "correlation_id, causation_id, data"
)


async def record_facts(conn: Connection, envelopes: Sequence[Envelope], *, table: str = "status_facts") -> None:
    """Add facts to the set; a fact already there (same event_id) is left as it is.

    `table`: another table of the same shape (`flexctl projection rebuild` fills a shadow)."""
    if not envelopes:
        return
    keys = [links(e) for e in envelopes]
    columns = [
        *envelope_columns(envelopes),  # the envelope as the event store keeps it, then the links
        [e.producer for e in envelopes],
        [k[0] for k in keys],
        [k[1] for k in keys],
    ]
    await conn.execute(_INSERT_FACTS.format(table=table), *columns)


def _envelope(row: asyncpg.Record) -> Envelope:
    return Envelope.model_validate(dict(row))


async def facts_of(conn: Executor, application_id: UUID) -> list[Envelope]:
    """The application's own facts plus its applicant's personal ones (payments, messages)."""
    rows = await conn.fetch(
        f"""
        WITH owner AS (
            SELECT person_id FROM status_facts WHERE application_id = $1 AND person_id IS NOT NULL LIMIT 1
        )
        SELECT {_FACT_COLUMNS} FROM status_facts WHERE application_id = $1
        UNION ALL
        SELECT {_FACT_COLUMNS} FROM status_facts
        WHERE application_id IS NULL AND person_id = (SELECT person_id FROM owner)
        """,
        application_id,
    )
    return [_envelope(r) for r in rows]


async def applications_of(conn: Executor, person_id: UUID) -> list[UUID]:
    rows = await conn.fetch(
        "SELECT DISTINCT application_id FROM status_facts WHERE person_id = $1 AND application_id IS NOT NULL",
        person_id,
    )
    return [r["application_id"] for r in rows]
