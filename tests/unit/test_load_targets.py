"""A load run aims at this machine only (tests/load/targets.py)."""

import random

import pytest

from tests.load.stack import CodeReader
from tests.load.targets import NotLoopback, loopback_url, phone_address, stack_urls


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8001", "http://127.8.9.10:8002/", "http://localhost:8003", "http://[::1]:8004"]
)
def test_loopback_urls_are_taken(url: str) -> None:
    assert loopback_url(url) == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5:8001",
        "http://example.cn",
        "http://0.0.0.0:8001",
        "ftp://127.0.0.1/x",
        "http://127.0.0.1.nip.io",
    ],
)
def test_anything_else_is_refused(url: str) -> None:
    with pytest.raises(NotLoopback):
        loopback_url(url)


def test_an_override_elsewhere_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(NotLoopback):
        stack_urls({"payment": "http://192.168.1.20:8004"})


def test_a_database_elsewhere_is_refused() -> None:
    with pytest.raises(NotLoopback):
        CodeReader("postgresql://db.example.cn:5432/flexenroll")


def test_each_phone_gets_a_loopback_source_address() -> None:
    rng = random.Random(3)
    addresses = {phone_address(rng) for _ in range(50)}
    assert len(addresses) > 45
    assert all(loopback_url(f"http://{a}:1") for a in addresses)
