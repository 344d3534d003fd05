"""flexctl: the operators' command line (README: "How it is built")."""

import asyncio
import contextlib
import enum
import sys
from collections.abc import AsyncIterator, Coroutine
from typing import Annotated, Any, Literal
from uuid import UUID

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from contracts.envelope import Envelope
from contracts.topics import SERVICES, dlq_topic, events_topic
from kernel.consumer import forget_dead_letters
from kernel.db import migrate, migrations_from
from kernel.eventstore import EventStore, new_correlation_id
from kernel.kafka import KafkaAccess, kafka_access
from kernel.logging import configure_logging
from kernel.problems import Problem
from kernel.relay import OutboxRelay, new_producer, requeue_all
from kernel.runtime import OpenStorage
from kernel.settings import ServiceSettings
from ops.audit_cli import audit_app
from ops.broker_access import OPERATOR
from ops.cli_support import console, use_local_stack
from ops.cli_support import service_pool as _pool
from ops.db_access import admin_url, provision_service
from ops.history import application_history, json_line, summary, when
from ops.kafka_ops import DeadLetter, consumer_lag, read_dead_letters, retry_dead_letters
from ops.payment_cli import payment
from ops.rebuild import RebuildRefused, StatusRebuild
from services.enrollment.settings import EnrollmentSettings
from services.identity.service import Erasure, IdentityService
from services.identity.settings import IdentitySettings

app = typer.Typer(help="Operate flexenroll: staff accounts, projections, dead letters.", no_args_is_help=True)


staff = typer.Typer(help="Reviewer and operator accounts (never self-registered).", no_args_is_help=True)
dlq = typer.Typer(help="Dead letters: messages a consumer could not process.", no_args_is_help=True)
projection = typer.Typer(help="Read models built from the topics.", no_args_is_help=True)
person = typer.Typer(help="People's personal data (docs/personal-data.md).", no_args_is_help=True)
db = typer.Typer(help="The services' database roles and schemas.", no_args_is_help=True)
app.add_typer(db, name="db")
app.add_typer(staff, name="staff")
app.add_typer(person, name="person")
app.add_typer(dlq, name="dlq")
app.add_typer(projection, name="projection")
app.add_typer(payment, name="payment")
app.add_typer(audit_app, name="audit")
ServiceName = Annotated[str, typer.Argument(help="identity, enrollment, review, payment or notify")]


def _kafka() -> KafkaAccess:
    """flexctl is a principal of its own on the broker (ops/broker_access.py: read every topic, send
    to events topics, see every group's lag): KAFKA_USERNAME (default flexctl) and KAFKA_PASSWORD
    (default: the shipped development secret, development only)."""
    return kafka_access(ServiceSettings(service=OPERATOR))


def _settings(service: str) -> ServiceSettings:
    if service not in SERVICES:
        console.print(f"[red]unknown service {service}; one of {', '.join(SERVICES)}[/red]")
        raise typer.Exit(2)
    return ServiceSettings(service=service)


@contextlib.asynccontextmanager
async def _identity_service() -> AsyncIterator[IdentityService]:
    """identity's service layer on identity's own database role and schema (migrated first)."""
    settings = IdentitySettings()
    pool = await _pool(settings)
    try:
        await migrate(pool, settings.db_schema, migrations_from("services.identity"))
        store = EventStore(settings.service, settings.db_schema)
        yield IdentityService.from_settings(OpenStorage(pool, store), settings)
    finally:
        await pool.close()


PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="read the password from the first line of standard input (for scripts); otherwise it is asked for, "
        "hidden. There is no --password option: a command line shows in the process list.",
    ),
]


def _read_password(from_stdin: bool) -> str:
    """The password from a hidden prompt (typed twice) or standard input's first line. Only the line
    ending is removed: a password is never trimmed."""
    if from_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password[:-1] if password.endswith("\r") else password
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        console.print("[red]no password given[/red]")
        raise typer.Exit(2)
    return password


def _run_staff(action: Coroutine[Any, Any, Any]) -> Any:
    try:
        return asyncio.run(action)
    except Problem as problem:
        console.print(f"[red]{problem.code}[/red]: {problem.detail}")
        raise typer.Exit(1) from problem


Account = Annotated[str, typer.Argument(help="the staff account: its user id, or the phone it logs in with")]


async def _add_staff(
    phone: str,
    password: str,
    role: Literal["reviewer", "operator"],
    name: str,
    id_number: str,
    agency: str | None = None,
) -> str:
    async with _identity_service() as service:
        user_id = await service.add_staff(
            phone, password, role, name, id_number, new_correlation_id(), agency_code=agency
        )
        return str(user_id)


@staff.command("add")
def add_staff(
    phone: Annotated[str, typer.Option(help="mainland mobile number, used to log in")],
    name: Annotated[str, typer.Option(help="the staff member's legal name, as on their resident ID card")],
    id_number: Annotated[
        str,
        typer.Option(
            help="the staff member's resident ID number: kept only as identity's keyed hash, so that nobody decides "
            "a case of their own (review: 403 own_case)"
        ),
    ],
    password_stdin: PasswordStdin = False,
    role: Annotated[str, typer.Option(help="reviewer or operator")] = "reviewer",
    agency: Annotated[
        str | None,
        typer.Option(
            help="reviewers only: the accepting agency (受理机构) code of contracts/reference/districts.toml, e.g. "
            "320411; the reviewer then sees and decides only its cases. Without it: a city-level reviewer who sees "
            "every agency's."
        ),
    ] = None,
) -> None:
    """Create a reviewer or operator account linked to its holder's ID number; it logs in at identity's
    POST /v1/sessions."""
    if role not in ("reviewer", "operator"):
        console.print("[red]role must be reviewer or operator[/red]")
        raise typer.Exit(2)
    agency = agency.strip() if agency is not None else None
    if agency is not None and role != "reviewer":
        console.print("[red]--agency is for reviewers only; operators see every agency[/red]")
        raise typer.Exit(2)
    password = _read_password(password_stdin)
    user_id = _run_staff(_add_staff(phone, password, role, name, id_number, agency))  # type: ignore[arg-type]
    where = ""
    if role == "reviewer":
        where = f" at agency [bold]{agency}[/bold]" if agency is not None else " (city-level: every agency)"
    console.print(f"{role} account created{where}: [bold]{user_id}[/bold]")


async def _staff_change(account: str, change: str, **kwargs: Any) -> tuple[UUID, Any]:
    async with _identity_service() as service:
        user_id = await service.account_id(account)
        method = getattr(service, change)
        return user_id, await method(user_id, **kwargs)


@staff.command("disable")
def disable_staff(account: Account) -> None:
    """Disable a staff account: it cannot log in, and every token it holds is refused by every service
    within TOKEN_REVOCATIONS_REFRESH_SECONDS (identity at once)."""
    user_id, _ = _run_staff(_staff_change(account, "disable"))
    console.print(f"staff account [bold]{user_id}[/bold] disabled; its tokens are revoked")


@staff.command("enable")
def enable_staff(account: Account) -> None:
    """Enable a disabled staff account again (it logs in anew: tokens revoked by disabling stay revoked)."""
    user_id, _ = _run_staff(_staff_change(account, "enable"))
    console.print(f"staff account [bold]{user_id}[/bold] enabled")


@staff.command("role")
def change_staff_role(
    account: Account,
    role: Annotated[str, typer.Argument(help="reviewer or operator")],
    agency: Annotated[
        str | None, typer.Option(help="reviewers only: the accepting agency code (none: a city-level reviewer)")
    ] = None,
) -> None:
    """Change a staff member's role (and a reviewer's agency); their tokens of the old role are revoked."""
    if role not in ("reviewer", "operator"):
        console.print("[red]role must be reviewer or operator[/red]")
        raise typer.Exit(2)
    user_id, _ = _run_staff(_staff_change(account, "change_role", role=role, agency_code=agency))
    where = f" at agency {agency}" if agency else ""
    console.print(f"staff account [bold]{user_id}[/bold] is now {role}{where}; its older tokens are revoked")


@staff.command("reset-password")
def reset_staff_password(account: Account, password_stdin: PasswordStdin = False) -> None:
    """Set a new password for a staff account (asked for, hidden, or --password-stdin); its tokens are revoked."""
    password = _read_password(password_stdin)
    user_id, _ = _run_staff(_staff_change(account, "reset_password", password=password))
    console.print(f"password of staff account [bold]{user_id}[/bold] reset; its tokens are revoked")


async def _erase_person(user_id: UUID) -> Erasure:
    settings = IdentitySettings()
    pool = await _pool(settings)
    try:
        await migrate(pool, settings.db_schema, migrations_from("services.identity"))
        store = EventStore(settings.service, settings.db_schema)
        service = IdentityService.from_settings(OpenStorage(pool, store), settings)
        return await service.erase(user_id, new_correlation_id())
    finally:
        await pool.close()


@person.command("erase")
def erase_person(
    user_id: Annotated[UUID, typer.Argument(help="the person's user_id (identity's account id)")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
) -> None:
    """Erase a person (their right to deletion, docs/personal-data.md): delete their data key,
    login and ID-number binding at identity and publish PersonErased. Every sealed copy of their
    phone, name and birth date on every topic becomes unreadable; each service deletes its clear
    copies when PersonErased reaches it. Their applications' history stays. This cannot be undone."""
    if not yes:
        typer.confirm(
            f"Erase the personal data of {user_id}? Their sealed data becomes unreadable for good and they can "
            "no longer log in",
            abort=True,
        )
    try:
        erasure = asyncio.run(_erase_person(user_id))
    except Problem as problem:
        console.print(f"[red]{problem.code}[/red]: {problem.detail}")
        raise typer.Exit(1) from problem
    if erasure.already_erased:
        console.print(f"person {user_id} was erased before: nothing left to delete, no new event")
        return
    deleted = [
        what
        for what, done in (
            ("data key", erasure.key_deleted),
            ("login", erasure.login_deleted),
            ("ID-number binding", erasure.id_binding_deleted),
        )
        if done
    ]
    console.print(f"person [bold]{user_id}[/bold] erased: deleted {', '.join(deleted) or 'nothing'}")
    console.print("PersonErased appended to identity's stream; the services delete their copies when it reaches them")


@db.command("provision")
def db_provision(
    service: ServiceName,
    schema: Annotated[
        str | None, typer.Option(help="the schema (default: SCHEMA_NAME, else the service's name)")
    ] = None,
) -> None:
    """Create the service's role and its schema, or bring them back in line; idempotent.

    The role is DB_USER (default: the service's name) with the password DB_PASSWORD (required
    outside development; in development the shipped one). It logs in with that password and owns
    this schema only: no superuser, no CREATEDB, no CREATEROLE, no CREATE on the database. Runs as
    the administrator of DATABASE_ADMIN_URL (default: the local cluster's administrator over its
    socket, else DATABASE_URL); deploy/local/README.md ("Database roles")."""
    settings = _settings(service)
    if schema is not None:
        settings = settings.model_copy(update={"schema_name": schema})
    asyncio.run(provision_service(settings, admin_url(settings.database_url)))
    console.print(f"role [bold]{settings.db_role}[/bold] owns schema [bold]{settings.db_schema}[/bold]")


@app.command()
def lag(group_prefix: Annotated[str, typer.Option(help="only groups starting with this")] = "") -> None:
    """Consumer lag per group, topic and partition."""
    rows = asyncio.run(consumer_lag(_kafka(), group_prefix))
    table = Table("group", "topic", "partition", "committed", "end", "lag")
    for row in rows:
        style = "red" if row.lag > 1000 else None
        table.add_row(
            row.group, row.topic, str(row.partition), str(row.committed), str(row.end), str(row.lag), style=style
        )
    console.print(table)


@dlq.command("list")
def dlq_list(service: ServiceName, limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50) -> None:
    """The newest dead letters of a service with their error and original coordinates."""
    settings = _settings(service)
    letters = asyncio.run(read_dead_letters(_kafka(), settings.topic(dlq_topic(service)), limit))
    table = Table("partition:offset", "consumer", "original", "event_type", "error")
    for d in letters:
        h = d.headers
        origin = f"{h.get('dlq.original_topic')}[{h.get('dlq.original_partition')}]@{h.get('dlq.original_offset')}"
        table.add_row(
            f"{d.partition}:{d.offset}",
            h.get("dlq.consumer", ""),
            origin,
            h.get("event_type", "?"),
            h.get("dlq.error", "")[:80],
        )
    console.print(table)
    console.print(f"{len(letters)} dead letter(s) on {settings.topic(dlq_topic(service))}")


@dlq.command("retry")
def dlq_retry(
    service: ServiceName,
    at: Annotated[list[str] | None, typer.Option("--at", help="partition:offset of one letter (repeatable)")] = None,
    every: Annotated[bool, typer.Option("--all", help="retry every letter on the topic")] = False,
) -> None:
    """Send dead letters back to their original topic once the cause is fixed.

    The consumer recorded each as dead-lettered; that record is cleared first, so the retried
    message is handled again (by that consumer only: the others already have its event_id)."""
    if not at and not every:
        console.print("[red]say which: --at P:O (repeatable) or --all[/red]")
        raise typer.Exit(2)
    settings = _settings(service)
    letters = asyncio.run(read_dead_letters(_kafka(), settings.topic(dlq_topic(service)), 10_000))
    chosen = [d for d in letters if every or f"{d.partition}:{d.offset}" in set(at or ())]
    asyncio.run(_clear_dead_lettered(settings, chosen))
    sent = asyncio.run(retry_dead_letters(_kafka(), chosen))
    console.print(f"{sent} dead letter(s) sent back to their topics")


async def _clear_dead_lettered(settings: ServiceSettings, letters: list[DeadLetter]) -> None:
    pool = await _pool(settings)
    try:
        for letter in letters:
            try:
                event_id = Envelope.from_json(letter.value or b"").event_id
            except ValueError:
                continue  # undecodable: it was never recorded
            await forget_dead_letters(pool, letter.headers.get("dlq.consumer", ""), [event_id])
    finally:
        await pool.close()


@app.command()
def republish(
    service: ServiceName,
    drain: Annotated[bool, typer.Option(help="publish from here, not via the running service")] = False,
) -> None:
    """Re-send every stored event of a service to its topic (same event ids; consumers ignore
    what they have). It queues them in the outbox; the service's relay sends them."""
    settings = _settings(service)

    async def queue() -> tuple[int, int]:
        pool = await _pool(settings)
        try:
            queued = await requeue_all(pool)
            sent = 0
            if drain:
                producer = new_producer(_kafka(), client_id="flexctl")
                await producer.start()
                try:
                    relay = OutboxRelay(
                        pool, EventStore(service, settings.db_schema), producer, settings.topic(events_topic(service))
                    )
                    with Progress(console=console) as progress:
                        task = progress.add_task(f"publishing {service}.events", total=queued)
                        while n := await relay.publish_batch():
                            sent += n
                            progress.update(task, advance=n)
                finally:
                    await producer.stop()
            return int(queued), sent
        finally:
            await pool.close()

    queued, sent = asyncio.run(queue())
    console.print(
        f"{queued} event(s) queued for {settings.topic(events_topic(service))}"
        + (f", {sent} published" if drain else "")
    )


class ProjectionName(enum.StrEnum):
    enrollment_status = "enrollment-status"


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


_REBUILD_HELP = (
    "Rebuild a projection from the topics into a shadow table, then switch with no downtime.\n\n"
    "enrollment-status: the status_facts table (a set of facts keyed by event_id) is filled again from the five "
    ".events topics, read from the beginning up to the end offsets of the start (no consumer group: no service's "
    "offsets move), into status_facts_rebuild. Then, in one transaction, writers wait a moment (readers go on), "
    "live facts that arrived meanwhile are carried over, the shadow takes the live table's place and the old one "
    "is dropped (or kept with --keep-old). The running service needs no restart.\n\n"
    "Not rebuilt: enrollment's people (identity's facts, merged column by column) and applications (written by "
    "enrollment's own commands, with the one-open-application rule): they are not sets of facts from the topics."
)


@projection.command("rebuild", help=_REBUILD_HELP)
def projection_rebuild(
    name: Annotated[ProjectionName, typer.Argument(help="the projection: enrollment-status")],
    schema: Annotated[str | None, typer.Option(help="the service's schema (default: the service's own)")] = None,
    keep_old: Annotated[bool, typer.Option(help="keep the replaced table as status_facts_old")] = False,
) -> None:
    settings = EnrollmentSettings()
    with _progress() as progress:
        task = progress.add_task(f"reading topics into {name.value}", total=None)
        job = StatusRebuild(
            settings.database_url,
            schema or settings.db_schema,
            _kafka(),
            keep_old=keep_old,
            topic_prefix=settings.topic_prefix,
            on_total=lambda total: progress.update(task, total=total),
            on_progress=lambda n: progress.update(task, advance=n),
            user=settings.db_role,
            password=settings.db_secret(),
        )
        try:
            report = asyncio.run(job.run())
        except RebuildRefused as refused:
            console.print(f"[red]{refused}[/red]")
            raise typer.Exit(1) from refused
    table = Table("", "count", title=f"{job.schema}.status_facts rebuilt", title_justify="left")
    table.add_row("messages read", str(report.messages))
    table.add_row("facts read", str(report.facts))
    table.add_row("facts inserted (distinct)", str(report.inserted))
    table.add_row("carried over (arrived during the rebuild)", str(report.carried_over))
    table.add_row("facts now", str(report.total))
    if report.undecodable or report.failed:
        table.add_row("skipped: undecodable / refused", f"{report.undecodable} / {report.failed}", style="yellow")
    console.print(table)
    if report.missing_topics:
        console.print(f"[yellow]topics not found: {', '.join(report.missing_topics)}[/yellow]")
    console.print("old table kept as status_facts_old" if keep_old else "old table dropped")


@app.command()
def history(
    application_id: Annotated[UUID, typer.Argument(help="the application")],
    as_json: Annotated[bool, typer.Option("--json", help="print the envelopes as JSON lines")] = False,
) -> None:
    """One application's full history across services, read from the topics, in time order.

    Its events, its applicant's identity events, its review cases, text messages and payments; numbers masked."""
    settings = ServiceSettings()
    if as_json:
        entries = asyncio.run(application_history(_kafka(), application_id, topic_prefix=settings.topic_prefix))
    else:
        with _progress() as progress:
            task = progress.add_task("reading topics", total=None)
            entries = asyncio.run(
                application_history(
                    _kafka(),
                    application_id,
                    on_total=lambda total: progress.reset(task, total=total),
                    on_progress=lambda n: progress.update(task, advance=n),
                    topic_prefix=settings.topic_prefix,
                )
            )
    if not entries:
        Console(stderr=True).print(f"[red]no events of application {application_id} on the topics[/red]")
        raise typer.Exit(1)
    if as_json:
        for entry in entries:
            typer.echo(json_line(entry.envelope))
        return
    table = Table("time (UTC)", "topic", "event_type", "stream", "summary", title=f"application {application_id}")
    for entry in entries:
        e = entry.envelope
        table.add_row(when(entry), entry.topic, e.event_type, f"{e.stream_id} v{e.stream_version}", summary(e))
    console.print(table)
    console.print(f"{len(entries)} event(s)")


def main() -> None:
    """The `flexctl` command: warnings and errors go to stderr, masked as everywhere, because
    stdout is the command's answer (`history --json` is read by programs)."""
    configure_logging("flexctl", "WARNING", json=False, stream=sys.stderr)
    use_local_stack()
    app()


if __name__ == "__main__":
    main()
