"""A broker outage must not flood the log (issue 10, "Resilience bugs": about 10,000 "Unable connect
to node" lines in 22 s): aiokafka's repeated lines are let through once per window, the next one
saying how many were dropped; our own lines never are."""

import io
import json
import logging

import structlog

from kernel.logging import RepeatFilter, configure_logging


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(name: str, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, args, None)


def test_repeats_of_a_library_line_pass_once_per_window_and_then_say_how_many_were_dropped() -> None:
    clock = Clock()
    quiet = RepeatFilter(30.0, prefixes=("aiokafka",), clock=clock)
    template = "Unable connect to node with id %s: %s"
    passed = [quiet.filter(record("aiokafka.conn", template, n, "refused")) for n in range(10_000)]
    assert passed.count(True) == 1 and passed[0]
    assert quiet.filter(record("aiokafka.conn", "another message %s", 1))  # another kind passes
    clock.now = 31.0
    later = record("aiokafka.conn", template, 1, "refused")
    assert quiet.filter(later)
    assert "(and 9999 more like it in the last 30 s)" in later.getMessage()


def test_our_own_lines_are_never_dropped() -> None:
    quiet = RepeatFilter(30.0, prefixes=("aiokafka",), clock=Clock())
    assert all(quiet.filter(record("kernel.relay", "relay_publish_failed")) for _ in range(100))


def test_the_service_log_gets_one_line_for_a_burst_of_connection_errors() -> None:
    out = io.StringIO()
    configure_logging("test", stream=out)
    try:
        noisy = logging.getLogger("aiokafka.conn")
        for n in range(500):
            noisy.error("Unable connect to node with id %s: %s", n, "Connect call failed")
        logging.getLogger("uvicorn.error").error("a line of our stack")
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
    finally:  # the configuration holds this test's stream: do not leak it into later tests
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()
        logging.getLogger().handlers.clear()
    assert [line["event"] for line in lines if "Unable connect" in line["event"]] == [
        "Unable connect to node with id 0: Connect call failed"
    ]
    assert any(line["event"] == "a line of our stack" for line in lines)
