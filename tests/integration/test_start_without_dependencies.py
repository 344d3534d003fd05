"""A service started while PostgreSQL or Kafka is away (issue 10, "Resilience bugs found under
faults") stays up: alive, not ready (503 problem+json naming what it waits for), its API 503 with
Retry-After; once the dependency answers it becomes ready by itself. Real processes; the shared
servers are made "away" for it alone by a TCP proxy in front of them (tests/support/tcp_proxy.py)."""

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

import httpx
import pytest

from kernel.problems import PROBLEM_MEDIA_TYPE
from tests.support.applicant import eventually
from tests.support.infra import (
    DATABASE_URL,
    KAFKA_BOOTSTRAP,
    drop_schemas,
    group_prefix,
    provision_schema_now,
    unique_name,
)
from tests.support.launch import launch, log_lines
from tests.support.processes import ServiceProcess
from tests.support.tcp_proxy import TcpProxy
from tests.support.tokens import as_role


@pytest.fixture
def schema() -> Iterator[str]:
    name = unique_name("t_review")
    provision_schema_now("review", name)
    yield name
    asyncio.run(drop_schemas(name))


def _proxy_for(hostport: str) -> TcpProxy:
    host, _, port = hostport.rpartition(":")
    return TcpProxy(host or "127.0.0.1", int(port))


@pytest.fixture
def database_proxy() -> Iterator[TcpProxy]:
    parts = urlsplit(DATABASE_URL)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    yield proxy
    proxy.shutdown()


@pytest.fixture
def kafka_proxy() -> Iterator[TcpProxy]:
    proxy = _proxy_for(KAFKA_BOOTSTRAP.split(",")[0])
    yield proxy
    proxy.shutdown()


def _review(schema: str, tmp_path: Path, database_url: str, kafka_bootstrap: str) -> ServiceProcess:
    env = {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP": kafka_bootstrap,
        "SCHEMA_NAME": schema,
        "CONSUMER_GROUP_PREFIX": group_prefix("nodeps"),
        "IDENTITY_URL": "http://127.0.0.1:9",  # nobody: revocation refreshes fail, harmlessly
        "STARTUP_RETRY_MAX_SECONDS": "1",
        "LOG_JSON": "true",
    }
    return ServiceProcess("review", env, tmp_path)


def _through(proxy: TcpProxy) -> str:
    return urlunsplit(urlsplit(DATABASE_URL)._replace(netloc=proxy.address))


def _answer(service: ServiceProcess, path: str, method: str = "GET") -> httpx.Response | None:
    try:
        return httpx.request(method, service.url + path, headers=as_role("reviewer"), timeout=5)
    except httpx.HTTPError:
        return None  # not listening yet


def _failed_tries(service: ServiceProcess, dependency: str) -> int:
    return sum(
        1
        for e in log_lines(service)
        if e.get("event") == "dependency_unavailable" and e.get("dependency") == dependency
    )


def _assert_waiting(service: ServiceProcess, dependency: str) -> None:
    """Alive, not ready (saying for what), and its API refusing with Retry-After."""
    assert service.process is not None
    eventually(lambda: _failed_tries(service, dependency) >= 2, f"two failed tries of {dependency} in the log")
    assert service.process.poll() is None, "the service must stay up without its dependency"
    health = _answer(service, "/healthz")
    assert health is not None and health.status_code == 200
    ready = _answer(service, "/readyz")
    assert ready is not None and ready.status_code == 503, ready
    assert ready.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    assert ready.json()["code"] == "not_ready" and ready.json()["waiting_for"] == dependency
    assert any("\u4e00" <= c <= "\u9fff" for c in ready.json()["detail"])
    for method, path in (("GET", "/v1/cases"), ("POST", f"/v1/cases/{uuid4()}/decision")):
        refused = _answer(service, path, method)
        assert refused is not None and refused.status_code == 503, (path, refused)
        assert refused.json()["code"] == "service_unavailable" and refused.headers["retry-after"] == "5"
        assert refused.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    # Not a traceback per try: the tries are warnings without one.
    assert not [e for e in log_lines(service) if e.get("event") == "dependency_unavailable" and "exception" in e]


def _assert_becomes_ready(service: ServiceProcess) -> None:
    def ready() -> bool:
        answer = _answer(service, "/readyz")
        return answer is not None and answer.status_code == 200

    eventually(ready, "the service to become ready", timeout=60)
    cases = _answer(service, "/v1/cases")
    assert cases is not None and cases.status_code == 200 and cases.json()["cases"] == []
    assert [e for e in log_lines(service) if e.get("event") == "service_started"]


def test_started_without_the_database_it_waits_and_comes_up_when_it_answers(
    schema: str, tmp_path: Path, database_proxy: TcpProxy
) -> None:
    service = launch(_review(schema, tmp_path, _through(database_proxy), KAFKA_BOOTSTRAP))
    try:
        _assert_waiting(service, "database")
        assert database_proxy.accepted == 0  # it really never reached the database
        database_proxy.open()
        _assert_becomes_ready(service)
        assert database_proxy.accepted > 0
    finally:
        service.stop()


def test_started_without_kafka_it_waits_and_comes_up_when_the_broker_answers(
    schema: str, tmp_path: Path, kafka_proxy: TcpProxy
) -> None:
    service = launch(_review(schema, tmp_path, DATABASE_URL, kafka_proxy.address))
    try:
        _assert_waiting(service, "kafka")  # the database came, the producer could not bootstrap
        kafka_proxy.open()
        _assert_becomes_ready(service)
        assert kafka_proxy.accepted > 0  # bootstrapped through the proxy, then to the advertised address
    finally:
        service.stop()


def test_sigterm_while_waiting_exits_promptly(schema: str, tmp_path: Path, database_proxy: TcpProxy) -> None:
    service = launch(_review(schema, tmp_path, _through(database_proxy), KAFKA_BOOTSTRAP))
    assert service.process is not None
    try:
        eventually(lambda: _failed_tries(service, "database") >= 1, "a failed try of the database")
        service.process.send_signal(signal.SIGTERM)
        # A generous bound: the wait is cancelled, not sat out. uvicorn ends a clean shutdown by
        # raising the signal it caught again, hence -SIGTERM.
        assert service.process.wait(20) in (0, -signal.SIGTERM)
        events = [e.get("event") for e in log_lines(service)]
        assert "Application shutdown complete." in events and "service_start_failed" not in events
    finally:
        service.kill()
