"""Settings from the environment (pydantic-settings); the defaults are the local `make up` setup."""

import os
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.reference import DEFAULT_DISTRICTS_FILE

SERVICE_PORTS = {"identity": 8001, "enrollment": 8002, "review": 8003, "payment": 8004, "notify": 8005}


class ServiceSettings(BaseSettings):
    """What every service needs. A service subclasses this for its own knobs.

    Shared variables are unprefixed (DATABASE_URL, KAFKA_BOOTSTRAP, JWT_SECRET) so one `.env`
    serves the whole system. A service's own knobs are fields named `<service>_<knob>` in its
    subclass, so that their variables carry the service's prefix (REVIEW_DUE_WORKING_DAYS) with
    no aliases; see docs/service-anatomy.md.
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    service: str = "flexenroll"
    database_url: str = "postgresql://flexenroll@127.0.0.1:55432/flexenroll"
    db_pool_min: int = 1
    db_pool_max: int = 10
    kafka_bootstrap: str = "127.0.0.1:19092"
    jwt_secret: SecretStr = SecretStr("local-development-secret-change-me-in-production")
    jwt_ttl_seconds: int = 8 * 3600
    host: str = "127.0.0.1"
    port: int = 0
    log_level: str = "INFO"
    log_json: bool = True
    # Batching (README: "Delivery guarantees"): commits are the scarce resource, so relay and consumers work in
    # batches, bounded in size and in wait so that latency stays low at light load.
    batch_max: int = Field(default=200, ge=1, le=5000)
    batch_wait_ms: int = Field(default=20, ge=0, le=5000)
    consumer_max_attempts: int = Field(default=3, ge=1, le=20)
    # Changzhou's districts and their accepting agencies: one reference file for every service
    # that needs it (contracts/reference/districts.toml unless an operator points elsewhere).
    districts_file: Path = DEFAULT_DISTRICTS_FILE
    relay_enabled: bool = True
    consumers_enabled: bool = True
    # Isolation (tests, a second environment on one cluster): another schema, other consumer
    # groups and other physical topics for the same service code. The contract names in
    # contracts.topics stay what they are; TOPIC_PREFIX only changes where they live.
    schema_name: str = ""
    consumer_group_prefix: str = ""
    topic_prefix: str = ""

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
