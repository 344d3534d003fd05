"""A second full stack beside the default one, from a stack file of its own (deploy/local/README.md,
"Stacks"; issue 10, "Running a second environment on one machine"): the scripts start its own
PostgreSQL, Kafka and services on its own ports, `flexctl` with FLEXENROLL_STACK works on its
database, each stack's `services.sh` sees only its own processes, and deploy/local/journey.sh runs
the whole application journey on it."""

import asyncio
import re
from functools import partial

import asyncpg
import httpx

from kernel.settings import local_secret
from tests.support.applicant import eventually
from tests.support.stack import LOCAL, default_stack, listening, on_default_stack, running_stack

SERVICES = ("identity", "enrollment", "review", "payment", "notify")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
PASSWORD = "s3cret-pass"


def logins(pgport: int, user_id: str) -> int:
    """How many logins with `user_id` identity keeps in the cluster on `pgport` (read as identity)."""

    async def count() -> int:
        url = f"postgresql://127.0.0.1:{pgport}/flexenroll"
        conn = await asyncpg.connect(url, user="identity", password=local_secret("db", "identity"))
        try:
            found: int = await conn.fetchval("SELECT count(*) FROM identity.credentials WHERE user_id = $1", user_id)
            return found
        except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):  # a default stack never set up
            return 0
        finally:
            await conn.close()

    return asyncio.run(count())


def ready(url: str) -> bool:
    return httpx.get(f"{url}/readyz", timeout=10).status_code == 200


def test_a_second_stack_runs_beside_the_default_one() -> None:
    with running_stack(SERVICES) as second:
        stack = second.stack
        ports = second.ports(SERVICES)
        assert stack.pgport != default_stack().pgport
        assert all(listening(port) for port in ports), {port: listening(port) for port in ports}
        for name in SERVICES:  # ready: its database and broker, i.e. the second stack's, answer
            eventually(partial(ready, stack.url(name)), f"{name} ready")

        # flexctl takes the database from the stack file: the account lands in the second stack only.
        phone = "13700001234"
        added = second.flexctl(
            "staff", "add", "--phone", phone, "--name", "李审核", "--id-number", "320411198001010035",
            "--password-stdin", "--role", "operator", stdin=PASSWORD + "\n",
        )  # fmt: skip
        user_id = UUID.search(added)
        assert user_id is not None, added
        assert logins(stack.pgport, user_id.group()) == 1
        assert logins(default_stack().pgport, user_id.group()) == 0
        session = httpx.post(f"{stack.url('identity')}/v1/sessions", json={"phone": phone, "password": PASSWORD})
        assert session.status_code in (200, 201), session.text

        # Each stack's services.sh sees the pid files of its own run directory only.
        pids = second.pids(SERVICES)
        own = second.script("services.sh", "status", *SERVICES)
        for name, pid in pids.items():
            assert f"{name}: running (pid {pid}) at {stack.url(name)}" in own, own
        default = on_default_stack(LOCAL / "services.sh", "status", *SERVICES)
        assert default.count("\n") == len(SERVICES), default
        assert not any(str(pid) in default or stack.url(name) in default for name, pid in pids.items()), default

        # The journey, SMS code to registration form, against the stack FLEXENROLL_STACK names.
        journey = second.script("journey.sh")
        assert "短信通知已发送" in journey, journey
        assert re.search(rf"{stack.run_dir}/registration-form.pdf: [1-9][0-9]+ bytes", journey), journey
    assert not any(listening(port) for port in ports), "the second stack's processes outlived its stop"
