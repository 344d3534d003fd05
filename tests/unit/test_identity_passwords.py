"""Password rules (issue 9; services/identity/passwords.py): at least 10 characters, not common,
never trimmed."""

import pytest

from kernel.problems import Refused
from kernel.web import StrictBody
from services.identity.passwords import MIN_LENGTH, Password, check_password, common_passwords


@pytest.mark.parametrize(
    "weak",
    [
        "aaaaaaa1",  # the example: too short
        "s3cret-pw",  # 9 characters
        "1234567890",  # common
        "qwertyuiop",
        "PASSWORD123",  # common, whatever the case
        "1qaz2wsx3edc",
        "woaini1314",  # common among Chinese users
        "          ",  # blanks only
        "aaaaaaaaaaaa",  # one character repeated
        "x" * 129,
    ],
)
def test_weak_passwords_are_refused(weak: str) -> None:
    with pytest.raises(Refused) as refused:
        check_password(weak)
    assert refused.value.code == "weak_password" and any("\u4e00" <= ch <= "\u9fff" for ch in refused.value.detail)


@pytest.mark.parametrize("good", ["s3cret-pass", "灵活就业参保2025年", "correct horse battery", " padded pass "])
def test_long_uncommon_passwords_pass(good: str) -> None:
    check_password(good)


def test_the_shipped_list_is_large_and_lower_case() -> None:
    common = common_passwords()
    assert len(common) > 20_000 and "password" in common and "123456" in common
    assert all(p == p.lower() for p in common)
    assert MIN_LENGTH == 10


def test_passwords_are_never_trimmed() -> None:
    class Body(StrictBody):
        password: Password
        phone: str

    body = Body(password="  my pass phrase  ", phone=" 13800138000 ")
    assert body.password == "  my pass phrase  " and body.phone == "13800138000"
