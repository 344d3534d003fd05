"""deploy/compose.yaml run for real with podman: the images, the one-shot jobs, the five services,
and an applicant's whole journey through them (register → approve → pay → active, with the
decision's SMS), driven as tests/load drives it. `make test-containers` builds the images first;
`make test` leaves these tests out (marker `containers`)."""

import random
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import pytest
from testcontainers.core.docker_client import DockerClient

from contracts.topics import SERVICES
from tests.load.billing import Biller
from tests.load.journey import pipeline, register
from tests.load.phone import Clock, JourneyResult, Phone, new_account, phone_client
from tests.load.stack import Stack, staff_token
from tests.support.containers import (
    APP_IMAGE,
    AdminCodeReader,
    ComposeDeployment,
    compose_deployment,
    machine_cas,
    podman_api,
)

pytestmark = pytest.mark.containers


@pytest.fixture(scope="module")
def docker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerClient]:
    with podman_api(tmp_path_factory.mktemp("podman")) as client:
        yield client


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeDeployment]:
    with compose_deployment(tmp_path_factory.mktemp("compose")) as running:
        yield running


@pytest.fixture
async def stack(deployment: ComposeDeployment) -> AsyncIterator[Stack]:
    """What tests/load's journey talks to, on the deployment: its URLs, a reviewer and an operator
    made with flexctl on the host, texted codes read from notify's local sink."""
    env = deployment.client_env()
    opened = Stack(urls=deployment.urls, env=env, database_url=deployment.database_url)
    opened.codes = AdminCodeReader(deployment.admin_url)
    await opened.codes.open()
    opened.biller = Biller(env)
    await opened.biller.open()
    try:
        opened.reviewer = await staff_token(env, deployment.urls["identity"], "reviewer", opened.policy)
        opened.operator = await staff_token(env, deployment.urls["identity"], "operator", opened.policy)
        yield opened
    finally:
        await opened.close()


def test_the_deployment_runs_as_compose_describes_it(docker: DockerClient, deployment: ComposeDeployment) -> None:
    containers = docker.client.containers.list(
        all=True, filters={"label": f"io.podman.compose.project={deployment.project}"}
    )
    by_service = {c.labels["com.docker.compose.service"]: c.attrs for c in containers}
    for job in ("roles", "topics"):
        assert by_service[job]["State"]["ExitCode"] == 0, f"{job} failed"
    for name in SERVICES:
        attrs = by_service[name]
        assert attrs["State"]["Running"], f"{name} is not running"
        assert attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
        assert attrs["Config"]["User"] not in ("", "0", "root")
        assert any("readyz" in part for part in attrs["Config"]["Healthcheck"]["Test"])


def test_the_image_runs_as_a_user_without_compiler_or_the_machines_ca(docker: DockerClient) -> None:
    script = (
        "import os, shutil; from pathlib import Path; "
        "print(os.getuid(), shutil.which('cc'), shutil.which('gcc'), shutil.which('pip'), "
        "Path('/usr/share/fonts/truetype/wqy/wqy-microhei.ttc').is_file()); "
        "print(Path('/etc/ssl/certs/ca-certificates.crt').read_text())"
    )
    out = docker.client.containers.run(APP_IMAGE, ["-c", script], entrypoint="python", remove=True).decode()
    facts, bundle = out.split("\n", 1)
    uid, cc, gcc, pip, font = facts.split()
    assert uid != "0"
    assert (cc, gcc, pip) == ("None", "None", "None")
    assert font == "True"
    # Debian's public roots only: the machine's bundle, with its own CAs, was mounted for the build.
    for machine_ca in machine_cas():
        assert machine_ca not in bundle
    assert "BEGIN CERTIFICATE" in bundle  # Debian's ca-certificates, for outbound HTTPS


async def test_an_applicant_goes_from_registration_to_active_with_the_decision_texted(stack: Stack) -> None:
    # One phone on 127.0.0.1: the published ports are forwarded for the loopback address itself.
    account = replace(new_account(random.Random()), address="127.0.0.1")
    result = JourneyResult(0, expected="active", account=account)
    async with phone_client(account, result) as http:
        phone = Phone(stack, http, account, result, Clock(time.monotonic()))
        await register(phone)
        await pipeline(phone)
    assert result.reached == "active"
    assert {"sms_sent", "approved", "billed"} <= result.marks.keys()
    assert result.sms_after_decision is not None
