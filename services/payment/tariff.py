"""Yearly contribution tariffs: tier -> monthly amount per insurance, in integer fen.

An operator keeps one file per year, `services/payment/tariffs/<year>.toml` (or the folder named
by PAYMENT_TARIFFS_DIR). Every file is read and checked at start, so a broken file stops the
service instead of producing a wrong bill; a year with no file is a refusal (`tariff_missing`),
never a guessed amount. Pure apart from `TariffBook.from_folder`, which only reads files.
"""

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from kernel.problems import Refused

PENSION_TIERS = (1, 2, 3, 4, 5)  # guide PART-5: 一档…五档
MEDICAL_TIERS = (5,)  # guide PART-5: "医疗保险仅有第五档"
_YEAR_FILE = re.compile(r"^(\d{4})\.toml$")


class TariffFileError(ValueError):
    """A tariff file an operator must correct before the service starts."""


@dataclass(frozen=True)
class Tariff:
    year: int
    source: str
    pension: Mapping[int, int]
    medical: Mapping[int, int]
    figures_are_examples: bool

    def pension_fen(self, tier: int) -> int:
        return self.pension[tier]

    def medical_fen(self, tier: int) -> int:
        return self.medical[tier]


def _amounts(where: str, table: Any, tiers: tuple[int, ...]) -> Mapping[int, int]:
    if not isinstance(table, dict):
        raise TariffFileError(f"{where}: missing table of tiers")
    given = set(table)
    wanted = {str(t) for t in tiers}
    if given != wanted:
        raise TariffFileError(f"{where}: tiers must be exactly {sorted(wanted)}, found {sorted(given)}")
    amounts: dict[int, int] = {}
    for key, value in table.items():
        # bool is an int in Python, and a float would be a fraction of a fen: neither is an amount.
        if type(value) is not int or value <= 0:
            raise TariffFileError(f"{where}.{key}: the amount must be a positive integer of fen, got {value!r}")
        amounts[int(key)] = value
    return MappingProxyType(amounts)


def parse_tariff(text: str, year: int, where: str = "tariff") -> Tariff:
    data = tomllib.loads(text)
    if data.get("year") != year:
        raise TariffFileError(f"{where}: `year` must be {year} (the file's name), got {data.get('year')!r}")
    source = data.get("source")
    if not isinstance(source, str) or not source.strip():
        raise TariffFileError(f"{where}: a `source` line is required (where the figures come from)")
    examples = data.get("figures_are_examples")
    if not isinstance(examples, bool):
        raise TariffFileError(f"{where}: `figures_are_examples` must be true or false")
    return Tariff(
        year=year,
        source=source.strip(),
        pension=_amounts(f"{where} [pension]", data.get("pension"), PENSION_TIERS),
        medical=_amounts(f"{where} [medical]", data.get("medical"), MEDICAL_TIERS),
        figures_are_examples=examples,
    )


@dataclass(frozen=True)
class TariffBook:
    """The tariffs of every year an operator set."""

    tariffs: Mapping[int, Tariff] = field(default_factory=dict)

    @classmethod
    def from_folder(cls, folder: Path) -> "TariffBook":
        if not folder.is_dir():
            raise TariffFileError(f"tariff folder {folder} does not exist")
        tariffs: dict[int, Tariff] = {}
        for path in sorted(folder.glob("*.toml")):
            match = _YEAR_FILE.match(path.name)
            if match is None:
                raise TariffFileError(f"{path}: a tariff file is named <year>.toml")
            year = int(match.group(1))
            tariffs[year] = parse_tariff(path.read_text(encoding="utf-8"), year, str(path))
        return cls(MappingProxyType(tariffs))

    def of_year(self, year: int) -> Tariff:
        tariff = self.tariffs.get(year)
        if tariff is None:
            raise Refused(
                "tariff_missing",
                f"尚未设置{year}年度的缴费标准，暂不能生成该年度的账单；请运维人员先填写{year}年度缴费标准文件。",
                year=year,
            )
        return tariff

    @property
    def example_years(self) -> list[int]:
        return sorted(y for y, t in self.tariffs.items() if t.figures_are_examples)
