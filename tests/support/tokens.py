"""Bearer tokens for tests: the one place tests mint them, so that how identity signs tokens
(kernel/auth.py) can change without touching every test.

They are signed with the shipped development key (deploy/local/keys/EXAMPLE-*), which every
service verifies with in development, and carry the role's audiences, as identity's would."""

import json
from datetime import datetime
from uuid import UUID, uuid4

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kernel.auth import Principal, PublicKeys, Role, SigningKey, issue_token, key_id, shipped_signing_key_pem

DEV_KEY = SigningKey.from_pem(shipped_signing_key_pem())


def token(principal: Principal, ttl_seconds: int = 3600, *, version: int = 0, now: datetime | None = None) -> str:
    """A token identity would issue for `principal` (development key)."""
    return issue_token(principal, DEV_KEY, ttl_seconds, version=version, now=now)


def bearer(principal: Principal, ttl_seconds: int = 3600, *, version: int = 0) -> dict[str, str]:
    """The Authorization header carrying `token(principal)`."""
    return {"Authorization": f"Bearer {token(principal, ttl_seconds, version=version)}"}


def as_role(role: Role, user_id: UUID | None = None, scope: str | None = None) -> dict[str, str]:
    """The header of a (new, unless given) user in `role`."""
    return bearer(Principal(user_id or uuid4(), role, scope))


def foreign_key() -> SigningKey:
    """A well-formed Ed25519 key no service trusts: what a forger would sign with."""
    private = Ed25519PrivateKey.generate()
    return SigningKey(private, key_id(private.public_key()))


# A production-like key pair (anything but the shipped example): IDENTITY_TOKEN_SIGNING_KEY and
# TOKEN_PUBLIC_KEYS of settings tested with environment=production.
_PRODUCTION_KEY = foreign_key()
PRODUCTION_SIGNING_KEY_PEM = _PRODUCTION_KEY.private.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
PRODUCTION_PUBLIC_KEYS = json.dumps(PublicKeys({}).with_key(_PRODUCTION_KEY.public).jwks())
