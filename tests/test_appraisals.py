"""The appraisal core (handlers/appraisals.py): dates as people write them."""

from __future__ import annotations

from datetime import date

import pytest

from handlers.appraisals import AppraisalError, parse_day


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("12-01", date(2026, 12, 1)),
        ("12/1", date(2026, 12, 1)),
        ("12月1日", date(2026, 12, 1)),
        ("2027-01-05", date(2027, 1, 5)),
        ("11-23", date(2026, 11, 23)),
        ("11-22", date(2027, 11, 22)),  # already past this year: next year's
        ("01-05", date(2027, 1, 5)),
    ],
)
def test_parse_day(text: str, day: date) -> None:
    assert parse_day(text, date(2026, 11, 23)) == day


@pytest.mark.parametrize("text", ["13-01", "02-30", "tomorrow", "2026-13-01", ""])
def test_parse_day_refuses(text: str) -> None:
    with pytest.raises(AppraisalError, match="看不懂"):
        parse_day(text, date(2026, 11, 23))
