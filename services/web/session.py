"""Who is in front of the page: the bearer token identity issued, kept in a cookie the page's
scripts cannot read, and the CSRF token every form carries.

- Session: `flexenroll_session` holds the token from `POST /v1/sessions` (HttpOnly, SameSite=Lax,
  Secure outside development, until the token's `exp`). web verifies it as the services do
  (identity's public keys, audience `web`, the revocation list) only to know whom it greets and
  which pages it offers; every datum comes from a service that verifies the token itself.
- CSRF: a random seed in `flexenroll_csrf` (HttpOnly) and, in each form, the HMAC of that seed
  under WEB_CSRF_SECRET. A POST without the pair matching is refused before anything is called.
  SameSite=Lax already keeps the session cookie off cross-site POSTs; the token also covers the
  log-in form and browsers that ignore SameSite.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request, Response

from kernel.auth import Principal, Role, verify_token
from kernel.problems import Problem

SESSION_COOKIE = "flexenroll_session"
CSRF_COOKIE = "flexenroll_csrf"
CSRF_FIELD = "csrf"


class LoginRequired(Exception):
    """The page needs a signed-in visitor: answered with a redirect to /login?next=…"""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class WrongRole(Exception):
    """Signed in, but this page is for another role: answered 403 with a page saying so."""


class CsrfRefused(Exception):
    """A form without a valid CSRF token: answered 403, nothing called."""


@dataclass(frozen=True)
class Visitor:
    token: str | None
    principal: Principal | None
    csrf: str

    @property
    def signed_in(self) -> bool:
        return self.principal is not None

    @property
    def role(self) -> Role | None:
        return self.principal.role if self.principal else None

    def bearer(self) -> str:
        if self.token is None:
            raise LoginRequired("/")
        return self.token


def _csrf_token(secret: bytes, seed: str) -> str:
    return hmac.new(secret, seed.encode(), hashlib.sha256).hexdigest()


def _seed(request: Request) -> str:
    seed = request.cookies.get(CSRF_COOKIE, "")
    if len(seed) != 43:  # token_urlsafe(32); anything else is replaced
        seed = getattr(request.state, "new_csrf_seed", None) or secrets.token_urlsafe(32)
        request.state.new_csrf_seed = seed
    return seed


async def _principal(request: Request, token: str | None) -> Principal | None:
    if not token:
        return None
    state = request.app.state
    try:
        verified = verify_token(token, state.token_keys, "web")
        await state.token_guard.check(verified.principal.user_id, verified.version)
    except Problem:  # expired, forged, revoked, disabled: as if never signed in
        request.state.drop_session = True
        return None
    return verified.principal


async def current_visitor(request: Request) -> Visitor:
    token = request.cookies.get(SESSION_COOKIE)
    principal = await _principal(request, token)
    csrf = _csrf_token(request.app.state.csrf_secret, _seed(request))
    return Visitor(token if principal else None, principal, csrf)


CurrentVisitor = Annotated[Visitor, Depends(current_visitor)]


def _here(request: Request) -> str:
    query = f"?{request.url.query}" if request.url.query else ""
    return request.url.path + query


def signed_in(*roles: Role) -> object:
    """A page for these roles: others are sent to log in (no session) or refused (wrong role)."""

    async def dependency(request: Request, visitor: CurrentVisitor) -> Visitor:
        if visitor.principal is None:
            raise LoginRequired(_here(request))
        if roles and visitor.principal.role not in roles:
            raise WrongRole()
        return visitor

    return Depends(dependency)


async def check_csrf(request: Request) -> None:
    """A dependency of every POST route: the form's token must be the HMAC of the cookie's seed."""
    form = await request.form()
    given = str(form.get(CSRF_FIELD, ""))
    seed = request.cookies.get(CSRF_COOKIE, "")
    expected = _csrf_token(request.app.state.csrf_secret, seed) if seed else ""
    if not expected or not hmac.compare_digest(given, expected):
        raise CsrfRefused()


CsrfChecked = Depends(check_csrf)


def login_redirect_target(next_path: str) -> str:
    return f"/login?next={quote(next_path, safe='')}"


def safe_next(next_path: str | None, default: str) -> str:
    """Only a path of this site: never an open redirect to another one."""
    if next_path and next_path.startswith("/") and not next_path.startswith("//") and "\\" not in next_path:
        return next_path
    return default


def open_session(response: Response, token: str, expires_in: int, secure: bool) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, max_age=expires_in, httponly=True, samesite="lax", secure=secure, path="/"
    )


def close_session(response: Response, secure: bool) -> None:
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax", secure=secure, path="/")


def finish(request: Request, response: Response, secure: bool) -> Response:
    """Cookies a request decided on: a new CSRF seed, a dropped (expired, revoked) session."""
    seed = getattr(request.state, "new_csrf_seed", None)
    if seed:
        response.set_cookie(CSRF_COOKIE, seed, httponly=True, samesite="lax", secure=secure, path="/")
    if getattr(request.state, "drop_session", False):
        close_session(response, secure)
    return response
