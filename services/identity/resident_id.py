"""Resident ID numbers (GB 11643) through python-stdnum, plus what the domain reads from them."""

from dataclasses import dataclass
from datetime import date
from typing import Literal

from stdnum import numdb
from stdnum.cn import ric
from stdnum.exceptions import InvalidComponent, ValidationError

from contracts.events.base import mask_id_number

Gender = Literal["male", "female"]


class InvalidIdNumber(ValueError):
    pass


@dataclass(frozen=True)
class ResidentId:
    number: str
    birth_date: date
    gender: Gender
    region_code: str

    @property
    def masked(self) -> str:
        return mask_id_number(self.number)


def parse_resident_id(raw: str, today: date) -> ResidentId:
    """Validate format, check character and birth date; read gender from the 17th digit.

    stdnum also refuses a region code that did not exist in the birth year, but people born
    before a district was created carry its code when their card was issued later (e.g.
    320412 武进区, created 1995), so a code known at any time is accepted.
    """
    try:
        number = ric.validate(raw)
    except InvalidComponent as exc:
        number = ric.compact(raw)
        if not numdb.get("cn/loc").info(number[:6]) or len(number) != 18:
            raise InvalidIdNumber("unknown region code") from exc
        try:
            ric.get_birth_date(number)
        except ValidationError as date_exc:
            raise InvalidIdNumber("invalid birth date") from date_exc
    except ValidationError as exc:
        raise InvalidIdNumber(str(exc)) from exc
    birth = ric.get_birth_date(number)
    if birth > today or birth.year < 1900:
        raise InvalidIdNumber("birth date out of range")
    gender: Gender = "male" if int(number[16]) % 2 == 1 else "female"
    return ResidentId(number=number, birth_date=birth, gender=gender, region_code=number[:6])
