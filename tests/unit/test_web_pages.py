"""Pure parts of the pages' shell (services/web/pages.py, session.py)."""

from datetime import UTC, datetime

import pytest

from services.web.pages import ENVIRONMENT, local_date, local_time, yuan
from services.web.session import safe_next


@pytest.mark.parametrize(
    ("fen", "shown"),
    [(0, "0.00 元"), (5, "0.05 元"), (123450, "1,234.50 元"), (-2000, "-20.00 元"), (None, "—")],
)
def test_amounts_in_fen_read_as_yuan(fen: int | None, shown: str) -> None:
    assert yuan(fen) == shown


def test_instants_read_in_beijing_time() -> None:
    assert local_time("2026-12-01T16:30:00+00:00") == "2026-12-02 00:30"
    assert local_time(datetime(2026, 1, 1, 0, 0, tzinfo=UTC), "%H:%M") == "08:00"
    assert local_time(None) == "—" and local_date("2026-03-04") == "2026-03-04" and local_date("") == "—"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("/me/bills", "/me/bills"),
        ("/console?page=2", "/console?page=2"),
        ("//evil.example", "/d"),
        ("https://evil.example", "/d"),
        ("/\\evil.example", "/d"),
        ("", "/d"),
        (None, "/d"),
    ],
)
def test_next_stays_on_this_site(given: str | None, kept: str) -> None:
    assert safe_next(given, "/d") == kept


def test_templates_escape_what_they_show() -> None:
    html = ENVIRONMENT.from_string("<p>{{ x }}</p>").render(x="<script>alert(1)</script>")
    assert "<script>" not in html and "&lt;script&gt;" in html
