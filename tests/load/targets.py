"""Where the services are: loopback addresses only, so that a load run can never reach a machine
other than this one (docs/benchmarks.md, "Running it")."""

import ipaddress
import random
import subprocess
from urllib.parse import urlsplit

from tests.support.processes import ROOT

SERVICE_NAMES = ("identity", "enrollment", "review", "payment", "notify")
SERVICES_SH = ROOT / "deploy" / "local" / "services.sh"
STACK_SH = ROOT / "deploy" / "local" / "stack.sh"


class NotLoopback(ValueError):
    """A URL that names anything but this machine's loopback interface."""


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def loopback_url(url: str) -> str:
    """`url` without a trailing slash, or NotLoopback: a load run is aimed at this machine only."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not is_loopback_host(parts.hostname or ""):
        raise NotLoopback(f"refusing {url!r}: only http(s) URLs on the loopback interface are allowed")
    return url.rstrip("/")


def stack_value(key: str) -> str | None:
    """A setting of the stack `make up` runs (deploy/local/stack.sh get KEY; the environment wins)."""
    if not STACK_SH.exists():
        return None
    done = subprocess.run([str(STACK_SH), "get", key], capture_output=True, text=True)
    return done.stdout.strip() or None if done.returncode == 0 else None


def stack_port(name: str) -> int:
    """The port `make up` gives `name` (the stack file's <NAME>_PORT, deploy/local/stack.env)."""
    done = subprocess.run([str(SERVICES_SH), "port", name], capture_output=True, text=True, check=True)
    return int(done.stdout.strip())


def stack_urls(overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Every service's base URL: the override when given, else `make up`'s port on 127.0.0.1."""
    given = overrides or {}
    return {name: loopback_url(given.get(name) or f"http://127.0.0.1:{stack_port(name)}") for name in SERVICE_NAMES}


def phone_address(rng: random.Random) -> str:
    """A source address of its own in 127.0.0.0/8 for one simulated phone: identity throttles per
    client address (services/identity/README.md), and thousands of phones are not one address."""
    return f"127.{rng.randint(1, 254)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
