"""deploy/k8s read statically (runs in `make test`): every setting a service needs is set and
nothing it does not read; the settings load; ports and probes are those the code serves; every
Deployment has its Service, PodDisruptionBudget, HorizontalPodAutoscaler and resources; the
provisioning Jobs get every password deploy/containers/provision.py reads. The web pages
(services/web) are checked as the five services are, except that web has no database: nothing of
one is handed to it, and the addresses of the five APIs it calls are those of their Services."""

from collections.abc import Iterator
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from contracts.topics import SERVICES
from kernel.settings import ServiceSettings
from kernel.startup import OPERATIONAL_PATHS
from ops.broker_access import PRINCIPALS
from services.web.settings import WebSettings
from tests.support.containers import (
    SETTINGS,
    container,
    deployment_env,
    manifests,
    needed_variables,
    read_variables,
    settings_from,
)
from tests.support.processes import ROOT

WEB = "web"
WORKLOADS = (*SERVICES, WEB)  # every Deployment of services.yaml
# What web reads as every service does but has no use for: it has no database and reads no person's data.
NOT_FOR_WEB = {"DATABASE_URL", "DB_USER", "DB_PASSWORD", "DB_POOL_MIN", "DB_POOL_MAX", "PERSONAL_DATA_TOKEN"}
# The API each of web's addresses names (services/web/app.py).
WEB_APIS = {
    "IDENTITY_URL": "identity",
    "WEB_ENROLLMENT_URL": "enrollment",
    "WEB_REVIEW_URL": "review",
    "WEB_PAYMENT_URL": "payment",
    "WEB_NOTIFY_URL": "notify",
}


@pytest.fixture(autouse=True)
def web_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """tests.support.containers knows the five services' settings; web's are added for these tests."""
    if WEB not in SETTINGS:
        monkeypatch.setitem(SETTINGS, WEB, WebSettings)
    yield


def needed(service: str) -> set[str]:
    return needed_variables(service) - (NOT_FOR_WEB if service == WEB else set())


@pytest.mark.parametrize("service", WORKLOADS)
def test_every_setting_a_service_needs_is_set(service: str) -> None:
    env = deployment_env(manifests(), service)
    assert needed(service) - env.keys() == set()


@pytest.mark.parametrize("service", WORKLOADS)
def test_nothing_is_set_that_the_service_does_not_read(service: str) -> None:
    env = deployment_env(manifests(), service)
    assert env.keys() - read_variables(service) == set()


def test_web_is_given_nothing_of_a_database_and_the_five_apis_by_their_services() -> None:
    docs = manifests()
    env = deployment_env(docs, WEB)
    assert env.keys() & NOT_FOR_WEB == set()
    assert ("PersistentVolumeClaim", WEB) not in docs
    for variable, api in WEB_APIS.items():
        port = next(p["port"] for p in docs[("Service", api)]["spec"]["ports"] if p["name"] == "http")
        assert env[variable] == f"http://{api}:{port}", variable


@pytest.mark.parametrize("service", WORKLOADS)
def test_the_settings_load_and_the_ports_are_the_containers(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = manifests()
    settings: ServiceSettings = settings_from(SETTINGS[service], deployment_env(docs, service), monkeypatch)
    ports = {p["name"]: p["containerPort"] for p in container(docs, service)["ports"]}
    assert settings.service == service
    assert ports == {"http": settings.http_port(), "metrics": settings.metrics_http_port()}
    service_ports = {p["name"]: p["targetPort"] for p in docs[("Service", service)]["spec"]["ports"]}
    assert service_ports == ports


@pytest.mark.parametrize("service", WORKLOADS)
def test_the_probes_ask_what_the_service_answers(service: str) -> None:
    spec = container(manifests(), service)
    http = next(p["containerPort"] for p in spec["ports"] if p["name"] == "http")
    probes = {kind: spec[kind]["httpGet"] for kind in ("readinessProbe", "livenessProbe")}
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == "/healthz"
    for probe in probes.values():
        assert probe["path"] in OPERATIONAL_PATHS  # answered before the dependencies are (kernel/startup.py)
        assert probe["port"] == http


@pytest.mark.parametrize("service", WORKLOADS)
def test_every_deployment_is_budgeted_and_scaled(service: str) -> None:
    docs = manifests()
    labels = docs[("Deployment", service)]["spec"]["selector"]["matchLabels"]
    resources = container(docs, service)["resources"]
    assert set(resources) == {"requests", "limits"}
    assert {"cpu", "memory"} <= resources["requests"].keys() & resources["limits"].keys()
    assert docs[("PodDisruptionBudget", service)]["spec"]["selector"]["matchLabels"] == labels
    assert docs[("Service", service)]["spec"]["selector"] == labels
    target: dict[str, Any] = docs[("HorizontalPodAutoscaler", service)]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", service)


def test_the_jobs_get_every_password_they_provision() -> None:
    docs = manifests()
    roles = deployment_env(docs, "flexenroll-roles", kind="Job")
    broker = deployment_env(docs, "flexenroll-topics", kind="Job")
    assert {"DATABASE_ADMIN_URL", *(f"{s.upper()}_DB_PASSWORD" for s in SERVICES)} <= roles.keys()
    assert {"KAFKA_BOOTSTRAP", "KAFKA_ADMIN_PASSWORD", *(f"{p.upper()}_KAFKA_PASSWORD" for p in PRINCIPALS)} <= (
        broker.keys()
    )
    for service in SERVICES:  # the password a role is provisioned with is the one its service logs in with
        env = deployment_env(docs, service)
        assert roles[f"{service.upper()}_DB_PASSWORD"] == env["DB_PASSWORD"]
        assert broker[f"{service.upper()}_KAFKA_PASSWORD"] == env["KAFKA_PASSWORD"]
    # web: a broker principal (read-only) and no database role.
    assert broker[f"{WEB.upper()}_KAFKA_PASSWORD"] == deployment_env(docs, WEB)["KAFKA_PASSWORD"]
    assert f"{WEB.upper()}_DB_PASSWORD" not in roles


def test_compose_sets_what_web_needs_and_nothing_of_a_database() -> None:
    """deploy/compose.yaml's web, by variable name (values are compose.env's): as its Deployment."""
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())["services"]
    env = compose[WEB]["environment"]
    assert needed(WEB) - env.keys() == set()
    assert env.keys() - read_variables(WEB) == set()
    assert env.keys() & NOT_FOR_WEB == set()
    for variable, api in WEB_APIS.items():
        assert env[variable] == f"http://{api}:8000", variable
    assert compose[WEB]["command"] == ["services.web"]
    assert f"{WEB.upper()}_KAFKA_PASSWORD" in compose["topics"]["environment"]
