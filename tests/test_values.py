"""The report cell parser: numbers as exports write them, blanks, dates; property tests."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sources.values import ValueParseError, parse_date, parse_value


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("3.25%", Decimal("3.25")),
        ("10.00%", Decimal("10.00")),
        ("1,234", Decimal("1234")),
        ("7,001", Decimal("7001")),
        ("35,000.10", Decimal("35000.10")),
        ("¥1,234.50", Decimal("1234.50")),
        ("￥99", Decimal("99")),  # full-width yen, as in GBK exports
        ("１２３", Decimal("123")),  # full-width digits
        ("３.５％", Decimal("3.5")),
        ("-12.5", Decimal("-12.5")),
        ("−3.2%", Decimal("-3.2")),  # typographic minus
        ("(1,200)", Decimal("-1200")),
        ("+7", Decimal("7")),
        ("1.2万", Decimal("12000.0")),
        ("3亿", Decimal("300000000")),
        ("100元", Decimal("100")),
        ("35秒", Decimal("35")),
        ("12.5秒", Decimal("12.5")),
        ("1分5秒", Decimal("65")),
        ("00:01:05", Decimal("65")),
        ("02:30", Decimal("150")),
        ("1.5E+3", Decimal("1.5E+3")),
        (" 42 ", Decimal("42")),
        ("0.123456789", Decimal("0.12345679")),  # storage keeps 8 decimals
        (7, Decimal(7)),
        (0.1, Decimal("0.1")),  # the float's shortest text, not its binary expansion
        (Decimal("2.50"), Decimal("2.50")),
        ("", None),
        ("   ", None),
        ("-", None),
        ("--", None),
        ("—", None),
        ("N/A", None),
        ("暂无", None),
        (None, None),
    ],
)
def test_parse_value(raw: object, expected: Decimal | None) -> None:
    got = parse_value(raw)
    assert got == expected
    if expected is not None:
        assert isinstance(got, Decimal)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("abc", "不是数值"),
        ("1,23", "千分位"),
        ("12,34,567", "千分位"),
        ("3.2.1", "不是数值"),
        ("%", "不是数值"),
        ("1e400", "过大"),
        ("99999999999999999", "过大"),
        (float("nan"), "有限"),
        (float("inf"), "有限"),
        (True, "不是数值"),
        (date(2026, 11, 22), "日期"),
    ],
)
def test_parse_value_refuses(raw: object, reason: str) -> None:
    with pytest.raises(ValueParseError, match=reason):
        parse_value(raw)


decimals = st.decimals(
    min_value=Decimal("-999999999999"), max_value=Decimal("999999999999"), places=4, allow_nan=False
)


@given(decimals)
def test_plain_text_round_trips(d: Decimal) -> None:
    assert parse_value(str(d)) == d


@given(decimals)
def test_thousands_separators(d: Decimal) -> None:
    assert parse_value(f"{d:,}") == d


@given(decimals)
def test_percent_is_kept_in_percent_units(d: Decimal) -> None:
    assert parse_value(f"{d}%") == d


@given(decimals.filter(lambda d: d >= 0))
def test_currency_and_separators_together(d: Decimal) -> None:
    assert parse_value(f"¥{d:,}") == d
    assert parse_value(f"￥{d:,}") == d


@given(st.text(alphabet=" \t\u3000\u00a0", max_size=5))
def test_whitespace_is_missing(s: str) -> None:
    assert parse_value(s) is None


@given(st.text(max_size=12))
def test_any_text_parses_or_says_why(s: str) -> None:
    """No input crashes the parser: a Decimal, None, or a ValueParseError with a reason."""
    try:
        v = parse_value(s)
    except ValueParseError as exc:
        assert str(exc)
    else:
        assert v is None or (isinstance(v, Decimal) and v.is_finite() and abs(v) < Decimal(10) ** 16)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-22", date(2026, 11, 22)),
        ("2026/11/2", date(2026, 11, 2)),
        ("2026.11.22", date(2026, 11, 22)),
        ("20261122", date(2026, 11, 22)),
        ("2026年11月22日", date(2026, 11, 22)),
        ("2026-11-22 00:00:00", date(2026, 11, 22)),
        (datetime(2026, 11, 22, 8, 0), date(2026, 11, 22)),
        (date(2026, 11, 22), date(2026, 11, 22)),
        (46348, date(2026, 11, 22)),  # Excel serial day number
    ],
)
def test_parse_date(raw: object, expected: date) -> None:
    assert parse_date(raw) == expected


@pytest.mark.parametrize("raw", ["2026-02-30", "合计", "", "11/22", "2026-11-16~2026-11-22", 12])
def test_parse_date_refuses(raw: object) -> None:
    with pytest.raises(ValueParseError):
        parse_date(raw)
