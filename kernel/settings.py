"""Settings from the environment (pydantic-settings); the defaults are the local `make up` setup."""

import os
from pathlib import Path
from typing import ClassVar, Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.reference import DEFAULT_DISTRICTS_FILE
from kernel.auth import SHIPPED_PUBLIC_KEYS_FILE, PublicKeys, shipped_public_kids

Environment = Literal["development", "production"]
KafkaSecurityProtocol = Literal["SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256"]
DEFAULT_KAFKA_BOOTSTRAP = "127.0.0.1:19092"
# Every secret the repository ships (for `make up` and the tests) starts with this: known to
# everyone, so a service refuses to start with one outside development.
SHIPPED_SECRET_PREFIX = "local-"


def local_secret(purpose: str, principal: str) -> str:
    """The shipped development secret of `principal` for `purpose` (e.g. "kafka", "identity"):
    what `make up` provisions and what a service uses when none is configured."""
    return f"{SHIPPED_SECRET_PREFIX}{purpose}-{principal}-not-a-secret"


SERVICE_PORTS = {"identity": 8001, "enrollment": 8002, "review": 8003, "payment": 8004, "notify": 8005, "web": 8006}


class ServiceSettings(BaseSettings):
    """What every service needs. A service subclasses this for its own knobs.

    Shared variables are unprefixed (DATABASE_URL, KAFKA_BOOTSTRAP, TOKEN_PUBLIC_KEYS) so one `.env`
    serves the whole system. A service's own knobs are fields named `<service>_<knob>` in its
    subclass, so that their variables carry the service's prefix (REVIEW_DUE_WORKING_DAYS) with
    no aliases; see docs/service-anatomy.md.
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")
    # Secrets that must be set outside development (web holds no database: services/web).
    required_secrets: ClassVar[tuple[str, ...]] = ("db_password", "kafka_password")

    service: str = "flexenroll"
    # development: the shipped secrets are accepted; production: every secret must be set, and
    # none may be a shipped one (SHIPPED_SECRET_PREFIX).
    environment: Environment = "development"
    # Where the database is (host, port, database name). A service always connects as its own role
    # (DB_USER, DB_PASSWORD below): a user or password in this URL is overridden. The role and its
    # schema are provisioned beforehand by an administrator (kernel.db.provision).
    database_url: str = "postgresql://127.0.0.1:55432/flexenroll"
    db_pool_min: int = 1
    db_pool_max: int = 10
    # The service's own database role (owner of its schema only); empty: the service's name.
    db_user: str = ""
    db_password: SecretStr | None = None
    kafka_bootstrap: str = DEFAULT_KAFKA_BOOTSTRAP
    # The broker authenticates every client (SASL/SCRAM); each service is its own principal
    # (kernel.kafka builds every client's options from these).
    kafka_security_protocol: KafkaSecurityProtocol = "SASL_PLAINTEXT"
    kafka_sasl_mechanism: KafkaSaslMechanism = "SCRAM-SHA-512"
    kafka_username: str = ""  # empty: the service's name
    kafka_password: SecretStr | None = None
    # The public keys bearer tokens are verified with (identity alone holds the private key): a
    # JWKS as JSON text or the path of a JWKS file; several keys while one is being rotated
    # (services/identity/README.md, "Tokens"). Default: the shipped development key, refused
    # outside development.
    token_public_keys: str = str(SHIPPED_PUBLIC_KEYS_FILE)
    jwt_ttl_seconds: int = 8 * 3600
    # How often a service refreshes identity's list of revoked tokens (kernel.revocation).
    token_revocations_refresh_seconds: float = Field(default=20, gt=0, le=60)
    # Personal data is sealed per person (docs/personal-data.md); a service that must read it asks
    # identity for the person's key with its own token.
    identity_url: str = "http://127.0.0.1:8001"
    personal_data_token: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = 0
    # Prometheus scrapes /metrics on a port of its own, never the API's (kernel.server): METRICS_PORT,
    # else <SERVICE>_METRICS_PORT, else the API's port + 1000 (identity 9001 … notify 9005);
    # METRICS_HOST is the address it listens on (an internal one).
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=0, ge=0, le=65535)
    # Bounded requests (kernel.asgi, issue 9): a body larger than this is refused (413) unless its
    # route declares its own limit (kernel.web.declare_body_limit); a client has
    # HTTP_BODY_TIMEOUT_SECONDS between two parts of a body and at least HTTP_BODY_MIN_RATE
    # bytes per second overall (408 otherwise); a request's head must arrive within
    # HTTP_HEAD_TIMEOUT_SECONDS, an idle kept-alive connection is closed after
    # HTTP_KEEP_ALIVE_SECONDS (kernel.server).
    http_body_max_bytes: int = Field(default=64 * 1024, ge=1024)
    http_body_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    http_body_min_rate: int = Field(default=32 * 1024, ge=1024)
    http_head_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    http_keep_alive_seconds: float = Field(default=5.0, gt=0, le=120)
    log_level: str = "INFO"
    log_json: bool = True
    # Batching (README: "Delivery guarantees"): commits are the scarce resource, so relay and consumers work in
    # batches, bounded in size and in wait so that latency stays low at light load.
    batch_max: int = Field(default=200, ge=1, le=5000)
    # A consumer asks for records for up to BATCH_WAIT_MS and returns as soon as any arrive; after
    # an empty wait FastStream sleeps as long again. So it bounds the latency added to a message
    # that arrives during that sleep (none under load, when waits are not empty), and sets how
    # often an idle consumer wakes: 20 ms cost an idle service 15-20 ms of CPU a second, 100 ms
    # about half that (issue 10).
    batch_wait_ms: int = Field(default=100, ge=0, le=5000)
    consumer_max_attempts: int = Field(default=3, ge=1, le=20)
    # Changzhou's districts and their accepting agencies: one reference file for every service
    # that needs it (contracts/reference/districts.toml unless an operator points elsewhere).
    districts_file: Path = DEFAULT_DISTRICTS_FILE
    relay_enabled: bool = True
    # A relay's publish attempt waits this long at most for the broker, then the outbox rows are left
    # for a later attempt (kernel.relay); a start waits at most this long between two tries of a
    # dependency still away (kernel.startup).
    relay_publish_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    startup_retry_max_seconds: float = Field(default=30.0, gt=0, le=600)
    consumers_enabled: bool = True
    # Isolation (tests, a second environment on one cluster): another schema, other consumer
    # groups and other physical topics for the same service code. The contract names in
    # contracts.topics stay what they are; TOPIC_PREFIX only changes where they live.
    schema_name: str = ""
    consumer_group_prefix: str = ""
    topic_prefix: str = ""

    @model_validator(mode="after")
    def _no_shipped_secret_outside_development(self) -> Self:
        if self.environment == "development":
            return self
        secrets = {
            name: getattr(self, name)
            for name, field in type(self).model_fields.items()
            if field.annotation in (SecretStr, SecretStr | None)
        }
        # A table of secrets (identity's IDENTITY_KEY_READERS: one token per reading service) is
        # checked entry by entry.
        for name, field in type(self).model_fields.items():
            if field.annotation == dict[str, SecretStr]:
                for key, value in getattr(self, name).items():
                    secrets[f"{name}[{key}]"] = value
        for name in self.required_secrets:
            if secrets.get(name) is None:
                raise ValueError(f"{name.upper()} must be set outside development")
        for name, value in secrets.items():
            if value is not None and value.get_secret_value().startswith(SHIPPED_SECRET_PREFIX):
                raise ValueError(f"{name.upper()} is a shipped example secret: set a real one outside development")
        if set(self.public_keys().by_kid) & shipped_public_kids():
            raise ValueError("TOKEN_PUBLIC_KEYS holds the shipped example key: set identity's real public keys")
        return self

    def public_keys(self) -> PublicKeys:
        """TOKEN_PUBLIC_KEYS, parsed (kernel.auth)."""
        return PublicKeys.load(self.token_public_keys)

    @property
    def kafka_principal(self) -> str:
        return self.kafka_username or self.service

    def kafka_secret(self) -> str:
        given = self.kafka_password
        return given.get_secret_value() if given else local_secret("kafka", self.kafka_principal)

    def personal_data_secret(self) -> str:
        given = self.personal_data_token
        return given.get_secret_value() if given else local_secret("personal-data", self.service)

    @property
    def db_role(self) -> str:
        return self.db_user or self.service

    def db_secret(self) -> str:
        given = self.db_password
        return given.get_secret_value() if given else local_secret("db", self.db_role)

    @property
    def db_schema(self) -> str:
        """Each service keeps its tables in its own PostgreSQL schema, named after it."""
        return self.schema_name or self.service

    def topic(self, name: str) -> str:
        """The physical topic of a contract topic name."""
        return f"{self.topic_prefix}{name}"

    def consumer_group(self, purpose: str) -> str:
        return f"{self.consumer_group_prefix}{self.service}.{purpose}"

    def http_port(self) -> int:
        """PORT, else <SERVICE>_PORT (so one .env can place all five), else the local default."""
        own = os.environ.get(f"{self.service.upper()}_PORT")
        return self.port or (int(own) if own else SERVICE_PORTS.get(self.service, 8000))

    def metrics_http_port(self) -> int:
        """METRICS_PORT, else <SERVICE>_METRICS_PORT, else the API's port + 1000."""
        own = os.environ.get(f"{self.service.upper()}_METRICS_PORT")
        return self.metrics_port or (int(own) if own else self.http_port() + 1000)
