"""Two replicas of every service under compose (issue 11, "Scale out"; README, "Deploy"): a
deployment of the test's own with compose's `deploy.replicas: 2`, journeys whose requests alternate
between the replicas, the replica of each service whose relay leads killed with SIGKILL mid-load,
then the journeys, all `active`, and what must hold (tests/chaos/checks.py).

`podman kill` counts as a stop by the user: podman 4.3 does not apply the `unless-stopped` restart
policy to it, so the killed replicas stay down (the test asserts it) and the survivors alone finish
the journeys, drain the outboxes and answer the checks. The compose half of tests/e2e/test_scale_out.py."""

import asyncio
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from contracts.topics import SERVICES
from ops.broker_access import BrokerAdminSettings
from tests.chaos.checks import Stack as CheckedStack
from tests.chaos.checks import check_all
from tests.chaos.run import PATIENT, assert_nothing_lost, drained
from tests.load import phone
from tests.load.journey import JourneyResult
from tests.load.run import LoadRun, LoadSettings, run_load
from tests.load.stack import Stack
from tests.support.applicant import IDENTITY_TEST_ENV, eventually
from tests.support.containers import (
    ComposeDeployment,
    compose_deployment,
    compose_env,
    container_state,
    podman,
    relay_leaders,
)
from tests.support.replicas import group_members, groups_of

pytestmark = pytest.mark.containers

REPLICAS = 2
LOAD = LoadSettings(rate=0.3, count=10, max_seconds=40.0, drain_seconds=180.0, seed=11)
CONSUMING = [s for s in SERVICES if s != "identity"]  # identity subscribes to no topic


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeDeployment]:
    # Every phone is 127.0.0.1 (below): identity's limits per client address are raised, as for
    # the other tests that run many requests from one address (services/identity/README.md, "Throttling").
    raised = {"identity": IDENTITY_TEST_ENV}
    with compose_deployment(tmp_path_factory.mktemp("compose-replicas"), REPLICAS, raised) as running:
        yield running


@pytest.fixture
def phones_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """The load's phones all on 127.0.0.1: the published ports are forwarded for that address only
    (tests/containers/test_compose_journey.py), not for the rest of 127.0.0.0/8."""
    monkeypatch.setattr(phone, "phone_address", lambda _: "127.0.0.1")


def checked(deployment: ComposeDeployment) -> CheckedStack:
    """The deployment as the chaos checks read it: its administrators, enrollment's own login."""
    return CheckedStack(
        database_url=deployment.database_url,
        admin_url=deployment.admin_url,
        schemas={name: name for name in SERVICES},
        kafka=BrokerAdminSettings(kafka_bootstrap=deployment.kafka_bootstrap).access(),
        enrollment_login=("enrollment", compose_env("ENROLLMENT_DB_PASSWORD")),
    )


def members_are(deployment: ComposeDeployment, n: int) -> bool:
    """Every consuming service has consumer groups, each stable with `n` members."""
    members = group_members(checked(deployment).kafka)
    return all(groups_of(members, s) and set(groups_of(members, s).values()) == {n} for s in CONSUMING)


def one_leader_each(deployment: ComposeDeployment) -> dict[str, str] | None:
    """Each service's leading container, when every service has exactly one among its replicas."""
    held = asyncio.run(relay_leaders(deployment))
    ok = all(len(names) == 1 and names[0] in deployment.containers[s] for s, names in held.items())
    return {s: names[0] for s, names in held.items()} if ok else None


def all_answered(stack: Stack) -> bool:
    b = stack.balancer  # made when the load opens the stack
    return b is not None and all(b.answered[url] for urls in b.routes.values() for url in urls)


async def journeys_with_kills(
    urls: dict[str, list[str]], deployment: ComposeDeployment, doomed: dict[str, str]
) -> tuple[list[JourneyResult], bool, Counter[str]]:
    """The load through every replica of every service (`urls`, the first one's first); once each
    replica has answered the journeys (payment and notify are asked late in one), the `doomed`
    containers get SIGKILL. Answers the journeys, whether the load still ran at the kill, and each
    replica's answers by then."""
    stack = Stack(
        urls={s: u[0] for s, u in urls.items()},
        env=deployment.client_env(),
        database_url=deployment.database_url,
        policy=PATIENT,
        replicas={s: u[1:] for s, u in urls.items()},
    )
    load: asyncio.Task[LoadRun] = asyncio.create_task(run_load(stack, [], LOAD))
    while not load.done() and not all_answered(stack):
        await asyncio.sleep(0.5)
    mid_load = not load.done()
    answered = Counter(stack.balancer.answered if stack.balancer else ())
    for name in doomed.values():
        await asyncio.to_thread(podman, "kill", "--signal", "KILL", name)
    return (await load).journeys, mid_load, answered


@pytest.mark.usefixtures("phones_on_loopback")
def test_two_replicas_of_each_service_share_the_work_and_one_of_each_may_die(deployment: ComposeDeployment) -> None:
    t0 = time.monotonic()
    assert all(len(names) == REPLICAS for names in deployment.containers.values())
    urls = {s: deployment.replica_urls(s) for s in SERVICES}
    eventually(lambda: members_are(deployment, REPLICAS), "two members in every consumer group", timeout=90)
    leading = eventually(lambda: one_leader_each(deployment), "one relay leading per service", timeout=60)

    journeys, mid_load, answered = asyncio.run(journeys_with_kills(urls, deployment, leading))

    # The killed replicas held the relays' locks: the outboxes drain only if the survivors take them.
    survivors = {s: next(n for n in deployment.containers[s] if n != leading[s]) for s in SERVICES}
    eventually(lambda: one_leader_each(deployment) == survivors, "the survivors' relays to lead", timeout=60)
    eventually(lambda: members_are(deployment, 1), "the survivors alone in every consumer group", timeout=90)
    drained_in = asyncio.run(drained(checked(deployment), 120.0))
    findings = asyncio.run(check_all(checked(deployment)))
    states = {name: container_state(name) for name in leading.values()}
    took = time.monotonic() - t0
    print(f"compose scale-out: {len(journeys)} journeys; answers before the kill {dict(answered)}; {took:.0f} s")

    replica_urls = [url for each in urls.values() for url in each]
    assert all(answered[url] > 0 for url in replica_urls), f"not every replica answered: {answered}"
    assert mid_load, "the load was over before the replicas were killed"
    # Still down, never restarted: the survivors alone finished the journeys.
    assert all(state == (False, 0) for state in states.values()), states
    assert_nothing_lost(journeys, LOAD.count, drained_in, findings)
