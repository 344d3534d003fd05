"""Password rules (issue 9): at least 10 characters, at most 128, not one of the common passwords
of `common_passwords.txt`, and taken exactly as typed: never trimmed, so spaces count (the request
bodies declare passwords as `Password`, which StrictBody does not strip).

`check_password` is the one check for every way a password is set: registration, staff creation
and password resets (flexctl). `hasher()` is how every password is hashed (argon2id at OWASP's
parameters: services/identity/README.md, "Password hashing")."""

from functools import lru_cache
from importlib import resources
from typing import Annotated

from argon2 import PasswordHasher
from pydantic import Field, StringConstraints

from kernel.problems import Refused

# argon2id at OWASP's minimum (19 MiB, 2 passes, 1 lane): why these and not the library's
# defaults is in services/identity/README.md, "Password hashing".
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1

MIN_LENGTH = 10
MAX_LENGTH = 128

# A password in a request body: as typed, spaces included (StrictBody strips every other text).
Password = Annotated[str, StringConstraints(strip_whitespace=False), Field(min_length=1, max_length=MAX_LENGTH)]


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    text = resources.files("services.identity").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def check_password(text: str) -> None:
    """Refuse (422 weak_password) a password that is too short, too long, blank or common."""
    if len(text) < MIN_LENGTH or len(text) > MAX_LENGTH:
        raise Refused("weak_password", f"密码长度需为{MIN_LENGTH}至{MAX_LENGTH}位。")
    if not text.strip():
        raise Refused("weak_password", "密码不能全部为空格。")
    if text.lower() in common_passwords() or len(set(text)) < 3:
        raise Refused("weak_password", "该密码过于常见，容易被猜中，请换一个更复杂的密码。")


def hasher() -> PasswordHasher:
    """The one password hasher: a stored hash made with other parameters still verifies, and
    `check_needs_rehash` tells the log-in to store it again with these."""
    return PasswordHasher(time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB, parallelism=ARGON2_PARALLELISM)
