"""What must hold once a chaos run has drained (issue 10, "Chaos"): nothing lost, nothing twice.

Each check reads the stores of the services (as the database's administrator, every schema) and
the topics (as the broker's administrator) and answers a `Finding`: what was counted and what
broke. They are written to be run after the faults, when the outboxes had time to empty: a check
that fails names the first few offenders, so that an operator can follow them with
`flexctl history`.
"""

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

import asyncpg

from contracts.envelope import Envelope
from contracts.events import PUBLIC_EVENTS
from contracts.topics import SERVICES, dlq_topic, events_topic
from kernel.kafka import KafkaAccess
from ops.kafka_ops import consumer_lag, replay
from ops.rebuild import StatusRebuild
from services.enrollment import rebuild

SHOWN = 5  # offenders named per failed check


@dataclass(frozen=True)
class Finding:
    check: str
    counted: int  # what the check looked at (events, cases, messages…)
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Stack:
    """Where a chaos run's system keeps its facts."""

    database_url: str  # the database's address, where services log in as their roles
    admin_url: str  # the database's administrator: reads every service's schema
    schemas: Mapping[str, str]  # service → its schema
    kafka: KafkaAccess  # the broker's administrator: reads every topic and group
    topic_prefix: str = ""
    group_prefix: str = ""
    # enrollment's own login, for the rebuild (it works in enrollment's schema as enrollment would)
    enrollment_login: tuple[str, str] = field(default=("enrollment", ""), repr=False)


def _problems(found: Iterable[str]) -> tuple[str, ...]:
    found = list(found)
    if len(found) > SHOWN:
        return (*found[:SHOWN], f"… and {len(found) - SHOWN} more")
    return tuple(found)


async def _events(conn: asyncpg.Connection, schema: str, event_type: str, *fields: str) -> list[asyncpg.Record]:
    picked = "".join(f", data->>'{f}' AS {f}" for f in fields)
    sql = f"SELECT event_id::text AS event_id{picked} FROM {schema}.events WHERE event_type = $1"
    return list(await conn.fetch(sql, event_type))


async def _public_event_ids(conn: asyncpg.Connection, schema: str) -> set[str]:
    """A service's own internal events (e.g. payment's `PeriodBilled`) never leave its store."""
    public = sorted({cls.event_type for cls in PUBLIC_EVENTS})
    sql = f"SELECT event_id::text AS event_id FROM {schema}.events WHERE event_type = ANY($1::text[])"
    return {r["event_id"] for r in await conn.fetch(sql, public)}


async def events_on_topics(stack: Stack) -> Finding:
    """Every stored public event is on its service's topic, found by event_id."""
    conn = await asyncpg.connect(stack.admin_url)
    try:
        stored = {service: await _public_event_ids(conn, schema) for service, schema in stack.schemas.items()}
    finally:
        await conn.close()
    missing: list[str] = []
    for service, ids in stored.items():
        published: set[str] = set()
        async with replay(stack.kafka, [stack.topic_prefix + events_topic(service)]) as source:
            async for records in source.batches():
                published.update(str(Envelope.from_json(r.value or b"").event_id) for r in records)
        missing.extend(f"{service} event {e} is not on its topic" for e in sorted(ids - published))
    return Finding("every stored public event is on its topic", sum(map(len, stored.values())), _problems(missing))


async def outboxes_empty(stack: Stack) -> Finding:
    schemas = stack.schemas.items()
    conn = await asyncpg.connect(stack.admin_url)
    try:
        left = {s: int(await conn.fetchval(f"SELECT count(*) FROM {schema}.outbox")) for s, schema in schemas}
    finally:
        await conn.close()
    return Finding("outboxes empty", len(left), _problems(f"{s}: {n} unpublished" for s, n in left.items() if n))


async def no_lag(stack: Stack) -> Finding:
    rows = await consumer_lag(stack.kafka, stack.group_prefix)
    behind = [f"{r.group} {r.topic}[{r.partition}] lags {r.lag}" for r in rows if r.lag]
    problems = _problems(behind) or (() if rows else ("no consumer group found: nothing was checked",))
    return Finding("consumer lag 0", len(rows), problems)


async def dead_letters_empty(stack: Stack) -> Finding:
    topics = [stack.topic_prefix + dlq_topic(s) for s in SERVICES]
    async with replay(stack.kafka, topics) as source:
        per_topic = Counter[str]()
        for tp in source.ends:
            per_topic[tp.topic] += source.ends[tp] - source.starts[tp]
    return Finding("dead-letter topics empty", len(topics), _problems(f"{t}: {n}" for t, n in per_topic.items() if n))


def _duplicates(what: str, keys: Iterable[object]) -> list[str]:
    return [f"{what} {key} × {n}" for key, n in Counter(keys).items() if n > 1]


async def one_case_per_submission(stack: Stack) -> Finding:
    """One review case per (application, attempt) submitted; no case without a submission."""
    conn = await asyncpg.connect(stack.admin_url)
    try:
        submitted = await _events(conn, stack.schemas["enrollment"], "EnrollmentSubmitted", "application_id", "attempt")
        opened = await _events(conn, stack.schemas["review"], "ReviewCaseOpened", "application_id", "attempt")
    finally:
        await conn.close()
    wanted = Counter((r["application_id"], r["attempt"]) for r in submitted)
    cases = Counter((r["application_id"], r["attempt"]) for r in opened)
    problems = [f"submission {k} has {cases[k]} cases" for k in wanted if cases[k] != 1]
    problems += [f"case for {k} without a submission" for k in cases if k not in wanted]
    problems += _duplicates("submission", (k for k, n in wanted.items() for _ in range(n)))
    return Finding("one review case per submission", len(wanted), _problems(problems))


async def one_sms_per_cause(stack: Stack) -> Finding:
    """One SMS per review decision and per settlement (its receipt), none twice for any cause."""
    conn = await asyncpg.connect(stack.admin_url)
    try:
        causes = [r["event_id"] for r in await _events(conn, stack.schemas["review"], "ReviewDecided")]
        causes += [r["event_id"] for r in await _events(conn, stack.schemas["payment"], "PaymentSettled")]
        sent = await _events(conn, stack.schemas["notify"], "SmsSent", "causation_event_id")
    finally:
        await conn.close()
    per_cause = Counter(r["causation_event_id"] for r in sent)
    problems = [f"cause {c} has {per_cause[c]} SMS" for c in causes if per_cause[c] != 1]
    problems += _duplicates("SMS for cause", (r["causation_event_id"] for r in sent))
    return Finding("one SMS per decision and per settlement", len(causes), _problems(problems))


async def one_settlement_per_transaction(stack: Stack) -> Finding:
    conn = await asyncpg.connect(stack.admin_url)
    try:
        fields = ("channel", "channel_txn_id", "bill_id")
        settled = await _events(conn, stack.schemas["payment"], "PaymentSettled", *fields)
    finally:
        await conn.close()
    problems = _duplicates("channel transaction", ((r["channel"], r["channel_txn_id"]) for r in settled))
    problems += _duplicates("bill settled", (r["bill_id"] for r in settled))
    return Finding("one settlement per channel transaction", len(settled), _problems(problems))


async def status_equals_rebuild(stack: Stack) -> Finding:
    """The live status projection equals one rebuilt from the topics, row by row."""
    user, password = stack.enrollment_login
    schema = stack.schemas["enrollment"]
    job = StatusRebuild(stack.database_url, schema, stack.kafka, user=user, password=password, keep_old=True)
    job.topic_prefix = stack.topic_prefix
    report = await job.run()
    conn = await asyncpg.connect(stack.admin_url)
    try:
        differ = f"(SELECT * FROM {schema}.{{a}} EXCEPT SELECT * FROM {schema}.{{b}})"
        only_old = await conn.fetch(differ.format(a=rebuild.OLD, b=rebuild.LIVE))
        only_new = await conn.fetch(differ.format(a=rebuild.LIVE, b=rebuild.OLD))
        await conn.execute(f"DROP TABLE {schema}.{rebuild.OLD}")
    finally:
        await conn.close()
    problems = [f"live only: {dict(r)}" for r in only_old] + [f"rebuilt only: {dict(r)}" for r in only_new]
    if report.carried_over:
        problems.append(f"{report.carried_over} live facts were not on the topics")
    return Finding("status projection equals a fresh rebuild", report.total, _problems(problems))


CHECKS: tuple[Callable[[Stack], Awaitable[Finding]], ...] = (
    outboxes_empty,
    no_lag,
    dead_letters_empty,
    events_on_topics,
    one_case_per_submission,
    one_sms_per_cause,
    one_settlement_per_transaction,
    status_equals_rebuild,
)


async def check_all(stack: Stack) -> list[Finding]:
    return [await check(stack) for check in CHECKS]
