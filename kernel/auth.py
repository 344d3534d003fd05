"""Bearer tokens (JWT, EdDSA/Ed25519) signed by identity alone and verified by every service.

identity holds the private key (IDENTITY_TOKEN_SIGNING_KEY); every service verifies with the
public keys of TOKEN_PUBLIC_KEYS (a JWKS), chosen by the token's `kid` header, so that a new key
can be published before identity signs with it (services/identity/README.md, "Tokens").

A token names a person (`sub`), a role and, for staff, an optional `scope`: the organisational
unit they are limited to. The kernel only carries the scope; what it means is the consuming
service's business (review reads it as the reviewer's accepting agency and shows only its cases).
`aud` lists the services the role may use (AUDIENCES): a service accepts only tokens that name
it. `ver` is the account's token version: identity bumps it (password reset, role change,
disabling) and every service refuses older tokens (kernel.revocation).
"""

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol
from uuid import UUID

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kernel.problems import Forbidden, Unauthorized

Role = Literal["applicant", "reviewer", "operator"]
ROLES: tuple[Role, ...] = ("applicant", "reviewer", "operator")
_ALGORITHM = "EdDSA"
_ISSUER = "flexenroll-identity"
STAFF_ROLES: tuple[Role, ...] = ("reviewer", "operator")
# Short and plain, so that it can be logged, compared and put in a URL without escaping.
SCOPE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
# The services each role may use: a token's `aud` (README: "Services and what each owns").
AUDIENCES: dict[Role, tuple[str, ...]] = {
    "applicant": ("identity", "enrollment", "payment", "web"),
    "reviewer": ("identity", "enrollment", "review", "web"),
    "operator": ("identity", "enrollment", "review", "payment", "notify", "web"),
}

# The development key pair `make up` and the tests use: known to everyone, refused outside
# development (kernel.settings, services.identity.settings).
SHIPPED_KEYS_DIR = Path(__file__).resolve().parent.parent / "deploy" / "local" / "keys"
SHIPPED_SIGNING_KEY_FILE = SHIPPED_KEYS_DIR / "EXAMPLE-identity-token-signing-key.pem"
SHIPPED_PUBLIC_KEYS_FILE = SHIPPED_KEYS_DIR / "EXAMPLE-token-public-keys.jwks.json"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _public_jwk(public: Ed25519PublicKey) -> dict[str, str]:
    x = _b64url(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    return {"kty": "OKP", "crv": "Ed25519", "x": x}


def key_id(public: Ed25519PublicKey) -> str:
    """The key's id: its RFC 7638 JWK thumbprint, so that a kid can never name two keys."""
    canonical = json.dumps(_public_jwk(public), separators=(",", ":"), sort_keys=True).encode()
    return _b64url(hashlib.sha256(canonical).digest())


def public_jwk(public: Ed25519PublicKey) -> dict[str, str]:
    """The JWKS entry of a public key (with its kid)."""
    return {**_public_jwk(public), "kid": key_id(public), "alg": _ALGORITHM, "use": "sig"}


@dataclass(frozen=True)
class SigningKey:
    """identity's private key and its kid."""

    private: Ed25519PrivateKey
    kid: str

    @classmethod
    def from_pem(cls, pem: str | bytes) -> "SigningKey":
        key = serialization.load_pem_private_key(pem.encode() if isinstance(pem, str) else pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the token signing key must be an Ed25519 private key (PEM, PKCS#8)")
        return cls(key, key_id(key.public_key()))

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()


@dataclass(frozen=True)
class PublicKeys:
    """The keys tokens are verified with, by kid (a JWKS may hold the current and the next key)."""

    by_kid: Mapping[str, Ed25519PublicKey]
    # Tokens these keys verified: (token, audience) -> (what it said, its `exp`); see verify_token.
    verified: dict[tuple[str, str], tuple["Verified", float]] = field(
        default_factory=dict, compare=False, repr=False, hash=False
    )

    @classmethod
    def from_jwks(cls, jwks: str | Mapping[str, Any]) -> "PublicKeys":
        data = json.loads(jwks) if isinstance(jwks, str) else jwks
        keys: dict[str, Ed25519PublicKey] = {}
        for entry in data.get("keys", []):
            if entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519":
                raise ValueError("token public keys must be Ed25519 (kty OKP, crv Ed25519)")
            raw = base64.urlsafe_b64decode(entry["x"] + "=" * (-len(entry["x"]) % 4))
            public = Ed25519PublicKey.from_public_bytes(raw)
            kid = key_id(public)
            if entry.get("kid", kid) != kid:
                raise ValueError(f"kid {entry.get('kid')!r} is not the key's thumbprint {kid!r}")
            keys[kid] = public
        if not keys:
            raise ValueError("no token public key given")
        return cls(keys)

    @classmethod
    def load(cls, text_or_path: str) -> "PublicKeys":
        """TOKEN_PUBLIC_KEYS: JWKS JSON text, or the path of a JWKS file."""
        text = text_or_path.strip()
        return cls.from_jwks(text if text.startswith("{") else Path(text).read_text())

    def with_key(self, public: Ed25519PublicKey) -> "PublicKeys":
        return PublicKeys({**self.by_kid, key_id(public): public})

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [public_jwk(k) for k in self.by_kid.values()]}


def shipped_signing_key_pem() -> str:
    return SHIPPED_SIGNING_KEY_FILE.read_text()


def shipped_public_kids() -> frozenset[str]:
    return frozenset(PublicKeys.load(str(SHIPPED_PUBLIC_KEYS_FILE)).by_kid)


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


def issue_token(
    principal: Principal, key: SigningKey, ttl_seconds: int, *, version: int = 0, now: datetime | None = None
) -> str:
    issued = now or datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(principal.user_id),
        "role": principal.role,
        "aud": list(AUDIENCES[principal.role]),
        "ver": version,
        "iss": _ISSUER,
        "iat": issued,
        "exp": issued + timedelta(seconds=ttl_seconds),
    }
    if principal.scope is not None:  # absent otherwise: an unlimited principal
        claims["scope"] = principal.scope
    return jwt.encode(claims, key.private, algorithm=_ALGORITHM, headers={"kid": key.kid})


@dataclass(frozen=True)
class Verified:
    principal: Principal
    version: int


_INVALID = ("invalid_token", "登录凭证无效，请重新登录。")


# Checking a token's signature and claims costs about 0.2 ms of CPU, and an app sends the same
# token with every request of a session: a token verified once is remembered by its keys (at most
# this many, the oldest forgotten first) until its `exp`, so that the next requests cost a lookup
# (issue 10, item 5). Only what the token itself says is remembered: revocation is still judged
# on every request (current_principal), and a refused token is never remembered.
VERIFIED_TOKENS_MAX = 4096


def verify_token(token: str, keys: PublicKeys, audience: str) -> Verified:
    """The principal and token version of a token signed by one of `keys` for `audience`."""
    known = keys.verified.get((token, audience))
    if known is not None:
        verified, expires = known
        if time.time() < expires:
            return verified
        del keys.verified[(token, audience)]
    verified, expires = _verify(token, keys, audience)
    if len(keys.verified) >= VERIFIED_TOKENS_MAX:
        del keys.verified[next(iter(keys.verified))]
    keys.verified[(token, audience)] = (verified, expires)
    return verified


def _verify(token: str, keys: PublicKeys, audience: str) -> tuple[Verified, float]:
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        public = keys.by_kid.get(kid) if isinstance(kid, str) else None
        if public is None:
            raise jwt.InvalidTokenError("unknown kid")
        claims = jwt.decode(
            token,
            public,
            algorithms=[_ALGORITHM],
            issuer=_ISSUER,
            audience=audience,
            options={"require": ["exp", "sub", "aud", "iss", "ver"]},
        )
        role = claims.get("role")
        if role not in ROLES:
            raise jwt.InvalidTokenError("unknown role")
        scope = claims.get("scope")
        if scope is not None and not isinstance(scope, str):
            raise jwt.InvalidTokenError("scope is not a string")
        version = claims["ver"]
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise jwt.InvalidTokenError("ver is not a version")
        # ValueError (a scope on an applicant, a malformed one) is an invalid token too.
        principal = Principal(user_id=UUID(claims["sub"]), role=role, scope=scope)
        return Verified(principal, version), float(claims["exp"])
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("token_expired", "登录已过期，请重新登录。") from exc
    except (jwt.InvalidTokenError, ValueError) as exc:
        raise Unauthorized(*_INVALID) from exc


def read_token(token: str, keys: PublicKeys, audience: str) -> Principal:
    return verify_token(token, keys, audience).principal


class TokenGuard(Protocol):
    """Refuses a token of a disabled account or an older token version (kernel.revocation)."""

    async def check(self, user_id: UUID, version: int) -> None: ...


_bearer = HTTPBearer(auto_error=False)


def bearer_token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("authentication_required", "请先登录。")
    return credentials.credentials


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    token = bearer_token(credentials)
    state = request.app.state
    verified = verify_token(token, state.token_keys, state.token_audience)
    guard: TokenGuard = state.runtime.token_guard
    await guard.check(verified.principal.user_id, verified.version)
    return verified.principal


def require_role(*roles: Role) -> object:
    def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in roles:
            raise Forbidden("wrong_role", "您没有办理此项业务的权限。")
        return principal

    return Depends(dependency)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def _presented_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    return bearer_token(credentials)


# The bearer token as presented, for a service that asks identity on the caller's behalf (review's
# own_case check); use it together with CurrentPrincipal, which verifies it.
PresentedToken = Annotated[str, Depends(_presented_token)]


def service_caller(credentials: HTTPAuthorizationCredentials | None, tokens: Mapping[str, bytes], right: str) -> str:
    """Which service calls with one of `tokens` (service name -> its token), for a service-to-service
    right (`right`: what it may do, in Chinese, for the refusal). Every token is compared in
    constant time, so that timing tells neither which service nor how much of a token matched."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("authentication_required", f"请提供{right}的服务令牌。")
    given = credentials.credentials.encode()
    matched = [name for name, token in tokens.items() if hmac.compare_digest(given, token)]
    if not matched:
        raise Unauthorized("invalid_token", f"服务令牌无效，无权{right}。")
    return matched[0]
