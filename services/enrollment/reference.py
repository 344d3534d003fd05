"""Reference data an operator edits without a release: the notice texts and the districts."""

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from stdnum import numdb


@dataclass(frozen=True)
class HelpLine:
    number: str
    topic: str


@dataclass(frozen=True)
class Notice:
    """A versioned notice with the help lines of guide Q8: 参保登记须知 (guide PART-4) or
    劳动事务代理人员须知 (guide PART-8)."""

    version: str
    title: str
    body: str
    help_lines: tuple[HelpLine, ...]


@dataclass(frozen=True)
class District:
    code: str
    name: str
    agency: str


@dataclass(frozen=True)
class Districts:
    by_code: dict[str, District]

    def __contains__(self, code: object) -> bool:
        return code in self.by_code

    def agency_name(self, code: str | None) -> str:
        """The agency of a district code (review routes by residence district), else the code."""
        if code is None:
            return ""
        district = self.by_code.get(code)
        return district.agency if district else code


def load_notice(path: Path) -> Notice:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    lines = tuple(HelpLine(str(h["number"]), str(h["topic"])) for h in raw.get("help_lines", []))
    return Notice(str(raw["version"]), str(raw["title"]), str(raw["body"]).strip(), lines)


def load_districts(path: Path) -> Districts:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    districts = [District(str(d["code"]), str(d["name"]), str(d["agency"])) for d in raw["district"]]
    return Districts({d.code: d for d in districts})


def region_name(code: str) -> str:
    """'320402' -> '江苏省天宁区' from the GB/T 2260 table python-stdnum ships (dates stripped)."""
    parts = [props for _, props in numdb.get("cn/loc").info(code) if props]
    names = [re.sub(r"^\[[^\]]*\]", "", value) for props in parts for value in props.values()]
    return "".join(names) or code
