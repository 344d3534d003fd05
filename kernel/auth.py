"""Bearer tokens (JWT, HS256) issued by identity and checked by every service."""

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


@dataclass(frozen=True)
class Principal:
    user_id: UUID
    role: Role

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
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def read_token(token: str, secret: str) -> Principal:
    try:
        claims = jwt.decode(token, secret, algorithms=[_ALGORITHM], issuer=_ISSUER, options={"require": ["exp", "sub"]})
        role = claims.get("role")
        if role not in ROLES:
            raise jwt.InvalidTokenError("unknown role")
        return Principal(user_id=UUID(claims["sub"]), role=role)
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
