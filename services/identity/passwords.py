"""Password rules (issue 9): at least 10 characters, at most 128, not one of the common passwords
of `common_passwords.txt`, and taken exactly as typed: never trimmed, so spaces count (the request
bodies declare passwords as `Password`, which StrictBody does not strip).

`check_password` is the one check for every way a password is set: registration, staff creation
and password resets (flexctl)."""

from functools import lru_cache
from importlib import resources
from typing import Annotated

from pydantic import Field, StringConstraints

from kernel.problems import Refused

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
