"""Reference data: the notice texts an operator edits without a release, and GB/T 2260 names.

Changzhou's districts and their agencies are the shared `contracts.reference`."""

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


def load_notice(path: Path) -> Notice:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    lines = tuple(HelpLine(str(h["number"]), str(h["topic"])) for h in raw.get("help_lines", []))
    return Notice(str(raw["version"]), str(raw["title"]), str(raw["body"]).strip(), lines)


def _latest(value: str) -> str:
    """The current name in a numdb value: "[-1991]东郊区,[1992-]东丽区" -> "东丽区"."""
    return re.sub(r"^\[[^\]]*\]", "", value.split(",")[-1])


def _name(code: str, level: str) -> str | None:
    found = [props[level] for _, props in numdb.get("cn/loc").info(code) if level in props]
    return _latest(found[-1]) if found else None


def _placeholder(name: str) -> bool:
    """Table rows that group counties without naming a city (市辖区, 省直辖县级行政单位, ...)."""
    return name in ("市辖区", "县") or "直辖县级" in name


def region_name(code: str) -> str:
    """'320106' -> '江苏省南京市鼓楼区': province, city and county of a GB/T 2260 code from the
    table python-stdnum ships, so that districts of the same name in two cities (Nanjing's and
    Xuzhou's 鼓楼区) print differently; a code the table does not know prints as itself."""
    if len(code) != 6 or not code.isdigit():
        return code
    province = _name(code[:2] + "0000", "province")
    city = _name(code[:4] + "00", "county") if code[2:4] != "00" else None
    county = _name(code, "county") if code[4:] != "00" else None
    parts = [p for p in (province, city, county) if p and not _placeholder(p)]
    names = [p for i, p in enumerate(parts) if p not in parts[:i]]
    return "".join(names) if county or city else code
