"""The yearly tariff files: shipped years, the refusal of a missing year, integer fen only."""

from pathlib import Path

import pytest

from kernel.problems import Refused
from services.payment.tariff import TariffBook, TariffFileError, parse_tariff

SHIPPED = Path(__file__).resolve().parents[2] / "services" / "payment" / "tariffs"

GOOD = """
year = 2026
source = "test"
figures_are_examples = false
[pension]
1 = 100
2 = 200
3 = 300
4 = 400
5 = 500
[medical]
5 = 50
"""


def test_the_shipped_years_load_and_say_their_figures_are_examples() -> None:
    book = TariffBook.from_folder(SHIPPED)
    assert sorted(book.tariffs) == [2026, 2027]
    for year, tariff in book.tariffs.items():
        assert tariff.source and tariff.figures_are_examples
        assert set(tariff.pension) == {1, 2, 3, 4, 5} and set(tariff.medical) == {5}
        assert all(type(v) is int and v > 0 for v in [*tariff.pension.values(), *tariff.medical.values()])
        text = (SHIPPED / f"{year}.toml").read_text(encoding="utf-8")
        assert "EXAMPLES until an operator sets the year's official ones" in text
        assert "示例金额" in text
    assert book.example_years == [2026, 2027]
    # a higher tier never costs less
    pension = book.of_year(2026).pension
    assert [pension[t] for t in range(1, 6)] == sorted(pension[t] for t in range(1, 6))


def test_a_year_without_a_file_is_refused_never_guessed() -> None:
    book = TariffBook.from_folder(SHIPPED)
    with pytest.raises(Refused) as refused:
        book.of_year(2031)
    assert refused.value.code == "tariff_missing" and refused.value.status == 422
    assert "2031年度的缴费标准" in refused.value.detail
    assert refused.value.extensions == {"year": 2031}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("1 = 100", "1 = 100.5"), "positive integer of fen"),  # a float never becomes an amount
        (("1 = 100", "1 = true"), "positive integer of fen"),
        (("1 = 100", "1 = 0"), "positive integer of fen"),
        (("1 = 100", '1 = "100"'), "positive integer of fen"),
        (("5 = 500\n", ""), "tiers must be exactly"),
        (("[medical]\n5 = 50", "[medical]\n4 = 50"), "tiers must be exactly"),
        (('source = "test"', ""), "source"),
        (('source = "test"', 'source = "  "'), "source"),
        (("year = 2026", "year = 2025"), "must be 2026"),
        (("figures_are_examples = false", ""), "figures_are_examples"),
    ],
)
def test_a_broken_file_is_refused_with_what_to_correct(change: tuple[str, str], message: str) -> None:
    assert parse_tariff(GOOD, 2026).pension_fen(3) == 300
    with pytest.raises(TariffFileError, match=message):
        parse_tariff(GOOD.replace(*change, 1), 2026)


def test_a_folder_holds_year_files_only(tmp_path: Path) -> None:
    (tmp_path / "2026.toml").write_text(GOOD, encoding="utf-8")
    assert TariffBook.from_folder(tmp_path).of_year(2026).medical_fen(5) == 50
    (tmp_path / "next.toml").write_text(GOOD, encoding="utf-8")
    with pytest.raises(TariffFileError, match=r"named <year>\.toml"):
        TariffBook.from_folder(tmp_path)
    with pytest.raises(TariffFileError, match="does not exist"):
        TariffBook.from_folder(tmp_path / "missing")
