"""One-shot provisioning jobs of the container deployments (deploy/compose.yaml, deploy/k8s/jobs.yaml).

`python deploy/containers/provision.py roles`: every service's database role and schema
(kernel.db.provision), as DATABASE_ADMIN_URL's administrator, with the password `<SERVICE>_DB_PASSWORD`.
`python deploy/containers/provision.py broker`: the topics of deploy/local/topics.py and every
principal with the password `<PRINCIPAL>_KAFKA_PASSWORD` and its ACLs (ops.broker_access), as the
broker's admin (KAFKA_ADMIN_PASSWORD).

Both are idempotent and wait for their server (they may start first). A password left unset is the
shipped development one, which only ENVIRONMENT=development accepts.
"""

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code
from confluent_kafka import KafkaException

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file from /app
from contracts.topics import DLQ_TOPICS, EVENT_TOPICS, SERVICES
from kernel.db import provision as provision_role
from kernel.settings import SHIPPED_SECRET_PREFIX, local_secret
from kernel.startup import dependency_unavailable
from ops.broker_access import PRINCIPALS, BrokerAdminSettings
from ops.broker_access import provision as provision_principals

WAIT_S = float(os.environ.get("PROVISION_WAIT_SECONDS", "120"))
TOPIC_CONFIG = {"retention.ms": "-1"}  # as deploy/local/topics.py: events are the replay source


def secret(purpose: str, principal: str) -> str:
    """`<PRINCIPAL>_<PURPOSE>_PASSWORD`, else the shipped one in development only."""
    given = os.environ.get(f"{principal.upper()}_{purpose.upper()}_PASSWORD", "")
    production = os.environ.get("ENVIRONMENT", "development") != "development"
    if production and (not given or given.startswith(SHIPPED_SECRET_PREFIX)):
        raise SystemExit(f"{principal.upper()}_{purpose.upper()}_PASSWORD must be set to a real secret")
    return given or local_secret(purpose, principal)


async def retrying(what: str, attempt: Callable[[], Awaitable[None]]) -> None:
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            await attempt()
            return
        except Exception as exc:
            if not (dependency_unavailable(exc) or isinstance(exc, KafkaException)) or time.monotonic() > deadline:
                raise SystemExit(f"provision: {what}: {exc!r}") from exc
            print(f"provision: waiting for {what} ({type(exc).__name__})", flush=True)
            await asyncio.sleep(2)


async def roles() -> None:
    admin = os.environ["DATABASE_ADMIN_URL"]
    passwords = {service: secret("db", service) for service in SERVICES}

    async def attempt() -> None:
        for service in SERVICES:
            await provision_role(admin, service, passwords[service], service)

    await retrying("the database", attempt)
    print(f"provision: roles and schemas of {', '.join(SERVICES)} in place", flush=True)


async def broker() -> None:
    access = BrokerAdminSettings().access()
    partitions = int(os.environ.get("KAFKA_PARTITIONS", "3"))
    replication = int(os.environ.get("KAFKA_REPLICATION_FACTOR", "1"))
    passwords = {principal: secret("kafka", principal) for principal in PRINCIPALS}

    async def attempt() -> None:
        admin = AIOKafkaAdminClient(**access.options(), client_id="flexenroll-provision")
        try:
            await admin.start()
            missing = set(EVENT_TOPICS) | set(DLQ_TOPICS)
            missing -= set(await admin.list_topics())
            if missing:
                topics = [NewTopic(t, partitions, replication, topic_configs=TOPIC_CONFIG) for t in sorted(missing)]
                response = await admin.create_topics(topics)
                for topic, code, *_ in response.topic_errors:  # errors come per topic, not raised
                    if code not in (0, TopicAlreadyExistsError.errno):
                        raise for_code(code)(f"creating {topic}")
        finally:
            await admin.close()
        provision_principals(access, password_of=passwords.__getitem__)

    await retrying(f"the broker at {access.bootstrap}", attempt)
    print(f"provision: topics, {len(PRINCIPALS)} principals and their ACLs in place", flush=True)


if __name__ == "__main__":
    jobs = {"roles": roles, "broker": broker}
    if len(sys.argv) != 2 or sys.argv[1] not in jobs:
        raise SystemExit(f"usage: provision.py {'|'.join(jobs)}")
    asyncio.run(jobs[sys.argv[1]]())
