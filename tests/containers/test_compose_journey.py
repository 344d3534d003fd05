"""deploy/compose.yaml run for real with podman: the images, the one-shot jobs, the five services
and the web pages (services/web: its front page, log-in page and stylesheet from the image, with the
pages' Content-Security-Policy), and an applicant's whole journey through them (register → approve →
pay → active, with the decision's SMS), driven as tests/load drives it. `make test-containers` builds the images first;
`make test` leaves these tests out (marker `containers`)."""

import random
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import httpx
import pytest
from testcontainers.core.docker_client import DockerClient

from contracts.topics import SERVICES
from services.web.pages import PAGE_CONTENT_SECURITY_POLICY
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
    published_url,
)
from tests.support.processes import free_port

pytestmark = pytest.mark.containers


@pytest.fixture(scope="module")
def docker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerClient]:
    with podman_api(tmp_path_factory.mktemp("podman")) as client:
        yield client


WEB = "web"  # not one of contracts.topics.SERVICES: it owns no data and no topic


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeDeployment]:
    logs = tmp_path_factory.mktemp("compose")
    with pytest.MonkeyPatch.context() as patch:
        # compose_deployment picks free ports for the five services; web's too, clear of compose.env's.
        patch.setenv("WEB_PUBLISHED_PORT", str(free_port()))
        with compose_deployment(logs) as running:
            try:
                yield running
            finally:  # kept for a failure's reader, before compose_deployment removes the container
                with (logs / f"{WEB}.log").open("wb") as log:
                    name = f"{running.project}_{WEB}_1"
                    subprocess.run(["podman", "logs", name], stdout=log, stderr=subprocess.STDOUT)


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
    for name in (*SERVICES, WEB):
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


def test_the_web_pages_answer_with_their_security_policy(deployment: ComposeDeployment) -> None:
    """The front page and the log-in page (templates of the image) and the stylesheet (its static
    files) through compose's published port, with the pages' own Content-Security-Policy; ready
    (/readyz) only because the five APIs answer it by their compose names."""
    base = published_url(f"{deployment.project}_{WEB}_1")
    with httpx.Client(base_url=base, timeout=10.0) as http:
        assert http.get("/readyz").status_code == 200
        for path in ("/", "/login"):
            page = http.get(path)
            assert page.status_code == 200, path
            assert page.headers["content-type"].startswith("text/html"), path
            assert page.headers["content-security-policy"] == PAGE_CONTENT_SECURITY_POLICY, path
            assert "<html" in page.text.lower(), path
        style = http.get("/static/web.css")
        assert style.status_code == 200
        assert style.headers["content-type"].startswith("text/css")
