"""Bearer tokens (JWT, HS256) issued by identity and checked by every service."""

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
# An accepting agency's code (受理机构, GB/T 2260 style: six digits), e.g. "320411".
AGENCY_CODE = re.compile(r"^[0-9]{6}$")


@dataclass(frozen=True)
class Principal:
    user_id: UUID
    role: Role
    # The agency a reviewer works at: they see and decide only its cases. None: every agency's
    # (a city-level reviewer, every operator). Applicants and operators never carry one.
    agency_code: str | None = None

    def __post_init__(self) -> None:
        if self.agency_code is not None:
            if self.role != "reviewer":
                raise ValueError(f"a {self.role} carries no agency")
            if not AGENCY_CODE.fullmatch(self.agency_code):
                raise ValueError(f"agency code {self.agency_code!r} is not six digits")

    @property
    def is_staff(self) -> bool:
        return self.role in ("reviewer", "operator")


def issue_token(principal: Principal, secret: str, ttl_seconds: int, now: datetime | None = None) -> str:
    issued = now or datetime.now(UTC)
    claims = {
        "sub": str(principal.user_id),
        "role": principal.role,
        "iss": _ISSUER,
        "iat": issued,
        "exp": issued + timedelta(seconds=ttl_seconds),
    }
    if principal.agency_code is not None:  # absent otherwise: tokens without it stay as they were
        claims["agency"] = principal.agency_code
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def read_token(token: str, secret: str) -> Principal:
    try:
        claims = jwt.decode(token, secret, algorithms=[_ALGORITHM], issuer=_ISSUER, options={"require": ["exp", "sub"]})
        role = claims.get("role")
        if role not in ROLES:
            raise jwt.InvalidTokenError("unknown role")
        agency = claims.get("agency")
        if agency is not None and not isinstance(agency, str):
            raise jwt.InvalidTokenError("agency is not a string")
        # ValueError (an agency on a non-reviewer, a malformed code) is an invalid token too.
        return Principal(user_id=UUID(claims["sub"]), role=role, agency_code=agency)
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
