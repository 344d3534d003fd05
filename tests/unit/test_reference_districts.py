"""contracts/reference/districts.toml agrees with GB/T 2260 as python-stdnum ships it (numdb "cn/loc").

stdnum keeps each code's history: `[1983-2001]郊区,[2002-]新北区` is 新北区 today, and
`[1983-2015]戚墅堰区` is no longer a district. Only a name with an open span (or none) is current.
"""

import re

import pytest
from stdnum import numdb

from contracts.events.base import CHANGZHOU_PREFIX
from contracts.reference import Agency, District, load_districts

DIRECTORY = load_districts()
CITY_CODE = CHANGZHOU_PREFIX + "00"  # 常州市 itself: the city-level agency's code
_SPAN = re.compile(r"^\[(?P<since>\d{4})?-(?P<until>\d{4})?\](?P<name>.+)$")


def current_name(code: str) -> str | None:
    """The GB/T 2260 name `code` has today (天宁区, 溧阳市, 常州市), None if retired or unknown."""
    [_, (_, fields)] = numdb.get("cn/loc").info(code)
    current = None
    for spelled in fields.get("county", "").split(","):
        span = _SPAN.fullmatch(spelled)
        if span is None or span["until"] is None:
            current = span["name"] if span else spelled or None
    return current


def test_the_parser_reads_stdnum_history() -> None:
    assert current_name("320411") == "新北区"  # 郊区 until 2001
    assert current_name("320405") is None  # 戚墅堰区, merged into 武进区 in 2015
    assert current_name(CITY_CODE) == "常州市"
    assert current_name("320499") is None


@pytest.mark.parametrize("district", DIRECTORY.districts, ids=lambda d: d.code)
def test_each_district_has_its_current_gbt2260_code_and_name(district: District) -> None:
    assert district.code.startswith(CHANGZHOU_PREFIX) and len(district.code) == 6
    assert current_name(district.code) == district.name


def test_every_current_district_of_changzhou_is_listed() -> None:
    """A district missing from the file would send its residents to the city's agency silently."""
    county_level = [f"{CHANGZHOU_PREFIX}{n:02d}" for n in range(2, 100)]  # xx01 is 市辖区, not a place
    current = {code for code in county_level if current_name(code) is not None}
    assert current == {d.code for d in DIRECTORY.districts}


@pytest.mark.parametrize("agency", DIRECTORY.agencies, ids=lambda a: a.code)
def test_each_agency_is_named_after_the_place_of_its_code(agency: Agency) -> None:
    """Agency codes are district codes (a district's own office) or the city's 320400."""
    assert agency.code == CITY_CODE or agency.code in DIRECTORY
    place = current_name(agency.code)
    assert place is not None and place in agency.name


def test_the_default_agency_is_the_citys_and_each_district_has_its_own_office() -> None:
    assert DIRECTORY.default_agency_code == CITY_CODE
    assert all(DIRECTORY.agency_for(d.code).code == d.code for d in DIRECTORY.districts)
    assert DIRECTORY.agency_for("320405").code == CITY_CODE  # a retired or unknown code: the city's
