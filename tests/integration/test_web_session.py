"""The web pages' session and form protection (services/web/session.py), in-process against a
real identity: the token in an HttpOnly cookie, CSRF-signed forms, no open redirect, the page
security headers, and a forged or tampered session treated as no session at all."""

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from services.web.app import build
from services.web.session import CSRF_COOKIE, SESSION_COOKIE
from services.web.settings import WebSettings
from tests.support.identity import Person, RunningIdentity, running_identity

WEB = "http://web.test"


@pytest.fixture
async def identity() -> AsyncIterator[RunningIdentity]:
    async with running_identity(relay_enabled=False) as running:
        yield running


@pytest.fixture
async def web(identity: RunningIdentity) -> AsyncIterator[httpx.AsyncClient]:
    # Every API call of the pages goes to the in-process identity: the only one these pages use.
    app = build(WebSettings(), transport=httpx.ASGITransport(app=identity.app))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=WEB) as client:
        yield client


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


async def log_in(web: httpx.AsyncClient, person: Person, next_path: str = "") -> httpx.Response:
    form = await web.get("/login")
    return await web.post(
        "/login",
        data={"csrf": csrf_of(form), "phone": person.phone, "password": person.password, "next": next_path},
    )


async def test_a_page_carries_its_security_headers_and_a_csrf_seed(web: httpx.AsyncClient) -> None:
    page = await web.get("/login")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'self'" in policy and "unsafe-inline" not in policy
    assert page.headers["x-frame-options"] == "SAMEORIGIN"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-content-type-options"] == "nosniff"
    seed = page.headers["set-cookie"]
    assert seed.startswith(f"{CSRF_COOKIE}=") and "HttpOnly" in seed and "SameSite=lax" in seed


async def test_logging_in_keeps_the_token_in_an_httponly_cookie(
    web: httpx.AsyncClient, identity: RunningIdentity
) -> None:
    person = await identity.register()
    answer = await log_in(web, person)
    assert answer.status_code == 303 and answer.headers["location"] == "/me"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=" in cookie
    home = await web.get("/")
    assert home.status_code == 303 and home.headers["location"] == "/me"
    out = await web.post("/logout", data={"csrf": csrf_of(await web.get("/help"))})
    assert out.status_code == 303 and f'{SESSION_COOKIE}=""' in out.headers["set-cookie"]
    assert "退出" not in (await web.get("/help")).text


async def test_a_form_without_its_csrf_token_is_refused_before_identity_is_asked(
    web: httpx.AsyncClient, identity: RunningIdentity
) -> None:
    person = await identity.register()
    await web.get("/login")  # the seed cookie is there; the token is not sent
    for token in ("", "0" * 64):
        refused = await web.post("/login", data={"csrf": token, "phone": person.phone, "password": person.password})
        assert refused.status_code == 403 and "页面已过期" in refused.text
        assert SESSION_COOKIE not in refused.headers.get("set-cookie", "")
    # A token made for another visitor's seed does not fit this one's.
    other = httpx.AsyncClient(transport=web._transport, base_url=WEB)
    stolen = csrf_of(await other.get("/login"))
    refused = await web.post("/login", data={"csrf": stolen, "phone": person.phone, "password": person.password})
    assert refused.status_code == 403
    await other.aclose()


async def test_next_is_followed_on_this_site_only(web: httpx.AsyncClient, identity: RunningIdentity) -> None:
    person = await identity.register()
    assert (await log_in(web, person, "/me/bills")).headers["location"] == "/me/bills"
    for elsewhere in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        assert (await log_in(web, person, elsewhere)).headers["location"] == "/me"


async def test_a_wrong_password_shows_identitys_words_on_the_form(
    web: httpx.AsyncClient, identity: RunningIdentity
) -> None:
    person = await identity.register()
    form = await web.get("/login")
    wrong = await web.post("/login", data={"csrf": csrf_of(form), "phone": person.phone, "password": "not-it-123"})
    assert wrong.status_code == 401 and 'role="alert"' in wrong.text
    assert person.phone in wrong.text  # the phone stays filled in, the password does not
    assert SESSION_COOKIE not in wrong.headers.get("set-cookie", "")


async def test_a_tampered_session_is_no_session(web: httpx.AsyncClient, identity: RunningIdentity) -> None:
    person = await identity.register()
    await log_in(web, person)
    token = web.cookies[SESSION_COOKIE]
    header, payload, signature = token.split(".")
    web.cookies.set(SESSION_COOKIE, f"{header}.{payload}.{signature[::-1]}", domain="web.test")
    page = await web.get("/")  # signed in, it would send the applicant on to /me
    assert page.status_code == 200 and 'href="/login"' in page.text
    assert f'{SESSION_COOKIE}=""' in page.headers["set-cookie"]  # dropped, not kept


async def test_a_document_may_be_larger_than_a_form_and_no_larger_than_its_limit(web: httpx.AsyncClient) -> None:
    photo = {"file": ("id.jpg", b"\xff\xd8" + b"0" * 2_000_000, "image/jpeg")}
    path = "/me/applications/00000000-0000-0000-0000-000000000001/documents/id_card_front"
    through = await web.post(path, files=photo, data={"csrf": "x"})
    assert through.status_code != 413  # past the limit check: refused for its missing session/CSRF instead
    too_large = await web.post("/login", files=photo, data={"csrf": "x"})
    assert too_large.status_code == 413
    huge = {"file": ("id.jpg", b"0" * (WebSettings().web_upload_max_bytes + 1), "image/jpeg")}
    assert (await web.post(path, files=huge)).status_code == 413
