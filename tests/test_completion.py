"""Completion of one plan item: both directions, overshoot and cap, wrong way, curves, non-metric KPIs."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from appraisal.completion import (
    DEFAULT_RATING_SCALE,
    CompletionUndefined,
    Curve,
    Step,
    bounded,
    checklist_completion,
    completion,
    rating_completion,
)
from appraisal.targets import parse_target, resolve


def ratio(numerator: str, denominator: str) -> D:
    """The expected ratio, worked out by hand as a fraction of the two changes."""
    return D(numerator) / D(denominator)


@pytest.mark.parametrize(
    ("direction", "baseline", "target", "actual", "expected"),
    [
        # up is better
        ("up", "3.00", "5.00", "5.50", D("1.25")),  # conversion +2pp, actual +2.5pp → 125 %
        ("up", "3.00", "3.06", "3.05", ratio("5", "6")),  # the card's example, 83 %
        ("up", "3.00", "5.00", "5.00", D(1)),
        ("up", "3.00", "5.00", "3.00", D(0)),
        ("up", "3.00", "5.00", "2.00", D("-0.5")),  # wrong way, raw
        ("up", "3.00", "5.00", "9.00", D(3)),  # overshoot, raw
        ("up", "0", "10", "4", D("0.4")),  # zero baseline
        ("up", "-5", "-4.5", "-4.75", D("0.5")),  # negative baseline
        ("up", "-5", "3", "-1", D("0.5")),  # crossing zero
        ("up", "100000", "120000", "130000", D("1.5")),
        # down is better
        ("down", "1.20", "1.08", "1.104", D("0.8")),  # complaint −10 %, actual −8 % → 80 %
        ("down", "1.20", "1.08", "1.08", D(1)),
        ("down", "1.20", "1.08", "1.20", D(0)),
        ("down", "1.20", "1.08", "1.32", D(-1)),  # wrong way, raw
        ("down", "1.20", "1.08", "0.96", D(2)),  # overshoot, raw
        ("down", "120", "90", "100", ratio("20", "30")),  # response seconds
        ("down", "0", "-10", "-5", D("0.5")),  # zero baseline
        ("down", "-5", "-5.5", "-5.25", D("0.5")),  # negative baseline
    ],
)
def test_completion_formula(direction: str, baseline: str, target: str, actual: str, expected: D) -> None:
    assert completion(D(baseline), D(target), D(actual), direction) == expected


@pytest.mark.parametrize(
    ("text", "baseline", "direction", "actual", "expected"),
    [
        ("+2pp", "3.00", "up", "5.50", D("1.25")),
        ("+2个百分点", "3.00", "up", "4.00", D("0.5")),
        ("+2%", "3.00", "up", "3.05", ratio("5", "6")),
        ("+0.5", "3.00", "up", "3.25", D("0.5")),
        ("=3.5", "3.00", "up", "3.75", D("1.5")),
        ("-10%", "1.20", "down", "1.104", D("0.8")),
        ("-0.2pp", "1.20", "down", "1.10", D("0.5")),
        ("-0.3", "1.20", "down", "0.90", D(1)),
        ("=1.0", "1.20", "down", "1.15", D("0.25")),
    ],
)
def test_every_target_notation(text: str, baseline: str, direction: str, actual: str, expected: D) -> None:
    level = resolve(parse_target(text), D(baseline), unit="%", direction=direction)
    assert completion(D(baseline), level, D(actual), direction) == expected


def test_target_equal_to_baseline_is_never_divided() -> None:
    with pytest.raises(CompletionUndefined, match="目标等于基线"):
        completion(D("3"), D("3"), D("4"), "up")


def test_unknown_direction() -> None:
    with pytest.raises(ValueError, match="direction"):
        completion(D("3"), D("4"), D("4"), "sideways")


CURVE = Curve((Step(D("0.6"), D(0)), Step(D("0.8"), D("0.6"))))  # <60 → 0, 60–80 → 60, above as is


@pytest.mark.parametrize(
    ("raw", "cap", "curve", "allow_negative", "expected"),
    [
        ("1.25", "1.5", None, False, "1.25"),
        ("1.5", "1.5", None, False, "1.5"),
        ("2", "1.5", None, False, "1.5"),  # overshoot capped
        ("2", "1.2", None, False, "1.2"),  # a template's own cap
        ("-0.5", "1.5", None, False, "0"),  # wrong way → 0
        ("-0.5", "1.5", None, True, "-0.5"),  # … unless the template allows negatives
        ("-3", "1.5", None, True, "-1.5"),  # … down to −cap
        ("0.5", "1.5", CURVE, False, "0"),
        ("0.6", "1.5", CURVE, False, "0.6"),
        ("0.7", "1.5", CURVE, False, "0.6"),
        ("0.79", "1.5", CURVE, False, "0.6"),
        ("0.8", "1.5", CURVE, False, "0.8"),
        ("0.95", "1.5", CURVE, False, "0.95"),
        ("1.8", "1.5", CURVE, False, "1.5"),  # curve then cap
        ("-0.4", "1.5", CURVE, True, "0"),  # a negative still meets the curve's floor
    ],
)
def test_bounded(raw: str, cap: str, curve: Curve | None, allow_negative: bool, expected: str) -> None:
    assert bounded(D(raw), cap=D(cap), curve=curve, allow_negative=allow_negative) == D(expected)


def test_curve_describe() -> None:
    assert CURVE.describe() == "低于 60 % 计 0 %；低于 80 % 计 60 %；其余照实"


@pytest.mark.parametrize(("stars", "expected"), [(1, "0"), (2, "0.6"), (3, "0.8"), (4, "1"), (5, "1.2")])
def test_rating_default_scale(stars: int, expected: str) -> None:
    assert rating_completion(stars) == D(expected)
    assert DEFAULT_RATING_SCALE[stars] == D(expected)


@pytest.mark.parametrize("stars", [0, 6, -1])
def test_rating_out_of_range(stars: int) -> None:
    with pytest.raises(CompletionUndefined, match="1–5"):
        rating_completion(stars)


def test_rating_custom_scale() -> None:
    scale = {1: D(0), 2: D("0.5"), 3: D("0.7"), 4: D("0.9"), 5: D("1.1")}
    assert rating_completion(3, scale) == D("0.7")


@pytest.mark.parametrize(
    ("done", "planned", "expected"),
    [(3, 4, D("0.75")), (4, 4, D(1)), (0, 4, D(0)), (5, 4, D("1.25")), (1, 3, ratio("1", "3"))],
)
def test_checklist(done: int, planned: int, expected: D) -> None:
    assert checklist_completion(done, planned) == expected


@pytest.mark.parametrize(("done", "planned", "message"), [(1, 0, "没有计划任务数"), (-1, 3, "不能为负")])
def test_checklist_refuses(done: int, planned: int, message: str) -> None:
    with pytest.raises(CompletionUndefined, match=message):
        checklist_completion(done, planned)
