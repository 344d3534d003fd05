"""The web pages in a real browser (tests/e2e/test_web_*.py): the five services and web as processes, and
Debian's Chromium driven by Playwright (never a browser Playwright downloads).

Screenshots: every `shoot` lands in .run/screenshots/ (git-ignored) for people to look at; with
UPDATE_SCREENSHOTS=1 the first one of each page also replaces docs/screenshots/<page>.png, the
picture the README shows."""

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect, sync_playwright

from tests.support.applicant import PASSWORD, running_system
from tests.support.processes import ROOT, ServiceProcess

# Debian's package (make install); FLEXENROLL_CHROMIUM only for another build of the same browser.
CHROMIUM = Path(os.environ.get("FLEXENROLL_CHROMIUM") or "/usr/bin/chromium")
# Chromium on this machine: no sandbox as root, nothing fetched from the network it cannot reach.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# On 2 cores shared with the services, the broker and the database, a page may take its time: the
# waits are bounds, not expectations of speed (speed is measured in `make bench`, never here).
WAIT_MS = 20_000
PHONE = ViewportSize(width=375, height=812)
DESKTOP = ViewportSize(width=1366, height=900)
SHOTS = ROOT / ".run" / "screenshots"
KEPT = ROOT / "docs" / "screenshots"
ALL_SERVICES = ("identity", "enrollment", "review", "payment", "notify")


@contextmanager
def web_system(e2e_env: dict[str, str], log_dir: Path, label: str) -> Iterator[dict[str, ServiceProcess]]:
    """The five services and web, as processes; web calls the others at their ports."""
    with running_system(e2e_env, log_dir, label, ALL_SERVICES) as system:
        urls = {
            "IDENTITY_URL": system["identity"].url,
            "WEB_ENROLLMENT_URL": system["enrollment"].url,
            "WEB_REVIEW_URL": system["review"].url,
            "WEB_PAYMENT_URL": system["payment"].url,
            "WEB_NOTIFY_URL": system["notify"].url,
        }
        web = ServiceProcess("web", {**system["identity"].env, **urls}, log_dir)
        web.env.pop("SCHEMA_NAME", None)
        web.start()
        try:
            yield {**system, "web": web}
        finally:
            web.stop()


@contextmanager
def chromium() -> Iterator[Browser]:
    expect.set_options(timeout=WAIT_MS)
    if not CHROMIUM.is_file():
        raise RuntimeError(f"no {CHROMIUM}: `make install` installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def phone_context(browser: Browser, base_url: str) -> BrowserContext:
    """A phone-sized browser (375 px wide) with a fresh cookie jar."""
    context = browser.new_context(viewport=PHONE, base_url=base_url, locale="zh-CN", is_mobile=True, has_touch=True)
    context.set_default_timeout(WAIT_MS)
    return context


def desktop_context(browser: Browser, base_url: str) -> BrowserContext:
    context = browser.new_context(viewport=DESKTOP, base_url=base_url, locale="zh-CN")
    context.set_default_timeout(WAIT_MS)
    return context


_kept: set[str] = set()


def shoot(page: Page, name: str) -> Path:
    """A full-page screenshot named after the page and the viewport's width."""
    width = page.viewport_size["width"] if page.viewport_size else 0
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}-{width}.png"
    page.screenshot(path=str(path), full_page=True)
    key = f"{name}-{'phone' if width <= 480 else 'desktop'}"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1" and key not in _kept:
        KEPT.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, KEPT / f"{key}.png")
        _kept.add(key)
    return path


def log_in(page: Page, phone: str, password: str = PASSWORD, next_path: str = "") -> None:
    """Through the log-in form, as a person does; ends on `next_path`, else on the role's home."""
    page.goto(f"/login?next={quote(next_path, safe='')}" if next_path else "/login")
    page.get_by_label("手机号码").fill(phone)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()
    if next_path:
        page.wait_for_url(re.compile(re.escape(next_path) + "$"))
    else:
        page.wait_for_url(lambda url: "/login" not in url)
