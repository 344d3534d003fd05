"""The stack file (deploy/local/README.md, "Stacks"): deploy/local/stack.sh (the scripts) and
ops/stack.py (flexctl, deploy/local/*.py) read it alike and derive the same settings; the
environment wins over both; the default stack is what the services assume without any."""

import subprocess
from pathlib import Path

import pytest

from kernel.settings import DEFAULT_KAFKA_BOOTSTRAP, SERVICE_PORTS, ServiceSettings
from ops.stack import ROOT, Stack, StackError, load_stack, new_stack_file
from services.identity.settings import IdentitySettings
from services.review.settings import ReviewSettings
from tests.support.stack import STACK_VARIABLES, stack_environment

STACK_SH = ROOT / "deploy" / "local" / "stack.sh"


def shell_view(stack_file: Path | None, **env: str) -> dict[str, str]:
    """`stack.sh env` for `stack_file`, with `env` set."""
    done = subprocess.run(
        [STACK_SH, "env"], env=stack_environment(stack_file) | env, capture_output=True, text=True, check=True
    )
    return dict(line.split("=", 1) for line in done.stdout.splitlines())


def python_view(stack: Stack, **env: str) -> dict[str, str]:
    """The same variables as ops.stack sees them."""
    seen = {"FLEXENROLL_RUN_DIR": str(stack.run_dir), "PGPORT": str(stack.pgport), "KAFKA_PORT": str(stack.kafka_port)}
    seen["KAFKA_CONTROLLER_PORT"] = str(stack.kafka_controller_port)
    for service in SERVICE_PORTS:
        seen[f"{service.upper()}_PORT"] = str(stack.port(service))
        seen[f"{service.upper()}_METRICS_PORT"] = str(stack.metrics_port(service))
    return seen | stack.derived(env)


def isolated(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    """This process's environment as `stack_environment` hands it to a stack's command, plus `env`."""
    for name in STACK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_shell_and_python_derive_the_same_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = new_stack_file(tmp_path / "second.env")
    isolated(monkeypatch)
    stack = load_stack({"FLEXENROLL_STACK": str(file)})
    shell = shell_view(file)
    assert shell == python_view(stack)
    assert shell["FLEXENROLL_RUN_DIR"] == str(tmp_path / "run")
    assert shell["DATABASE_URL"] == f"postgresql://127.0.0.1:{stack.pgport}/flexenroll"
    assert shell["REVIEW_ENROLLMENT_URL"] == f"http://127.0.0.1:{stack.enrollment_port}"
    assert f"host={tmp_path}/run/postgres&port={stack.pgport}" in shell["DATABASE_ADMIN_URL"]


def test_the_environment_wins_in_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = new_stack_file(tmp_path / "second.env")
    # A port from the environment moves what is derived from it, the admin's socket included.
    isolated(monkeypatch, PGPORT="45678")
    stack = load_stack({"FLEXENROLL_STACK": str(file)})
    shell = shell_view(file, PGPORT="45678")
    assert shell == python_view(stack)
    assert shell["DATABASE_URL"] == "postgresql://127.0.0.1:45678/flexenroll"
    assert shell["DATABASE_ADMIN_URL"].endswith("&port=45678")
    # Another database of the stack's cluster (as the end-to-end tests make): its administrator there.
    other = {"DATABASE_URL": "postgresql://127.0.0.1:45678/flexenroll_e2e"}
    shell = shell_view(file, PGPORT="45678", **other)
    assert shell == python_view(stack, **other)
    assert shell["DATABASE_ADMIN_URL"].startswith("postgresql://flexenroll@/flexenroll_e2e?host=")
    # An external database: used as given, and nobody derives an administrator for it.
    external = {"DATABASE_URL": "postgresql://db.example:5432/flexenroll", "KAFKA_BOOTSTRAP": "kafka.example:9092"}
    shell = shell_view(file, PGPORT="45678", **external)
    assert shell == python_view(stack, **external)
    assert (shell["DATABASE_URL"], shell["KAFKA_BOOTSTRAP"], shell["DATABASE_ADMIN_URL"]) == (
        external["DATABASE_URL"],
        external["KAFKA_BOOTSTRAP"],
        "",
    )


def test_an_incomplete_stack_file_is_refused_by_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = new_stack_file(tmp_path / "second.env")
    file.write_text("\n".join(line for line in file.read_text().splitlines() if not line.startswith("KAFKA_PORT=")))
    isolated(monkeypatch)
    done = subprocess.run([STACK_SH, "env"], env=stack_environment(file), capture_output=True, text=True)
    assert done.returncode != 0 and "sets no KAFKA_PORT" in done.stderr, done.stderr
    with pytest.raises(StackError, match="KAFKA_PORT"):
        load_stack({"FLEXENROLL_STACK": str(file)})


def test_the_default_stack_is_what_the_services_assume(monkeypatch: pytest.MonkeyPatch) -> None:
    """`make up` keeps its addresses: deploy/local/stack.env derives the services' own defaults."""
    isolated(monkeypatch)
    shell = shell_view(None)
    assert shell == python_view(load_stack({}))
    assert shell["FLEXENROLL_RUN_DIR"] == str(ROOT / ".run")
    assert shell["DATABASE_URL"] == ServiceSettings.model_fields["database_url"].default
    assert shell["KAFKA_BOOTSTRAP"] == DEFAULT_KAFKA_BOOTSTRAP
    assert shell["IDENTITY_URL"] == ServiceSettings.model_fields["identity_url"].default
    assert shell["IDENTITY_NOTIFY_URL"] == IdentitySettings.model_fields["identity_notify_url"].default
    assert shell["REVIEW_ENROLLMENT_URL"] == ReviewSettings.model_fields["review_enrollment_url"].default
    for service, port in SERVICE_PORTS.items():
        assert (shell[f"{service.upper()}_PORT"], shell[f"{service.upper()}_METRICS_PORT"]) == (
            str(port),
            str(port + 1000),
        )
