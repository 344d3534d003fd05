"""Test-wide fixtures. Integration and e2e tests need the real broker and database running."""

import pytest

from tests.support.infra import DATABASE_URL, KAFKA_BOOTSTRAP, reachable


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    needs_infra = any("/integration/" in str(i.path) or "/e2e/" in str(i.path) for i in items)
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
