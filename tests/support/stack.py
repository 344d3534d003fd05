"""A local stack of the tests' own beside the default one: its stack file (free ports, its own run
directory) and the scripts of deploy/local run against it (deploy/local/README.md, "Stacks").

Whatever a test starts here it stops again (`running_stack`); it never touches the default stack.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ops.stack import Stack, load_stack
from tests.support.processes import ROOT

LOCAL = ROOT / "deploy" / "local"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
# Set in a test's environment, any of these would win over the stack file (DATABASE_URL and
# KAFKA_BOOTSTRAP are, for the default stack): a command meant for another stack runs without them.
STACK_VARIABLES = (
    *(name.upper() for name in Stack.model_fields),
    "DATABASE_URL",
    "DATABASE_ADMIN_URL",
    "KAFKA_BOOTSTRAP",
    "IDENTITY_URL",
    "IDENTITY_NOTIFY_URL",
    "REVIEW_ENROLLMENT_URL",
    "WEB_ENROLLMENT_URL",
    "WEB_REVIEW_URL",
    "WEB_PAYMENT_URL",
    "WEB_NOTIFY_URL",
    "ENROLLMENT_BLOB_ROOT",
    "PORT",
    "METRICS_PORT",
    "FLEXENROLL_STACK",
    # A test session's isolation on the shared servers (tests/conftest.py sets TOPIC_PREFIX): a stack
    # of its own needs none, and its topics and ACLs are the unprefixed ones `make infra-up` makes.
    "TOPIC_PREFIX",
    "SCHEMA_NAME",
    "CONSUMER_GROUP_PREFIX",
)


def listening(port: int) -> bool:
    """Something accepts connections on 127.0.0.1:`port`."""
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def stack_environment(stack_file: Path | None) -> dict[str, str]:
    """This process's environment without any stack's variables; with FLEXENROLL_STACK=`stack_file`
    (None: the default stack)."""
    env = {k: v for k, v in os.environ.items() if k not in STACK_VARIABLES}
    if stack_file is not None:
        env["FLEXENROLL_STACK"] = str(stack_file)
    return env


def default_stack() -> Stack:
    """The default stack's file (deploy/local/stack.env), as the scripts read it without FLEXENROLL_STACK."""
    return load_stack(stack_environment(None))


def on_default_stack(*command: str | Path) -> str:
    """A (read-only!) command on the default stack; its standard output, whatever its exit status."""
    done = subprocess.run(
        [str(c) for c in command], cwd=ROOT, env=stack_environment(None), capture_output=True, text=True, timeout=60
    )
    return done.stdout


@dataclass(frozen=True)
class LocalStack:
    file: Path
    stack: Stack

    @property
    def env(self) -> dict[str, str]:
        return stack_environment(self.file)

    def run(self, *command: str | Path, stdin: str | None = None, timeout: float = 120) -> str:
        """A command on this stack; its standard output. A failure shows its output."""
        done = subprocess.run(
            [str(c) for c in command], cwd=ROOT, env=self.env, input=stdin, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
        assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def script(self, name: str, *args: str) -> str:
        """deploy/local/<name>: a shell script run as is, a Python one with the venv's Python."""
        path = LOCAL / name
        return self.run(*((VENV_PYTHON, path) if name.endswith(".py") else (path,)), *args)

    def flexctl(self, *args: str, stdin: str | None = None) -> str:
        return self.run(sys.executable, "-m", "ops.flexctl", *args, stdin=stdin)

    def pids(self, services: Sequence[str]) -> dict[str, int]:
        """The pid in each service's pid file in this stack's run directory."""
        folder = self.stack.run_dir / "services"
        return {name: int((folder / f"{name}.pid").read_text()) for name in services}

    def ports(self, services: Sequence[str]) -> list[int]:
        """Every port this stack listens on with `services` running."""
        s = self.stack
        own = [s.pgport, s.kafka_port, s.kafka_controller_port]
        return own + [p for name in services for p in (s.port(name), s.metrics_port(name))]


def new_stack(directory: Path) -> LocalStack:
    """A stack file with free ports in `directory`, its run directory beside it (deploy/local/stack.py)."""
    file = directory / "stack.env"
    subprocess.run([VENV_PYTHON, LOCAL / "stack.py", "new", file], check=True, capture_output=True)
    return LocalStack(file, load_stack({"FLEXENROLL_STACK": str(file)}))


@contextmanager
def running_stack(services: Sequence[str]) -> Iterator[LocalStack]:
    """PostgreSQL, Kafka (topics, principals, ACLs), every role and schema, and `services`, all of a
    new stack's own, started with the scripts `make up` uses, and stopped again. Its files live in a
    directory of its own under /tmp, not pytest's: other sessions' pytest prunes old base temp
    directories and makes them unreachable for the `postgres` user, under a running stack. Removed
    when all went well; kept (with the logs) after a failure."""
    local = new_stack(Path(tempfile.mkdtemp(prefix="flexenroll-stack-")))
    failed = True
    try:
        local.script("postgres.sh", "start")
        local.script("kafka.sh", "start")
        local.script("topics.py")
        local.script("database.py")
        local.script("services.sh", "start", *services)
        yield local
        failed = False
    finally:
        stops = [
            subprocess.run([LOCAL / script, "stop"], cwd=ROOT, env=local.env, capture_output=True, text=True)
            for script in ("services.sh", "kafka.sh", "postgres.sh")  # services.sh: every pid file of this stack
        ]
        unstopped = [f"{' '.join(map(str, s.args))}: {s.stdout}{s.stderr}" for s in stops if s.returncode != 0]
        assert not unstopped, f"the stack in {local.file.parent} did not stop: {unstopped}"
        if not failed:
            shutil.rmtree(local.file.parent)
