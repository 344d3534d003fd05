"""Test people: valid resident ID numbers (check character computed by python-stdnum)."""

from datetime import date

from stdnum.cn import ric


def id_number(birth: date, *, male: bool = True, region: str = "320402", seq: int = 1) -> str:
    """An 18-character resident ID number; the 17th digit is odd for men, even for women."""
    order = seq * 2 + 1 if male else seq * 2
    body = f"{region}{birth:%Y%m%d}{order % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")
