"""Test-wide fixtures. Integration and e2e tests need the real broker and database running."""

import asyncio
import os
from collections.abc import Iterator

import pytest

from contracts.topics import DLQ_TOPICS, EVENT_TOPICS
from tests.support.infra import (
    DATABASE_URL,
    KAFKA_BOOTSTRAP,
    TOPIC_PREFIX,
    create_topics,
    delete_topics,
    provision_session,
    reachable,
    revoke_session,
    topic,
)
from tests.support.postgres_log import remember_where_the_session_began

# Shared fixtures, taken by name as parameters (e.g. `producer`).
pytest_plugins = ["tests.support.kafka", "tests.support.watchdog"]

# Every ServiceSettings built in a test, in-process or in a service process started by one,
# reads this: services under test publish and subscribe on the test topics.
os.environ["TOPIC_PREFIX"] = TOPIC_PREFIX


def _needs_infra(item: pytest.Item) -> bool:
    """Contract tests run their PostgreSQL case against the real database too."""
    return any(folder in str(item.path) for folder in ("/integration/", "/e2e/", "/contract/"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "last: run after every other test of the session")


def pytest_sessionstart(session: pytest.Session) -> None:
    remember_where_the_session_began()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A scan of what the whole session left behind (tests/integration/test_postgres_log.py) goes last.
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)
    needs_infra = any(_needs_infra(i) for i in items)
    if not needs_infra:
        return
    missing = [
        name for name, where in (("PostgreSQL", DATABASE_URL), ("Kafka", KAFKA_BOOTSTRAP)) if not reachable(where)
    ]
    if missing:
        raise pytest.UsageError(
            f"{' and '.join(missing)} not reachable ({DATABASE_URL}, {KAFKA_BOOTSTRAP}): "
            "start them with `make infra-up` (or `make up`), or set DATABASE_URL / KAFKA_BOOTSTRAP."
        )


@pytest.fixture(scope="session", autouse=True)
def test_topics(request: pytest.FixtureRequest) -> Iterator[None]:
    """The contract topics under this session's prefix, and the principals and ACLs that use them
    (ops/broker_access.py, as `make infra-up` does for the unprefixed ones): created first, deleted
    at the end."""
    if not any(_needs_infra(i) for i in request.session.items):
        yield
        return
    names = [topic(t) for t in (*EVENT_TOPICS, *DLQ_TOPICS)]
    asyncio.run(create_topics(names))
    provision_session()
    yield
    revoke_session()
    if "TEST_TOPIC_PREFIX" not in os.environ:  # a prefix given from outside is left for inspection
        asyncio.run(delete_topics(names))
