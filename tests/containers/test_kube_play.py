"""deploy/k8s run for real with `podman kube play`, as far as podman supports its kinds
(tests/support/containers.py, `kube_play`): the provisioning Jobs finish, and every service's pod
becomes ready (/readyz) against the PostgreSQL and Kafka of infra.yaml."""

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.topics import SERVICES
from tests.support.containers import kube_play, pod_container, ready_in_pod

pytestmark = pytest.mark.containers
READY_WAIT_S = 300.0


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    logs = tmp_path_factory.mktemp("kube")
    with kube_play(logs):
        yield logs


def exit_code(name: str) -> str:
    return subprocess.run(
        ["podman", "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name],
        capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


def test_the_jobs_provision_and_every_service_becomes_ready(played: Path) -> None:
    waiting = {pod_container(name) for name in SERVICES}
    jobs = {pod_container(name, kind="Job") for name in ("flexenroll-roles", "flexenroll-topics")}
    deadline = time.monotonic() + READY_WAIT_S
    while (waiting or any(not exit_code(job).startswith("exited") for job in jobs)) and time.monotonic() < deadline:
        waiting = {name for name in waiting if not ready_in_pod(name)}
        time.sleep(2)
    assert waiting == set(), f"not ready; logs in {played}"
    assert {exit_code(job) for job in jobs} == {"exited 0"}
