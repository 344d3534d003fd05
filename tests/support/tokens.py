"""Bearer tokens for tests: the one place tests mint them, so that how identity signs tokens
(kernel/auth.py) can change without touching every test."""

from uuid import UUID, uuid4

from kernel.auth import Principal, Role, issue_token
from kernel.settings import ServiceSettings

_SECRET = ServiceSettings(service="tests").jwt_secret.get_secret_value()


def token(principal: Principal, ttl_seconds: int = 3600) -> str:
    """A token identity would issue for `principal` (development keys)."""
    return issue_token(principal, _SECRET, ttl_seconds)


def bearer(principal: Principal, ttl_seconds: int = 3600) -> dict[str, str]:
    """The Authorization header carrying `token(principal)`."""
    return {"Authorization": f"Bearer {token(principal, ttl_seconds)}"}


def as_role(role: Role, user_id: UUID | None = None, scope: str | None = None) -> dict[str, str]:
    """The header of a (new, unless given) user in `role`."""
    return bearer(Principal(user_id or uuid4(), role, scope))
