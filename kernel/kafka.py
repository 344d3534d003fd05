"""How every Kafka client of the project reaches and authenticates to the broker.

The broker authenticates every client (SASL/SCRAM) and its ACLs say what each principal may do
(docs/downstream.md: "Credentials"). Callers never spell the connection options themselves: they
take a `KafkaAccess` (from settings: `kafka_access(settings)`) and ask it for the form their
client library wants.
"""

import ssl
from dataclasses import dataclass, field, replace
from typing import Any

from faststream.security import SASLScram256, SASLScram512

from kernel.settings import ServiceSettings


@dataclass(frozen=True)
class KafkaAccess:
    """Where the broker is and who connects to it."""

    bootstrap: str
    username: str
    password: str = field(repr=False)
    security_protocol: str = "SASL_PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"

    def as_principal(self, username: str, password: str) -> "KafkaAccess":
        """The same broker, another principal."""
        return replace(self, username=username, password=password)

    def _ssl_context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context() if self.security_protocol == "SASL_SSL" else None

    def options(self) -> dict[str, Any]:
        """Keyword arguments of aiokafka's producer, consumer and admin client."""
        return {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
            "sasl_mechanism": self.sasl_mechanism,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password,
            "ssl_context": self._ssl_context(),
        }

    def security(self) -> SASLScram512 | SASLScram256:
        """FastStream's form (`KafkaBroker(access.bootstrap, security=access.security())`)."""
        scram = SASLScram512 if self.sasl_mechanism == "SCRAM-SHA-512" else SASLScram256
        return scram(self.username, self.password, ssl_context=self._ssl_context())

    def librdkafka(self) -> dict[str, str]:
        """confluent-kafka's (librdkafka's) configuration, for the admin work aiokafka cannot do."""
        return {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": self.security_protocol,
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.username,
            "sasl.password": self.password,
        }


def kafka_access(settings: ServiceSettings) -> KafkaAccess:
    """The settings' principal (KAFKA_USERNAME, else the service's name) with its password."""
    return KafkaAccess(
        bootstrap=settings.kafka_bootstrap,
        username=settings.kafka_principal,
        password=settings.kafka_secret(),
        security_protocol=settings.kafka_security_protocol,
        sasl_mechanism=settings.kafka_sasl_mechanism,
    )


def client_options(settings: ServiceSettings) -> dict[str, Any]:
    """aiokafka keyword arguments for the settings' principal."""
    return kafka_access(settings).options()
