"""Who may do what on the broker (ops/broker_access.py) follows contracts.access, which every
service's subscriptions are checked against (docs/downstream.md: "Credentials")."""

import asyncio
import importlib
from collections.abc import Callable
from typing import cast

import pytest
from confluent_kafka.admin import AclBinding, AclOperation, ResourcePatternType, ResourceType
from fastapi import FastAPI

import contracts.example_subscriber
from contracts.access import SUBSCRIBER, SUBSCRIBES, owner_of
from contracts.topics import DLQ_TOPICS, EVENT_TOPICS, NOTIFY_EVENTS, REVIEW_EVENTS, SERVICES
from kernel.runtime import ServiceRuntime, Subscription
from kernel.settings import ServiceSettings, local_secret
from ops.broker_access import OPERATOR, PRINCIPALS, WEB, group_bindings, topic_bindings

PREFIX = "env."
Grant = tuple[str, object, str]  # principal, operation (AclOperation), topic


def topic_grants(bindings: list[AclBinding]) -> set[Grant]:
    assert all(
        b.restype == ResourceType.TOPIC and b.resource_pattern_type == ResourcePatternType.LITERAL for b in bindings
    )
    return {(b.principal.removeprefix("User:"), b.operation, b.name.removeprefix(PREFIX)) for b in bindings}


GRANTS = topic_grants(topic_bindings(PREFIX))


def topics_of(principal: str, operation: AclOperation) -> set[str]:
    return {topic for who, op, topic in GRANTS if who == principal and op == operation}


def runtime_of(service: str) -> ServiceRuntime:
    build = cast(Callable[[], tuple[FastAPI, ServiceRuntime]], importlib.import_module(f"services.{service}.app").build)
    return build()[1]


@pytest.mark.parametrize("service", [s for s in SERVICES if importlib.util.find_spec(f"services.{s}.app")])
def test_every_subscription_of_a_service_is_allowed_and_nothing_else(service: str) -> None:
    subscribed = {t for sub in runtime_of(service).subscriptions for t in sub.topics}
    assert subscribed <= set(SUBSCRIBES[service])
    assert topics_of(service, AclOperation.READ) == set(SUBSCRIBES[service])
    # writes: its own events and dead letters, nothing else
    assert topics_of(service, AclOperation.WRITE) == {f"{service}.events", f"{service}.dlq"}


def test_the_table_lists_what_the_services_read_today() -> None:
    assert SUBSCRIBES["enrollment"] == ("identity.events", "review.events", "payment.events", "notify.events")
    assert SUBSCRIBES["review"] == ("identity.events", "enrollment.events")
    assert SUBSCRIBES["notify"] == ("identity.events", "review.events", "payment.events")
    assert SUBSCRIBES["payment"] == ("enrollment.events",) and SUBSCRIBES["identity"] == ()


def test_operators_and_the_subscriber_have_their_own_rights() -> None:
    assert topics_of(OPERATOR, AclOperation.READ) == {*EVENT_TOPICS, *DLQ_TOPICS}
    assert topics_of(OPERATOR, AclOperation.WRITE) == set(EVENT_TOPICS)  # dlq retry, republish
    assert topics_of(SUBSCRIBER, AclOperation.READ) == set(EVENT_TOPICS)
    assert topics_of(SUBSCRIBER, AclOperation.WRITE) == set()
    groups = {(b.principal, b.name, b.resource_pattern_type) for b in group_bindings("g.")}
    assert ("User:review", "g.review.", ResourcePatternType.PREFIXED) in groups
    assert ("User:subscriber", "g.subscriber.", ResourcePatternType.PREFIXED) in groups
    assert ("User:flexctl", "g.", ResourcePatternType.PREFIXED) in groups
    # without a prefix, the operator's "every group" is Kafka's wildcard (a prefix cannot be empty)
    assert ("User:flexctl", "*", ResourcePatternType.LITERAL) in {
        (b.principal, b.name, b.resource_pattern_type) for b in group_bindings("")
    }


def test_web_may_read_and_describe_every_topic_and_group_but_never_write() -> None:
    every_topic = {*EVENT_TOPICS, *DLQ_TOPICS}
    assert WEB in PRINCIPALS  # provisioned with the others (make infra-up, the tests' session)
    assert topics_of(WEB, AclOperation.READ) == every_topic  # dead-letter counts, history
    assert topics_of(WEB, AclOperation.DESCRIBE) == every_topic
    assert {op for who, op, _ in GRANTS if who == WEB} == {AclOperation.READ, AclOperation.DESCRIBE}
    for prefix, name, pattern in (("g.", "g.", ResourcePatternType.PREFIXED), ("", "*", ResourcePatternType.LITERAL)):
        of_web = [b for b in group_bindings(prefix) if b.principal == f"User:{WEB}"]
        # lag only: DESCRIBE (offsets), not READ (joining or committing for a group)
        assert [(b.name, b.resource_pattern_type, b.operation) for b in of_web] == [
            (name, pattern, AclOperation.DESCRIBE)
        ]


def test_a_service_may_not_subscribe_to_a_topic_it_is_not_listed_for() -> None:
    sneaky = ServiceRuntime(ServiceSettings(service="review"))
    sneaky.subscriptions = [Subscription("sneaky", [NOTIFY_EVENTS], {})]  # as app.py sets them
    with pytest.raises(ValueError, match=r"review may not subscribe to notify\.events"):
        sneaky.check_subscriptions()
    with pytest.raises(ValueError, match="may not subscribe"):
        asyncio.run(sneaky.start())  # refused before anything is opened
    ServiceRuntime(
        ServiceSettings(service="notify"), [], [Subscription("sms", [REVIEW_EVENTS], {})]
    ).check_subscriptions()


def test_each_events_topic_is_owned_by_the_service_it_is_named_after() -> None:
    assert [owner_of(t) for t in EVENT_TOPICS] == list(SERVICES)
    assert owner_of("review.dlq") is None and owner_of("something.else") is None


def test_the_example_subscriber_documents_the_shipped_development_password() -> None:
    assert local_secret("kafka", SUBSCRIBER) in (contracts.example_subscriber.__doc__ or "")
