"""Principals and ACLs on the broker (docs/downstream.md: "Credentials"), created as its admin.

The broker authenticates every client (SASL/SCRAM-SHA-512) and denies what no ACL allows. For a
topic prefix and a consumer-group prefix this module gives:
- each service (contracts.topics.SERVICES): WRITE and DESCRIBE on `<prefix><svc>.events` and
  `<prefix><svc>.dlq` only; READ and DESCRIBE on the events topics contracts.access.SUBSCRIBES
  lists for it; READ on its own consumer groups `<group prefix><svc>.*`;
- `flexctl` (operators): READ and DESCRIBE on every events and dead-letter topic, WRITE on every
  events topic (dead-letter retry, republish), READ and DESCRIBE on every consumer group (lag);
  no cluster rights;
- `subscriber` (downstream readers, contracts/example_subscriber.py): READ and DESCRIBE on every
  events topic, READ on its groups `<group prefix>subscriber.*`;
- `web` (the operators' pages, services/web/operator_routes.py): READ and DESCRIBE on every events
  and dead-letter topic (dead-letter counts, an application's history), DESCRIBE on every consumer
  group (lag); no WRITE anywhere, no group of its own (it reads without joining one).

`make infra-up` runs it after creating the topics (deploy/local/topics.py), the tests for their
session's prefixes (tests/conftest.py). An operator creates a downstream team's principal with
`python -m ops.broker_access downstream NAME` (read-only, like `subscriber`).
"""

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from typing import Annotated, Self

import typer
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)
from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.access import SUBSCRIBER, SUBSCRIBER_GROUP_PREFIX, SUBSCRIBES
from contracts.topics import SERVICES, dlq_topic, events_topic
from kernel.kafka import KafkaAccess
from kernel.settings import (
    DEFAULT_KAFKA_BOOTSTRAP,
    SHIPPED_SECRET_PREFIX,
    Environment,
    KafkaSaslMechanism,
    KafkaSecurityProtocol,
    local_secret,
)

ADMIN = "admin"
OPERATOR = "flexctl"
WEB = "web"
PRINCIPALS = (*SERVICES, OPERATOR, SUBSCRIBER, WEB)
SCRAM_ITERATIONS = 8192
TIMEOUT_S = 30.0

READ, WRITE, DESCRIBE = AclOperation.READ, AclOperation.WRITE, AclOperation.DESCRIBE
TOPIC, GROUP = ResourceType.TOPIC, ResourceType.GROUP
LITERAL, PREFIXED = ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED


class BrokerAdminSettings(BaseSettings):
    """The broker administrator (its only super user). Locally: `admin` with the shipped development
    secret, which the local broker is formatted with (deploy/local/kafka.sh); refused outside
    development like every shipped secret."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Environment = "development"
    kafka_bootstrap: str = DEFAULT_KAFKA_BOOTSTRAP
    kafka_security_protocol: KafkaSecurityProtocol = "SASL_PLAINTEXT"
    kafka_sasl_mechanism: KafkaSaslMechanism = "SCRAM-SHA-512"
    kafka_admin_username: str = ADMIN
    kafka_admin_password: SecretStr | None = None

    @model_validator(mode="after")
    def _no_shipped_secret_outside_development(self) -> Self:
        given = self.kafka_admin_password
        if self.environment != "development" and (
            given is None or given.get_secret_value().startswith(SHIPPED_SECRET_PREFIX)
        ):
            raise ValueError("KAFKA_ADMIN_PASSWORD must be set to a real secret outside development")
        return self

    def access(self) -> KafkaAccess:
        given = self.kafka_admin_password
        return KafkaAccess(
            bootstrap=self.kafka_bootstrap,
            username=self.kafka_admin_username,
            password=given.get_secret_value() if given else local_secret("kafka", self.kafka_admin_username),
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
        )


def allow(
    principal: str, resource: ResourceType, name: str, pattern: ResourcePatternType, *ops: AclOperation
) -> list[AclBinding]:
    """ALLOW `ops` on one resource (pattern) to `principal`, from any host."""
    return [AclBinding(resource, name, pattern, f"User:{principal}", "*", op, AclPermissionType.ALLOW) for op in ops]


def _every_group(principal: str, group_prefix: str, *ops: AclOperation) -> list[AclBinding]:
    # A prefixed pattern cannot be empty: no prefix means every group, Kafka's wildcard "*".
    if group_prefix:
        return allow(principal, GROUP, group_prefix, PREFIXED, *ops)
    return allow(principal, GROUP, "*", LITERAL, *ops)


def group_bindings(group_prefix: str) -> list[AclBinding]:
    """Who may use which consumer groups under `group_prefix`."""
    return [
        *(b for svc in SERVICES for b in allow(svc, GROUP, f"{group_prefix}{svc}.", PREFIXED, READ)),
        *_every_group(OPERATOR, group_prefix, READ, DESCRIBE),
        *_every_group(WEB, group_prefix, DESCRIBE),
        *allow(SUBSCRIBER, GROUP, f"{group_prefix}{SUBSCRIBER_GROUP_PREFIX}", PREFIXED, READ),
    ]


def topic_bindings(topic_prefix: str) -> list[AclBinding]:
    """Who may read and write which topics under `topic_prefix`."""
    bindings: list[AclBinding] = []
    for svc in SERVICES:
        for own in (events_topic(svc), dlq_topic(svc)):
            bindings += allow(svc, TOPIC, topic_prefix + own, LITERAL, WRITE, DESCRIBE)
        for read in SUBSCRIBES[svc]:
            bindings += allow(svc, TOPIC, topic_prefix + read, LITERAL, READ, DESCRIBE)
        events = topic_prefix + events_topic(svc)
        bindings += allow(OPERATOR, TOPIC, events, LITERAL, READ, DESCRIBE, WRITE)
        bindings += allow(OPERATOR, TOPIC, topic_prefix + dlq_topic(svc), LITERAL, READ, DESCRIBE)
        bindings += allow(SUBSCRIBER, TOPIC, events, LITERAL, READ, DESCRIBE)
        for readable in (events, topic_prefix + dlq_topic(svc)):
            bindings += allow(WEB, TOPIC, readable, LITERAL, READ, DESCRIBE)
    return bindings


def downstream_bindings(name: str, topic_prefix: str = "", group_prefix: str = "") -> list[AclBinding]:
    """A downstream team's principal: what `subscriber` may, under groups `<group prefix><name>.`."""
    return [
        *(b for svc in SERVICES for b in allow(name, TOPIC, topic_prefix + events_topic(svc), LITERAL, READ, DESCRIBE)),
        *allow(name, GROUP, f"{group_prefix}{name}.", PREFIXED, READ),
    ]


def _admin(access: KafkaAccess) -> AdminClient:
    # Warnings and errors only: librdkafka's notices (e.g. purging its queue on close) are noise here.
    return AdminClient({**access.librdkafka(), "log_level": 4})


def _wait(admin: AdminClient, futures: Iterable["Future[object]"]) -> None:
    # `admin` stays referenced until every answer is in: a client collected earlier cancels them.
    for future in futures:
        future.result(timeout=TIMEOUT_S)
    del admin


def set_passwords(access: KafkaAccess, passwords: dict[str, str]) -> None:
    """Create or update the SCRAM-SHA-512 credentials of these principals."""
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    upserts: list[UserScramCredentialAlteration] = [
        UserScramCredentialUpsertion(user, info, password.encode()) for user, password in passwords.items()
    ]
    admin = _admin(access)
    _wait(admin, admin.alter_user_scram_credentials(upserts).values())


def grant(access: KafkaAccess, bindings: Sequence[AclBinding]) -> None:
    """Create these ACLs (an existing one is left as it is)."""
    if bindings:
        admin = _admin(access)
        _wait(admin, admin.create_acls(list(bindings)).values())


def revoke(access: KafkaAccess, bindings: Sequence[AclBinding]) -> None:
    """Delete exactly these ACLs (e.g. a test session's, when it ends)."""
    if not bindings:
        return
    filters = [
        AclBindingFilter(
            b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type
        )
        for b in bindings
    ]
    admin = _admin(access)
    _wait(admin, admin.delete_acls(filters).values())


def development_password(principal: str) -> str:
    return local_secret("kafka", principal)


def provision(
    access: KafkaAccess,
    topic_prefix: str = "",
    group_prefix: str = "",
    password_of: Callable[[str], str] = development_password,
) -> list[AclBinding]:
    """Every principal of PRINCIPALS with its password, and their ACLs; returns the ACLs."""
    set_passwords(access, {principal: password_of(principal) for principal in PRINCIPALS})
    bindings = [*topic_bindings(topic_prefix), *group_bindings(group_prefix)]
    grant(access, bindings)
    return bindings


cli = typer.Typer(help="Principals and ACLs on the broker, as its admin (KAFKA_ADMIN_PASSWORD).", no_args_is_help=True)


@cli.command("provision")
def provision_command(
    topic_prefix: Annotated[str, typer.Option(help="TOPIC_PREFIX of the environment")] = "",
    group_prefix: Annotated[str, typer.Option(help="CONSUMER_GROUP_PREFIX of the environment")] = "",
) -> None:
    """Development only: every service, flexctl, subscriber and web with its shipped secret, and their ACLs."""
    settings = BrokerAdminSettings()
    if settings.environment != "development":
        typer.echo("provision gives the shipped development secrets: development only", err=True)
        raise typer.Exit(2)
    bindings = provision(settings.access(), topic_prefix, group_prefix)
    typer.echo(f"broker access: {len(PRINCIPALS)} principals, {len(bindings)} ACLs on {settings.kafka_bootstrap}")


@cli.command("downstream")
def downstream_command(
    name: Annotated[str, typer.Argument(help="the team's principal; its consumer groups are named NAME.<...>")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    topic_prefix: Annotated[str, typer.Option(help="TOPIC_PREFIX of the environment")] = "",
) -> None:
    """A downstream team's own read-only principal: every events topic, its own consumer groups."""
    if name in (ADMIN, *PRINCIPALS):
        typer.echo(f"{name} is one of flexenroll's own principals", err=True)
        raise typer.Exit(2)
    access = BrokerAdminSettings().access()
    try:
        set_passwords(access, {name: password})
        grant(access, downstream_bindings(name, topic_prefix))
    except KafkaException as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{name}: may read every events topic, consumer groups {name}.*")


if __name__ == "__main__":
    cli()
