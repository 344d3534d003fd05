"""deploy/k8s read statically (runs in `make test`): every setting a service needs is set and
nothing it does not read; the settings load; ports and probes are those the code serves; every
Deployment has its Service, PodDisruptionBudget, HorizontalPodAutoscaler and resources; the
provisioning Jobs get every password deploy/containers/provision.py reads."""

from typing import Any

import pytest

from contracts.topics import SERVICES
from kernel.settings import ServiceSettings
from kernel.startup import OPERATIONAL_PATHS
from ops.broker_access import PRINCIPALS
from tests.support.containers import (
    SETTINGS,
    container,
    deployment_env,
    manifests,
    needed_variables,
    read_variables,
    settings_from,
)


@pytest.mark.parametrize("service", SERVICES)
def test_every_setting_a_service_needs_is_set(service: str) -> None:
    env = deployment_env(manifests(), service)
    assert needed_variables(service) - env.keys() == set()


@pytest.mark.parametrize("service", SERVICES)
def test_nothing_is_set_that_the_service_does_not_read(service: str) -> None:
    env = deployment_env(manifests(), service)
    assert env.keys() - read_variables(service) == set()


@pytest.mark.parametrize("service", SERVICES)
def test_the_settings_load_and_the_ports_are_the_containers(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = manifests()
    settings: ServiceSettings = settings_from(SETTINGS[service], deployment_env(docs, service), monkeypatch)
    ports = {p["name"]: p["containerPort"] for p in container(docs, service)["ports"]}
    assert settings.service == service
    assert ports == {"http": settings.http_port(), "metrics": settings.metrics_http_port()}
    service_ports = {p["name"]: p["targetPort"] for p in docs[("Service", service)]["spec"]["ports"]}
    assert service_ports == ports


@pytest.mark.parametrize("service", SERVICES)
def test_the_probes_ask_what_the_service_answers(service: str) -> None:
    spec = container(manifests(), service)
    http = next(p["containerPort"] for p in spec["ports"] if p["name"] == "http")
    probes = {kind: spec[kind]["httpGet"] for kind in ("readinessProbe", "livenessProbe")}
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == "/healthz"
    for probe in probes.values():
        assert probe["path"] in OPERATIONAL_PATHS  # answered before the dependencies are (kernel/startup.py)
        assert probe["port"] == http


@pytest.mark.parametrize("service", SERVICES)
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
