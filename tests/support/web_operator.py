"""Staff in the browser (tests/e2e/test_web_operator.py): accounts made with `flexctl staff add` whose
phone and password log in through /login, the stats APIs read as the staff member, and the
dead-letter counts read as the broker's admin to compare with the /ops page."""

import asyncio
import concurrent.futures
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from ops.kafka_ops import partitions_of
from tests.support.applicant import eventually, login, staff_phone
from tests.support.infra import KAFKA_ADMIN
from tests.support.processes import ServiceProcess


def staff_account(system: dict[str, ServiceProcess], role: str, agency: str | None = None) -> str:
    """A reviewer or operator made as tests/support/applicant.py `staff()` makes them; returns the
    phone, which logs in with tests.support.applicant.PASSWORD (once identity has the account)."""
    phone = staff_phone(system, role, agency)
    bearer(system, phone)  # wait until the account logs in
    return phone


def bearer(system: dict[str, ServiceProcess], phone: str) -> dict[str, str]:
    identity = httpx.Client(base_url=system["identity"].url, timeout=15)
    return {"Authorization": f"Bearer {eventually(lambda: login(identity, phone), 'staff login')}"}


def stats(system: dict[str, ServiceProcess], auth: dict[str, str]) -> dict[str, Any]:
    """The three aggregate answers the dashboard draws, as this staff member gets them."""
    answers = {
        "applications": httpx.get(f"{system['enrollment'].url}/v1/stats/applications", headers=auth, timeout=15),
        "decisions": httpx.get(f"{system['review'].url}/v1/stats/decisions", headers=auth, timeout=15),
        "settlements": httpx.get(f"{system['payment'].url}/v1/stats/settlements", headers=auth, timeout=15),
    }
    for name, answer in answers.items():
        assert answer.status_code == 200, f"{name}: {answer.text}"
    return {name: answer.json() for name, answer in answers.items()}


async def _messages_on(topic: str) -> int:
    parts = await partitions_of(KAFKA_ADMIN, [topic])
    if not parts:
        return 0
    consumer = AIOKafkaConsumer(**KAFKA_ADMIN.options())
    await consumer.start()
    try:
        starts, ends = await consumer.beginning_offsets(parts), await consumer.end_offsets(parts)
        return sum(ends[tp] - starts[tp] for tp in parts)
    finally:
        await consumer.stop()


def messages_on(topic: str) -> int:
    """Messages on a topic (end minus beginning offsets), read as the broker's admin; in a thread of
    its own, because Playwright's sync API keeps an event loop running in the test's."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, _messages_on(topic)).result()
