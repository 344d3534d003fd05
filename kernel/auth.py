"""Bearer tokens (JWT, HS256) issued by identity and checked by every service.

A token names a person, a role and, for staff, an optional `scope`: the organisational unit they
are limited to. The kernel only carries the scope; what it means is the consuming service's
business (review reads it as the reviewer's accepting agency and shows only its cases).
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from uuid import UUID

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kernel.problems import Forbidden, Unauthorized

Role = Literal["applicant", "reviewer", "operator"]
ROLES: tuple[Role, ...] = ("applicant", "reviewer", "operator")
_ALGORITHM = "HS256"
_ISSUER = "flexenroll-identity"
STAFF_ROLES: tuple[Role, ...] = ("reviewer", "operator")
# Short and plain, so that it can be logged, compared and put in a URL without escaping.
SCOPE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@dataclass(frozen=True)
class Principal:
    user_id: UUID
    role: Role
    # The unit a staff member is limited to (None: not limited). Applicants never carry one: what
    # they may see is decided by ownership, not by a scope.
    scope: str | None = None

    def __post_init__(self) -> None:
        if self.scope is not None:
            if not self.is_staff:
                raise ValueError(f"a {self.role} carries no scope")
            if not SCOPE.fullmatch(self.scope):
                raise ValueError(f"scope {self.scope!r} is not a plain short name")

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


def issue_token(principal: Principal, secret: str, ttl_seconds: int, now: datetime | None = None) -> str:
    issued = now or datetime.now(UTC)
    claims = {
        "sub": str(principal.user_id),
        "role": principal.role,
        "iss": _ISSUER,
        "iat": issued,
        "exp": issued + timedelta(seconds=ttl_seconds),
    }
    if principal.scope is not None:  # absent otherwise: an unlimited principal
        claims["scope"] = principal.scope
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def read_token(token: str, secret: str) -> Principal:
    try:
        claims = jwt.decode(token, secret, algorithms=[_ALGORITHM], issuer=_ISSUER, options={"require": ["exp", "sub"]})
        role = claims.get("role")
        if role not in ROLES:
            raise jwt.InvalidTokenError("unknown role")
        scope = claims.get("scope")
        if scope is not None and not isinstance(scope, str):
            raise jwt.InvalidTokenError("scope is not a string")
        # ValueError (a scope on an applicant, a malformed one) is an invalid token too.
        return Principal(user_id=UUID(claims["sub"]), role=role, scope=scope)
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("token_expired", "登录已过期，请重新登录。") from exc
    except (jwt.InvalidTokenError, ValueError) as exc:
        raise Unauthorized("invalid_token", "登录凭证无效，请重新登录。") from exc


_bearer = HTTPBearer(auto_error=False)


def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("authentication_required", "请先登录。")
    secret: str = request.app.state.jwt_secret
    return read_token(credentials.credentials, secret)


def require_role(*roles: Role) -> object:
    def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in roles:
            raise Forbidden("wrong_role", "您没有办理此项业务的权限。")
        return principal

    return Depends(dependency)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
