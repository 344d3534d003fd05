"""Starting a service process that may not become ready (its dependencies away), and reading its
log: `ServiceProcess.start` waits for /readyz 200, which such a test must not."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.processes import ROOT, ServiceProcess


def launch(service: ServiceProcess) -> ServiceProcess:
    """The service's process, started with the environment `ServiceProcess.start` gives it, not waited for."""
    env = {
        **os.environ,
        **service.env,
        f"{service.name.upper()}_PORT": str(service.port),
        f"{service.name.upper()}_METRICS_PORT": str(service.metrics_port),
        "PYTHONPATH": str(ROOT),
    }
    with log_path(service).open("ab") as log:  # the child keeps its own handle
        service.process = subprocess.Popen(
            [sys.executable, "-m", f"services.{service.name}"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    return service


def log_path(service: ServiceProcess) -> Path:
    return service.log_dir / f"{service.name}.log"


def log_lines(service: ServiceProcess) -> list[dict[str, Any]]:
    """The JSON lines of the service's log (LOG_JSON); other lines are skipped."""
    lines: list[dict[str, Any]] = []
    for line in log_path(service).read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            lines.append(entry)
    return lines
