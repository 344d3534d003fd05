"""The project's containers for tests (tests/containers): podman's Docker-compatible API for
testcontainers; a compose deployment of deploy/compose.yaml of the test's own (its project name,
free loopback ports, its volumes; optionally several replicas of every service), removed again
afterwards, and which replica's relay leads; deploy/k8s as data (the manifests by
kind and name, a workload's environment as Kubernetes resolves it, the variables a service reads)
and played with `podman kube play`.

Images are built beforehand (deploy/containers/build.sh; `make test-containers` does)."""

import base64
import dataclasses
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
import yaml  # type: ignore[import-untyped]
from testcontainers.core.docker_client import DockerClient

from contracts.topics import SERVICES
from kernel.settings import ServiceSettings, local_secret
from services.enrollment.settings import EnrollmentSettings
from services.identity.settings import IdentitySettings
from services.notify.settings import NotifySettings
from services.payment.settings import PaymentSettings
from services.review.settings import ReviewSettings
from tests.load.stack import CodeReader
from tests.support.processes import ROOT, free_port

COMPOSE_SH = ROOT / "deploy" / "containers" / "compose.sh"
APP_IMAGE = "localhost/flexenroll-app:latest"
# The machine's own certificate authorities (its HTTPS goes through one): build.sh mounts the
# bundle holding them for pip during a build; they must never end up in an image.
MACHINE_CAS = Path("/usr/local/share/ca-certificates")
SOCKET_WAIT_S = 30.0


@contextmanager
def podman_api(folder: Path) -> Iterator[DockerClient]:
    """`podman system service` on a socket in `folder`, and testcontainers' client on it
    (DOCKER_HOST; no Ryuk reaper: podman has none to offer, and the tests remove what they start)."""
    path = folder / "podman.sock"
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{path}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    saved = {name: os.environ.get(name) for name in ("DOCKER_HOST", "TESTCONTAINERS_RYUK_DISABLED")}
    try:
        deadline = time.monotonic() + SOCKET_WAIT_S
        while not _answers(path):
            if service.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"podman's API did not come up on {path}")
            time.sleep(0.2)
        os.environ["DOCKER_HOST"] = f"unix://{path}"
        os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"
        yield DockerClient()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        service.terminate()
        service.wait(15)


def _answers(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX) as s:
        return s.connect_ex(str(path)) == 0


@dataclass(frozen=True)
class ComposeDeployment:
    """A running deploy/compose.yaml: where its services, database and broker are published."""

    project: str
    urls: dict[str, str]
    database_url: str  # no user: each client logs in as its own role
    admin_url: str  # the cluster's administrator (compose.env's POSTGRES_ADMIN_PASSWORD)
    kafka_bootstrap: str
    # service → its containers, one per replica (`<project>_<service>_<n>`, n from 1)
    containers: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def replica_urls(self, service: str) -> list[str]:
        """Where each replica of `service` is published on the host, in the order of `containers`."""
        return [published_url(name) for name in self.containers[service]]

    def client_env(self) -> dict[str, str]:
        """The environment of flexctl and the tests' own clients against it (shipped secrets, as
        deploy/compose.env has them)."""
        return {
            "PATH": os.environ["PATH"],
            "DATABASE_URL": self.database_url,
            "DATABASE_ADMIN_URL": self.admin_url,
            "KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "IDENTITY_URL": self.urls["identity"],
        }


# Replicas of a service cannot share a host port: each publishes 8000 on a free one podman picks
# (`podman port` tells which). `!override` replaces compose.yaml's list instead of adding to it.
REPLICATED = """    deploy: {{mode: replicated, replicas: {n}}}
    ports: !override ["127.0.0.1::8000"]
"""


def _override(replicas: int, environment: Mapping[str, Mapping[str, str]]) -> str:
    """A compose file over compose.yaml: `replicas` containers per service, and more settings."""
    text = "services:\n"
    for name in SERVICES:
        text += f"  {name}:\n"
        if replicas > 1:
            text += REPLICATED.format(n=replicas)
        if environment.get(name):
            text += "    environment:\n"
            text += "".join(f"      {k}: {json.dumps(v)}\n" for k, v in environment[name].items())
    return text


@contextmanager
def compose_deployment(
    log_dir: Path, replicas: int = 1, environment: Mapping[str, Mapping[str, str]] | None = None
) -> Iterator[ComposeDeployment]:
    """deploy/compose.yaml up under a project of its own on free ports (deploy/containers/compose.sh
    up: waits for every /readyz), then down with its volumes. With `replicas` > 1 every service runs
    that many containers (compose's `deploy.replicas`), each published on a port of its own;
    `environment`: service → settings added to its own. Both through an override file beside the
    logs (COMPOSE_OVERRIDE)."""
    project = f"flexenroll-test-{uuid4().hex[:8]}"
    ports = {name: free_port() for name in (*SERVICES, "postgres", "kafka")}
    env = {
        **{k: v for k, v in os.environ.items() if k != "TOPIC_PREFIX"},  # the test session's, not the deployment's
        "COMPOSE_PROJECT": project,
        "TMPDIR": str(log_dir),
        **{f"{name.upper()}_PUBLISHED_PORT": str(port) for name, port in ports.items()},
        "ENROLLMENT_PUBLIC_URL": f"http://127.0.0.1:{ports['enrollment']}",
    }
    if replicas > 1 or environment:
        override = log_dir / "override.yaml"
        override.write_text(_override(replicas, environment or {}))
        env["COMPOSE_OVERRIDE"] = str(override)
    containers = {name: [f"{project}_{name}_{n}" for n in range(1, replicas + 1)] for name in SERVICES}
    try:
        subprocess.run([COMPOSE_SH, "up"], env=env, check=True, timeout=1800)
        urls = {name: f"http://127.0.0.1:{ports[name]}" for name in SERVICES}
        if replicas > 1:  # the first replicas' ports, picked by podman
            urls = {name: published_url(names[0]) for name, names in containers.items()}
        yield ComposeDeployment(
            project=project,
            urls=urls,
            database_url=f"postgresql://127.0.0.1:{ports['postgres']}/flexenroll",
            admin_url=f"postgresql://flexenroll:{local_secret('db', 'admin')}@127.0.0.1:{ports['postgres']}/flexenroll",
            kafka_bootstrap=f"127.0.0.1:{ports['kafka']}",
            containers=containers,
        )
    finally:
        logs = {name: f"{project}_{name}_1" for name in (*SERVICES, "roles", "topics", "postgres", "kafka")}
        logs |= {f"{name}_{n}": f"{project}_{name}_{n}" for name in SERVICES for n in range(2, replicas + 1)}
        for log_name, container_name in logs.items():  # kept for a failure's reader
            with (log_dir / f"{log_name}.log").open("wb") as log:
                subprocess.run(["podman", "logs", container_name], stdout=log, stderr=subprocess.STDOUT)
        subprocess.run([COMPOSE_SH, "down"], env={**env, "COMPOSE_VOLUMES": "remove"}, check=False, timeout=600)


def published_url(container_name: str) -> str:
    """The base URL a container's port 8000 is published at on the host."""
    return f"http://{podman('port', container_name, '8000/tcp').splitlines()[0]}"


def container_address(container_name: str) -> str:
    """The container's address on its compose network (where the database sees it connect from)."""
    return podman(
        "inspect", container_name, "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    ).strip()


def container_state(container_name: str) -> tuple[bool, int]:
    """Whether the container runs, and how often its restart policy restarted it."""
    running, restarts = podman("inspect", container_name, "--format", "{{.State.Running}} {{.RestartCount}}").split()
    return running == "true", int(restarts)


# The client addresses of the backends holding a service's relay lock,
# `pg_try_advisory_lock(hashtext('<schema>.relay'))` (kernel/relay.py): a bigint key shows in
# pg_locks as classid (high half) and objid (low half), objsubid 1. Containers each connect from
# their own address, so the address tells the replica.
RELAY_HOLDERS = """
SELECT host(a.client_addr) AS address FROM pg_locks l JOIN pg_stat_activity a USING (pid)
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND (l.classid::text::bigint << 32 | l.objid::text::bigint) = hashtext($1)::bigint
"""


async def relay_leaders(deployment: ComposeDeployment) -> dict[str, list[str]]:
    """For each service, the containers whose relay holds its lock (`[name]`: one leader; an
    address of no container of the service shows as itself)."""
    by_address = {container_address(name): name for names in deployment.containers.values() for name in names}
    conn = await asyncpg.connect(deployment.admin_url)
    try:
        held = {s: [r["address"] for r in await conn.fetch(RELAY_HOLDERS, f"{s}.relay")] for s in SERVICES}
    finally:
        await conn.close()
    return {s: [by_address.get(address, address) for address in addresses] for s, addresses in held.items()}


def compose_env(name: str, path: Path = ROOT / "deploy" / "compose.env") -> str:
    """A one-line setting of the env file the deployment was made with (deploy/compose.env)."""
    for line in path.read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.partition("=")[2]
    raise KeyError(f"{name} is not set in {path}")


def machine_cas() -> list[str]:
    """The machine's own CA certificates, each as the base64 body of its PEM."""
    bodies = []
    for pem in sorted(MACHINE_CAS.glob("*.crt")):
        lines = [line.strip() for line in pem.read_text().splitlines() if line and not line.startswith("-----")]
        bodies.append("\n".join(lines))
    assert bodies, f"no CA of the machine's own in {MACHINE_CAS} to look for"
    return bodies


class AdminCodeReader(CodeReader):
    """tests/load's reader of texted codes, on the deployment's database as its administrator."""

    def __init__(self, admin_url: str, schema: str = "notify") -> None:
        self.admin_url = admin_url
        self.schema = schema
        self.pool = None


K8S = ROOT / "deploy" / "k8s"
SETTINGS: dict[str, type[ServiceSettings]] = {
    "identity": IdentitySettings,
    "enrollment": EnrollmentSettings,
    "review": ReviewSettings,
    "payment": PaymentSettings,
    "notify": NotifySettings,
}
# Shared settings a service reads but has no use for: identity holds the person keys itself.
NOT_NEEDED = {("identity", "personal_data_token")}
# Needed whatever their type: where the service listens, and in which environment it runs.
ALWAYS_NEEDED = {"environment", "kafka_bootstrap", "token_public_keys", "port", "metrics_port"}

Manifests = dict[tuple[str, str], dict[str, Any]]


def manifests(folder: Path = K8S) -> Manifests:
    """Every document of the folder's *.yaml by (kind, name)."""
    docs: Manifests = {}
    for path in sorted(folder.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs[(doc["kind"], doc["metadata"]["name"])] = doc
    return docs


def container(docs: Manifests, name: str, kind: str = "Deployment") -> dict[str, Any]:
    """The (only) container of the workload `name`."""
    containers: list[dict[str, Any]] = docs[(kind, name)]["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{kind} {name}: one container expected"
    return containers[0]


def _data(docs: Manifests, kind: str, name: str) -> dict[str, str]:
    doc = docs[(kind, name)]
    return {k: str(v) for k, v in (doc.get("data") or doc.get("stringData") or {}).items()}


def deployment_env(docs: Manifests, name: str, kind: str = "Deployment") -> dict[str, str]:
    """The workload's environment: envFrom's ConfigMaps and Secrets, then env (which wins)."""
    spec = container(docs, name, kind)
    env: dict[str, str] = {}
    for source in spec.get("envFrom", []):
        for ref_kind, ref in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if ref in source:
                env.update(_data(docs, ref_kind, source[ref]["name"]))
    for item in spec.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        for ref_kind, ref in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
            if ref in item["valueFrom"]:
                key = item["valueFrom"][ref]
                env[item["name"]] = _data(docs, ref_kind, key["name"])[key["key"]]
    return env


def read_variables(service: str) -> set[str]:
    """Every variable the service reads: its settings' fields, and <SERVICE>_PORT /
    <SERVICE>_METRICS_PORT (kernel.settings)."""
    fields = {name.upper() for name in SETTINGS[service].model_fields}
    return fields | {f"{service.upper()}_PORT", f"{service.upper()}_METRICS_PORT"}


def needed_variables(service: str) -> set[str]:
    """What a deployment must set: every secret (a default is a shipped one, refused in production),
    every address of another server (defaults are this machine's), and ALWAYS_NEEDED."""
    needed = set()
    for name, field in SETTINGS[service].model_fields.items():
        secret = "SecretStr" in str(field.annotation)
        if (secret or name.endswith("_url") or name in ALWAYS_NEEDED) and (service, name) not in NOT_NEEDED:
            needed.add(name.upper())
    return needed


def settings_from(cls: type[ServiceSettings], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> ServiceSettings:
    """`cls` as the service builds it in a container with exactly `env` set (no .env file)."""
    for name in list(read_variables(cls.model_fields["service"].default)):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return cls(_env_file=None)


# podman has no Services: a Deployment's pod is reachable on the pod network by its own name,
# `<name>-pod-0`, so the manifests' service addresses are pointed there before they are played.
SERVICE_ADDRESSES = {
    f"{host}:{port}": f"{host}-pod-0:{port}"
    for host, port in (("postgres", 5432), ("kafka", 9092), *((name, 8000) for name in SERVICES))
}
# What podman 4.3's kube play has no equivalent for (Jobs are played as Pods of their template).
NOT_PLAYED = {"Secret", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"}


def _playable(text: str) -> list[dict[str, Any]]:
    for name, pod in SERVICE_ADDRESSES.items():  # as a host of a URL or of a value: "kafka:9092", //notify:8000
        text = re.sub(rf"(?<=[\s\"/@]){re.escape(name)}", pod, text)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _as_played(doc: dict[str, Any]) -> dict[str, Any]:
    """A Job as a Pod of its template; every other kind as it is, without containerPorts (podman
    would publish each on the host: the pods meet on their network)."""
    if doc["kind"] == "Job":
        doc = {"apiVersion": "v1", "kind": "Pod", "metadata": doc["metadata"], "spec": doc["spec"]["template"]["spec"]}
    spec = doc.get("spec", {})
    for each in spec.get("template", {}).get("spec", spec).get("containers", []):
        each.pop("ports", None)
    return doc


@contextmanager
def kube_play(log_dir: Path) -> Iterator[str]:
    """deploy/k8s played with `podman kube play` on a network of its own, as far as podman goes:
    ConfigMaps, PersistentVolumeClaims and Deployments (one pod each); Secrets made podman secrets
    first (kube play reads a Secret only so: JSON of base64 values); Jobs as Pods (`_as_played`);
    NOT_PLAYED left out. Yields the network; removes everything it made."""
    network = f"flexenroll-kube-{uuid4().hex[:8]}"
    docs = [doc for path in sorted(K8S.glob("*.yaml")) for doc in _playable(path.read_text())]
    secrets = {doc["metadata"]["name"]: doc["stringData"] for doc in docs if doc["kind"] == "Secret"}
    played = [_as_played(doc) for doc in docs if doc["kind"] not in NOT_PLAYED]
    plan = log_dir / "kube.yaml"
    plan.write_text(yaml.safe_dump_all(played))
    try:
        podman("network", "create", network)
        for name, values in secrets.items():
            data = {key: base64.b64encode(str(value).encode()).decode() for key, value in values.items()}
            podman("secret", "create", name, "-", stdin=json.dumps(data))
        podman("kube", "play", "--network", network, str(plan))
        yield network
    finally:
        for doc in played:  # kept for a failure's reader
            if doc["kind"] in ("Pod", "Deployment"):
                name = _container_name(doc)
                with (log_dir / f"{name}.log").open("wb") as log:
                    subprocess.run(["podman", "logs", name], stdout=log, stderr=subprocess.STDOUT)
        subprocess.run(["podman", "kube", "down", str(plan)], capture_output=True)
        claims = [doc["metadata"]["name"] for doc in played if doc["kind"] == "PersistentVolumeClaim"]
        for command in (["volume", "rm", "-f", *claims], ["secret", "rm", *secrets], ["network", "rm", network]):
            subprocess.run(["podman", *command], capture_output=True)


def podman(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(["podman", *args], input=stdin, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args[:3])}: {done.stderr.strip()[-800:]}")
    return done.stdout


def _container_name(doc: dict[str, Any]) -> str:
    """How kube play names the (only) container of a Pod or Deployment: <pod>-<container>, the pod
    of a Deployment being <name>-pod-0."""
    name = doc["metadata"]["name"]
    deployment = doc["kind"] == "Deployment"
    spec = doc["spec"]["template"]["spec"] if deployment else doc["spec"]
    pod = f"{name}-pod-0" if deployment else name
    return f"{pod}-{spec['containers'][0]['name']}"


def pod_container(workload: str, kind: str = "Deployment") -> str:
    """The container kube play made for `workload` (a Job is played as a Pod of the same name)."""
    doc = manifests()[(kind, workload)]
    as_played = (
        doc
        if kind == "Deployment"
        else {"kind": "Pod", "metadata": doc["metadata"], "spec": doc["spec"]["template"]["spec"]}
    )
    return _container_name(as_played)


def ready_in_pod(name: str) -> bool:
    """The service's /readyz answers 200 inside its pod (kube play publishes no port)."""
    probe = "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/readyz', timeout=3)"
    return subprocess.run(["podman", "exec", name, "python", "-c", probe], capture_output=True).returncode == 0
