"""The workday calendar against the State Council's 2026 holiday notice (国办发明电〔2025〕), by hand.

Expected values are read off the official notice, not produced by the code:
元旦 1/1–1/3 off, 1/4 (Sun) work; 春节 2/15–2/23 off, 2/14 and 2/28 (Sat) work;
中秋 9/25–9/27 off; 国庆 10/1–10/7 off, 9/20 (Sun) and 10/10 (Sat) work.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from handlers import workdays as wd

SH = ZoneInfo("Asia/Shanghai")
D = date.fromisoformat


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ("2026-11-23", True),  # an ordinary Monday
        ("2026-11-28", False),  # an ordinary Saturday
        ("2026-10-01", False),  # 国庆
        ("2026-10-07", False),  # 国庆, a Wednesday
        ("2026-10-08", True),
        ("2026-10-10", True),  # 调休 Saturday
        ("2026-09-20", True),  # 调休 Sunday
        ("2026-09-25", False),  # 中秋, a Friday
        ("2026-01-04", True),  # 元旦 调休 Sunday
        ("2026-02-14", True),  # 春节 调休 Saturday
        ("2026-02-23", False),  # 春节, a Monday
        ("2026-02-28", True),  # 春节 调休 Saturday
    ],
)
def test_official_2026_days(day: str, expected: bool) -> None:
    assert wd.is_workday(D(day)) is expected


@pytest.mark.parametrize(
    ("day", "overrides", "expected"),
    [
        ("2026-11-28", {D("2026-11-28"): True}, True),  # a company make-up Saturday
        ("2026-11-23", {D("2026-11-23"): False}, False),  # an extra day off
        ("2026-10-10", {D("2026-10-10"): False}, False),  # the override beats the package
        ("2026-11-24", {D("2026-11-23"): False}, True),  # other days are untouched
    ],
)
def test_overrides_win(day: str, overrides: dict[date, bool], expected: bool) -> None:
    assert wd.is_workday(D(day), overrides) is expected


@pytest.mark.parametrize(
    ("day", "week"),
    [
        ("2026-11-23", "2026-W48"),
        ("2026-11-29", "2026-W48"),  # Sunday belongs to the week it ends
        ("2027-01-01", "2026-W53"),  # 2026 has 53 ISO weeks
        ("2025-12-29", "2026-W01"),  # a December Monday in next year's week 1
        ("2024-12-30", "2025-W01"),
        ("2021-01-03", "2020-W53"),
    ],
)
def test_iso_week(day: str, week: str) -> None:
    assert wd.iso_week(D(day)) == week


@pytest.mark.parametrize(
    ("moment", "week"),
    [
        (datetime(2026, 11, 29, 15, 59, tzinfo=UTC), "2026-W48"),  # Sun 23:59 Shanghai
        (datetime(2026, 11, 29, 16, 0, tzinfo=UTC), "2026-W49"),  # Mon 00:00 Shanghai, still Sunday in UTC
        (datetime(2026, 12, 31, 17, 0, tzinfo=UTC), "2026-W53"),  # 2027-01-01 01:00 Shanghai
    ],
)
def test_week_of_uses_the_team_zone(moment: datetime, week: str) -> None:
    assert wd.week_of(moment, SH) == week


def test_week_of_refuses_naive() -> None:
    with pytest.raises(ValueError, match="aware"):
        wd.week_of(datetime(2026, 11, 23, 10, 0), SH)  # noqa: DTZ001


@pytest.mark.parametrize("bad", ["2026-48", "2026-W00", "2025-W53", "2026-W54", "W48", ""])
def test_parse_week_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        wd.parse_week(bad)


@pytest.mark.parametrize(
    ("week", "monday", "sunday"),
    [
        ("2026-W48", "2026-11-23", "2026-11-29"),
        ("2026-W53", "2026-12-28", "2027-01-03"),
        ("2026-W01", "2025-12-29", "2026-01-04"),
    ],
)
def test_week_dates(week: str, monday: str, sunday: str) -> None:
    days = wd.week_dates(week)
    assert (days[0], days[-1], len(days)) == (D(monday), D(sunday), 7)


@pytest.mark.parametrize(
    ("week", "overrides", "workdays"),
    [
        ("2026-W48", {}, ["2026-11-23", "2026-11-24", "2026-11-25", "2026-11-26", "2026-11-27"]),
        (
            "2026-W48",
            {D("2026-11-28"): True},
            ["2026-11-23", "2026-11-24", "2026-11-25", "2026-11-26", "2026-11-27", "2026-11-28"],
        ),
        (
            "2026-W38",
            {},
            ["2026-09-14", "2026-09-15", "2026-09-16", "2026-09-17", "2026-09-18", "2026-09-20"],
        ),
        ("2026-W39", {}, ["2026-09-21", "2026-09-22", "2026-09-23", "2026-09-24"]),  # 中秋 Friday
        ("2026-W40", {}, ["2026-09-28", "2026-09-29", "2026-09-30"]),  # 国庆 starts Thursday
        ("2026-W41", {}, ["2026-10-08", "2026-10-09", "2026-10-10"]),  # ends with the 调休 Saturday
        (
            "2026-W07",
            {},
            ["2026-02-09", "2026-02-10", "2026-02-11", "2026-02-12", "2026-02-13", "2026-02-14"],
        ),
        ("2026-W08", {}, []),  # the whole week is 春节
        ("2026-W01", {}, ["2025-12-29", "2025-12-30", "2025-12-31", "2026-01-04"]),  # across New Year
        # beyond the package's years: Mon–Fri (2032 has 53 ISO weeks; 2033-01-01 is a Saturday)
        ("2032-W53", {}, ["2032-12-27", "2032-12-28", "2032-12-29", "2032-12-30", "2032-12-31"]),
        # a team file that declares 2027's New Year's Day off, whatever the package knows
        ("2026-W53", {D("2027-01-01"): False}, ["2026-12-28", "2026-12-29", "2026-12-30", "2026-12-31"]),
    ],
)
def test_workdays_in_week(week: str, overrides: dict[date, bool], workdays: list[str]) -> None:
    expected = [D(d) for d in workdays]
    assert wd.workdays_in_week(week, overrides) == expected
    assert wd.first_workday(week, overrides) == (expected[0] if expected else None)
    assert wd.last_workday(week, overrides) == (expected[-1] if expected else None)


@pytest.mark.parametrize(
    ("week", "local", "elapsed"),
    [
        ("2026-W48", "2026-11-23 10:00", 0),  # Monday: nothing is behind us yet
        ("2026-W48", "2026-11-25 10:00", 2),  # Wednesday
        ("2026-W48", "2026-11-28 10:00", 5),  # Saturday
        ("2026-W48", "2026-12-07 10:00", 5),  # long after
        ("2026-W48", "2026-11-20 10:00", 0),  # before the week
        ("2026-W41", "2026-10-08 10:00", 0),  # first workday after 国庆
        ("2026-W41", "2026-10-10 10:00", 2),  # the 调休 Saturday: Thu, Fri behind
        ("2026-W41", "2026-10-11 10:00", 3),  # Sunday: the Saturday counts too
        ("2026-W40", "2026-10-02 10:00", 3),  # inside the holiday
    ],
)
def test_workdays_elapsed(week: str, local: str, elapsed: int) -> None:
    now = datetime.fromisoformat(local).replace(tzinfo=SH)
    assert wd.workdays_elapsed(week, now, SH) == elapsed


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("2026-11-25 08:59", False),
        ("2026-11-25 09:00", True),
        ("2026-11-25 17:59", True),
        ("2026-11-25 18:00", False),
        ("2026-11-28 10:00", False),  # Saturday
        ("2026-10-10 10:00", True),  # 调休 Saturday
        ("2026-10-05 10:00", False),  # 国庆 Monday
    ],
)
def test_working_time(local: str, expected: bool) -> None:
    moment = datetime.fromisoformat(local).replace(tzinfo=SH).astimezone(UTC)
    assert wd.is_working_time(moment, SH) is expected


def test_beyond_the_package_falls_back_and_says_so_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wd, "_warned_years", set())
    with caplog.at_level(logging.WARNING, logger=wd.__name__):
        got = [wd.is_workday(D(d)) for d in ("2031-03-03", "2031-03-08", "2031-03-04")]
    assert got == [True, False, True]  # Mon, Sat, Tue
    lines = [r for r in caplog.records if "2031" in r.getMessage()]
    assert len(lines) == 1
    assert "Monday–Friday" in lines[0].getMessage()


def test_shift_week_crosses_years() -> None:
    assert wd.shift_week("2026-W53", 1) == "2027-W01"
    assert wd.shift_week("2026-W01", -1) == "2025-W52"


def test_calendar_binds_the_overrides() -> None:
    cal = wd.Calendar({D("2026-10-10"): False})
    assert cal.workdays_in_week("2026-W41") == [D("2026-10-08"), D("2026-10-09")]
    assert (cal.first_workday("2026-W41"), cal.last_workday("2026-W41")) == (D("2026-10-08"), D("2026-10-09"))
    assert cal.is_workday(D("2026-10-10")) is False and wd.is_workday(D("2026-10-10")) is True
    sunday = datetime(2026, 10, 11, 10, 0, tzinfo=SH)
    assert cal.workdays_elapsed("2026-W41", sunday, SH) == 2
