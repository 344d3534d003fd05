"""Two replicas of every service on one broker and one database (issue 11, "Scale out"; README,
"Deploy"): journeys through both, one replica of each service killed with SIGKILL mid-load and not
restarted, then what must hold (tests/chaos/checks.py) and the journeys, all `active`.

While both replicas run, every consumer group has two members and one relay per service leads
(its advisory lock); the killed replicas are the leading ones, so the survivors must take over for
the outboxes to drain. The first replicas (deploy/local/services.sh) are restarted once after the
second ones are up, which hands the relays' locks to the second ones: the first keep the addresses
the services call each other at (IDENTITY_URL, IDENTITY_NOTIFY_URL), which no load balancer fronts
in a local stack, so it is the second replicas that die."""

import asyncio
from collections import Counter
from dataclasses import dataclass

from contracts.topics import SERVICES
from tests.chaos.checks import Finding, check_all
from tests.chaos.run import PATIENT, assert_nothing_lost, checked_stack, drained, environment
from tests.load.journey import JourneyResult
from tests.load.run import LoadRun, LoadSettings, run_load
from tests.load.stack import Stack as LoadStack
from tests.support.applicant import eventually
from tests.support.replicas import Replica, group_members, groups_of, relay_leaders, second_replicas
from tests.support.stack import LocalStack, running_stack

LOAD = LoadSettings(rate=0.3, count=12, max_seconds=40.0, drain_seconds=240.0, seed=11)
CONSUMING = [s for s in SERVICES if s != "identity"]  # identity subscribes to no topic


def members_are(local: LocalStack, n: int) -> bool:
    """Every consuming service has consumer groups, each stable with `n` members."""
    members = group_members(checked_stack(local).kafka)
    return all(groups_of(members, s) and set(groups_of(members, s).values()) == {n} for s in CONSUMING)


def leaders(local: LocalStack, pids: dict[str, list[int]]) -> dict[str, list[int]]:
    return relay_leaders(checked_stack(local).admin_url, pids)


def led_since_start(local: LocalStack, service: str) -> bool:
    """The service's first replica logged `relay_leading` since services.sh last started it."""
    log = (local.stack.run_dir / "services" / f"{service}.log").read_text(errors="replace")
    return "relay_leading" in log.rpartition("--- start")[2]


@dataclass
class Killed:
    mid_load: bool  # the load was still running when the second replicas were killed
    answered: Counter[str]  # base URL → answers its replica had given the journeys by then


def all_answered(stack: LoadStack) -> bool:
    b = stack.balancer  # made when the load opens the stack
    return b is not None and all(b.answered[url] for urls in b.routes.values() for url in urls)


async def kill_once_all_answered(stack: LoadStack, second: dict[str, Replica], load: asyncio.Task[LoadRun]) -> Killed:
    """Kills the second replicas once every replica answered the journeys (payment and notify are
    asked late in a journey), or once the load is over."""
    while not load.done() and not all_answered(stack):
        await asyncio.sleep(0.5)
    killed = Killed(not load.done(), Counter(stack.balancer.answered if stack.balancer else ()))
    for replica in second.values():
        await asyncio.to_thread(replica.kill)
    return killed


async def journeys_through_both(local: LocalStack, second: dict[str, Replica]) -> tuple[list[JourneyResult], Killed]:
    env = environment(local)
    urls = {name: local.stack.url(name) for name in SERVICES}
    others = {name: [replica.url] for name, replica in second.items()}
    stack = LoadStack(urls=urls, env=env, database_url=env["DATABASE_URL"], policy=PATIENT, replicas=others)
    load = asyncio.create_task(run_load(stack, [], LOAD))
    killed = await kill_once_all_answered(stack, second, load)
    return (await load).journeys, killed


async def drain_and_check(local: LocalStack) -> tuple[float | None, list[Finding]]:
    stack = checked_stack(local)
    return await drained(stack, 120.0), await check_all(stack)


def test_two_replicas_share_the_work_and_one_of_each_may_die() -> None:
    with running_stack(SERVICES) as local, second_replicas(local, SERVICES) as second:
        wanted = {s: [second[s].pid] for s in SERVICES}
        local.script("services.sh", "stop", *SERVICES)  # their relays let go of the locks
        eventually(lambda: leaders(local, wanted) == wanted, "the second replicas' relays to lead", timeout=30)
        local.script("services.sh", "start", *SERVICES)
        first = local.pids(SERVICES)
        both = {s: [first[s], second[s].pid] for s in SERVICES}
        eventually(lambda: members_are(local, 2), "two members in every consumer group", timeout=90)
        assert leaders(local, both) == wanted, "not one relay per service, the second replica's"
        journeys, killed = asyncio.run(journeys_through_both(local, second))
        replicas = [url for s in SERVICES for url in (local.stack.url(s), second[s].url)]
        takeover = {s: [pid] for s, pid in first.items()}
        eventually(lambda: leaders(local, both) == takeover, "the survivors' relays to lead", timeout=60)
        assert all(led_since_start(local, s) for s in SERVICES), "a survivor never logged relay_leading"
        eventually(lambda: members_are(local, 1), "the survivors alone in every consumer group", timeout=60)
        drained_in, findings = asyncio.run(drain_and_check(local))
    assert all(killed.answered[url] > 0 for url in replicas), f"not every replica answered: {killed.answered}"
    assert killed.mid_load, "the load was over before the replicas were killed"
    assert_nothing_lost(journeys, LOAD.count, drained_in, findings)
