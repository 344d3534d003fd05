"""A bound on each test's time: a test that hangs fails with a dump of what it was waiting for,
instead of holding the whole run until CI's own limit cuts it off without a word.

A thread watches the test in progress. Past the bound it takes every thread's stack and every
asyncio task's stack (the waits of an event loop are invisible in a thread dump), then cancels the
running loop's tasks. The test fails, whatever it did after, with the stacks in its report, and
the session goes on. If the test still has not ended a minute later, the session is stopped with
the stacks printed: a stuck run that says where it stuck beats one that says nothing.
"""

import asyncio
import faulthandler
import gc
import os
import sys
import tempfile
import threading
import time
from collections.abc import Generator
from typing import TextIO

import pytest

LIMIT_SECONDS = float(os.environ.get("TEST_TIME_LIMIT_SECONDS", "300"))
GRACE_SECONDS = 60.0
EXIT_CODE = 70


class _Current:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.nodeid: str | None = None
        self.started = 0.0
        self.cancelled = False
        self.dump = ""
        self.told = False  # the test's report carries the failure already

    def begin(self, nodeid: str) -> None:
        with self.lock:
            self.nodeid, self.started, self.cancelled, self.dump = nodeid, time.monotonic(), False, ""
            self.told = False

    def end(self) -> None:
        with self.lock:
            self.nodeid = None


_current = _Current()
_config: list[pytest.Config] = []


def _running_loops() -> list[asyncio.AbstractEventLoop]:
    # The loop belongs to the main thread; another thread cannot ask asyncio for it.
    return [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop) and o.is_running()]


def _thread_stacks() -> str:
    with tempfile.TemporaryFile("w+") as out:  # faulthandler writes to a file descriptor only
        faulthandler.dump_traceback(file=out, all_threads=True)
        out.seek(0)
        return out.read()


def _task_stacks(loop: asyncio.AbstractEventLoop, out: TextIO) -> None:
    tasks = asyncio.all_tasks(loop)
    print(f"--- {len(tasks)} asyncio task(s) pending ---", file=out)
    for task in tasks:
        task.print_stack(file=out)


def _dump_and_cancel(loop: asyncio.AbstractEventLoop) -> None:
    with tempfile.TemporaryFile("w+") as out:
        _task_stacks(loop, out)
        out.seek(0)
        with _current.lock:
            _current.dump += out.read()
    for task in asyncio.all_tasks(loop):
        task.cancel()


def _expire(nodeid: str, elapsed: float) -> None:
    with _current.lock:
        _current.dump = f"{nodeid} ran {elapsed:.0f} s, over the {LIMIT_SECONDS:.0f} s bound: cancelled\n"
        _current.dump += _thread_stacks()
    for loop in _running_loops():
        loop.call_soon_threadsafe(_dump_and_cancel, loop)


def _stop_session(nodeid: str) -> None:
    capture = _config[0].pluginmanager.getplugin("capturemanager") if _config else None
    if capture is not None:
        capture.suspend_global_capture()  # the process ends here: its output must reach the terminal
    with _current.lock:
        print(_current.dump, file=sys.stderr)
    print(f"\n=== {nodeid} did not end after being cancelled: stopping the session ===", file=sys.stderr)
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    sys.stderr.flush()
    os._exit(EXIT_CODE)


def _watch() -> None:
    while True:
        time.sleep(1)
        with _current.lock:
            nodeid, elapsed, cancelled = _current.nodeid, time.monotonic() - _current.started, _current.cancelled
            if nodeid is not None and elapsed > LIMIT_SECONDS and not cancelled:
                _current.cancelled = True
        if nodeid is None or elapsed <= LIMIT_SECONDS:
            continue
        if not cancelled:
            _expire(nodeid, elapsed)
        elif elapsed > LIMIT_SECONDS + GRACE_SECONDS:
            _stop_session(nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    _current.begin(item.nodeid)
    try:
        yield
    finally:
        _current.end()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    with _current.lock:
        expired, dump, told = _current.cancelled, _current.dump, _current.told
        _current.told = told or expired
    if not expired or told:
        return
    if not report.failed:  # it ended only because it was cancelled: it did not pass
        report.outcome = "failed"
        report.longrepr = f"over the {LIMIT_SECONDS:.0f} s bound of one test (tests/support/watchdog.py)"
    report.sections.append(("watchdog: stacks when the bound passed", dump))


def pytest_sessionstart(session: pytest.Session) -> None:
    _config.append(session.config)
    threading.Thread(target=_watch, name="test-watchdog", daemon=True).start()
