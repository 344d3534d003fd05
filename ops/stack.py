"""The local stack a command works on (deploy/local/README.md, "Stacks").

A stack file (default deploy/local/stack.env; FLEXENROLL_STACK names another) holds the ports and
the run directory of one local stack. deploy/local/stack.sh reads it for the scripts; this module
reads it for flexctl, deploy/local/*.py and the tests, and derives the same settings the services
connect by (tests/unit/test_stack.py holds the two to it). The environment always wins: over the
file's lines, and over every derived value.
"""

import os
import socket
from collections.abc import Mapping, MutableMapping
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import quote, urlsplit

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.topics import SERVICES

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STACK_FILE = ROOT / "deploy" / "local" / "stack.env"
LOOPBACK = ("127.0.0.1", "localhost")
# What a stack runs on its ports: the five services and the web pages (services/web).
PROCESSES = (*SERVICES, "web")


class StackError(Exception):
    """The stack file is missing or incomplete."""


class Stack(BaseSettings):
    """One stack file's variables (an environment variable of the same name wins over its line)."""

    # Empty counts as unset, as in stack.sh.
    model_config = SettingsConfigDict(extra="ignore", env_ignore_empty=True)

    flexenroll_run_dir: Path
    pgport: int
    kafka_port: int
    kafka_controller_port: int
    identity_port: int
    enrollment_port: int
    review_port: int
    payment_port: int
    notify_port: int
    web_port: int
    # Unset: the API's port + 1000, as the services themselves do.
    identity_metrics_port: int | None = None
    enrollment_metrics_port: int | None = None
    review_metrics_port: int | None = None
    payment_metrics_port: int | None = None
    notify_metrics_port: int | None = None
    web_metrics_port: int | None = None

    @property
    def run_dir(self) -> Path:
        """Where this stack keeps its cluster, broker storage, logs and pid files (relative: to the repo)."""
        return ROOT / self.flexenroll_run_dir

    def port(self, service: str) -> int:
        port: int = getattr(self, f"{service}_port")
        return port

    def metrics_port(self, service: str) -> int:
        given: int | None = getattr(self, f"{service}_metrics_port")
        return given or self.port(service) + 1000

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port(service)}"

    def is_own_database(self, database_url: str) -> bool:
        parsed = urlsplit(database_url)
        return parsed.hostname in LOOPBACK and (parsed.port or 5432) == self.pgport

    def derived(self, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
        """What the services and tools connect by; a non-empty environment variable wins."""
        values = {
            "DATABASE_URL": f"postgresql://127.0.0.1:{self.pgport}/flexenroll",
            "KAFKA_BOOTSTRAP": f"127.0.0.1:{self.kafka_port}",
            "IDENTITY_URL": self.url("identity"),
            "IDENTITY_NOTIFY_URL": self.url("notify"),
            "REVIEW_ENROLLMENT_URL": self.url("enrollment"),
            "WEB_ENROLLMENT_URL": self.url("enrollment"),
            "WEB_REVIEW_URL": self.url("review"),
            "WEB_PAYMENT_URL": self.url("payment"),
            "WEB_NOTIFY_URL": self.url("notify"),
            "ENROLLMENT_BLOB_ROOT": str(self.run_dir / "blobs"),
        }
        chosen = {name: environ.get(name) or value for name, value in values.items()}
        # Only this stack's administrator can open its socket; an external database names its own.
        admin = environ.get("DATABASE_ADMIN_URL") or ""
        if not admin and self.is_own_database(chosen["DATABASE_URL"]):
            database = urlsplit(chosen["DATABASE_URL"]).path.lstrip("/") or "flexenroll"
            sockets = quote(str(self.run_dir / "postgres"), safe="/")
            admin = f"postgresql://flexenroll@/{database}?host={sockets}&port={self.pgport}"
        return {**chosen, "DATABASE_ADMIN_URL": admin}


def stack_file(environ: Mapping[str, str] = os.environ) -> Path:
    return Path(environ.get("FLEXENROLL_STACK") or DEFAULT_STACK_FILE)


def load_stack(environ: Mapping[str, str] = os.environ) -> Stack:
    """The stack FLEXENROLL_STACK names (default deploy/local/stack.env)."""
    path = stack_file(environ)
    if not path.is_file():  # pydantic-settings would silently read nothing
        raise StackError(f"no stack file {path} (FLEXENROLL_STACK)")
    try:
        return Stack(_env_file=path)
    except ValidationError as invalid:
        wrong = ", ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in invalid.errors())
        raise StackError(f"stack file {path}: {wrong}") from invalid


def use_stack(environ: MutableMapping[str, str] = os.environ) -> Stack:
    """Load the stack and put its derived settings into `environ` where they are not set, so that
    every settings class built afterwards (kernel.settings) connects to this stack."""
    stack = load_stack(environ)
    for name, value in stack.derived(environ).items():
        if value and not environ.get(name):
            environ[name] = value
    return stack


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free on loopback now (all held open until all are chosen)."""
    with ExitStack() as held:
        sockets = [held.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]


def new_stack_file(path: Path, run_dir: Path | None = None) -> Path:
    """Write a stack file with free ports and its own run directory (default: `run` beside the file)."""
    run_dir = (run_dir or path.parent / "run").resolve()
    names = ["PGPORT", "KAFKA_PORT", "KAFKA_CONTROLLER_PORT"]
    names += [f"{s.upper()}_PORT" for s in PROCESSES] + [f"{s.upper()}_METRICS_PORT" for s in PROCESSES]
    lines = [f"{name}={port}" for name, port in zip(names, free_ports(len(names)), strict=True)]
    path.parent.mkdir(parents=True, exist_ok=True)
    header = '# A local stack written by deploy/local/stack.py new (deploy/local/README.md, "Stacks").\n'
    path.write_text(header + f"FLEXENROLL_RUN_DIR={run_dir}\n" + "\n".join(lines) + "\n")
    return path
