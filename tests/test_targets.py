"""Target notation: every written form resolves to the level a person would compute by hand."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from appraisal.targets import TargetError, parse_target, resolve


@pytest.mark.parametrize(
    ("text", "baseline", "unit", "direction", "level"),
    [
        # the CONTRACT.md table, on a 3.00 % KPI
        ("+2pp", "3.00", "%", "up", "5.00"),
        ("+2个百分点", "3.00", "%", "up", "5.00"),
        ("+2 百分点", "3.00", "%", "up", "5.00"),
        ("+2PP", "3.00", "%", "up", "5.00"),
        ("+2%", "3.00", "%", "up", "3.06"),
        ("-10%", "3.00", "%", "down", "2.70"),
        ("+0.5", "3.00", "%", "up", "3.50"),
        ("=3.5", "3.00", "%", "up", "3.5"),
        ("=3.5%", "3.00", "%", "up", "3.5"),
        # the worked examples
        ("+2pp", "3.00", "%", "up", "5.00"),  # conversion
        ("-10%", "1.20", "%", "down", "1.08"),  # complaint rate
        # other units, decimals, separators, full-width input
        ("+20%", "100000", "元", "up", "120000"),
        ("+1,000", "5000", "元", "up", "6000"),
        ("-30", "120", "秒", "down", "90"),
        ("+.5", "4.5", "", "up", "5.0"),
        ("＋２ｐｐ", "3.00", "%", "up", "5.00"),
        ("－10％", "1.20", "%", "down", "1.08"),
        ("−0.2pp", "1.20", "%", "down", "1.00"),
        # zero baseline: absolute forms work
        ("+10", "0", "单", "up", "10"),
        ("+2pp", "0", "%", "up", "2"),
        ("=5", "0", "单", "up", "5"),
        # negative baselines: relative change is on the baseline's size
        ("+10%", "-5", "万元", "up", "-4.5"),
        ("-10%", "-5", "万元", "down", "-5.5"),
        ("+2pp", "-3", "%", "up", "-1"),
        ("=-3", "-5", "万元", "up", "-3"),
        ("= -3", "-5", "万元", "up", "-3"),
        ("+8", "-5", "万元", "up", "3"),
    ],
)
def test_resolve(text: str, baseline: str, unit: str, direction: str, level: str) -> None:
    assert resolve(parse_target(text), D(baseline), unit=unit, direction=direction) == D(level)


@pytest.mark.parametrize(
    ("text", "kind", "amount"),
    [
        ("+2pp", "pp", "2"),
        ("-1.5个百分点", "pp", "-1.5"),
        ("+2%", "relative", "2"),
        ("-10%", "relative", "-10"),
        ("+0.5", "delta", "0.5"),
        ("-30", "delta", "-30"),
        ("=3.5", "level", "3.5"),
        ("=-3", "level", "-3"),
    ],
)
def test_parse(text: str, kind: str, amount: str) -> None:
    spec = parse_target(text)
    assert (spec.kind, spec.amount) == (kind, D(amount))


def test_level_without_baseline_resolves_and_others_refuse() -> None:
    assert resolve(parse_target("=3.5"), None, unit="%", direction="up") == D("3.5")
    with pytest.raises(TargetError, match="还没有数据"):
        resolve(parse_target("+2pp"), None, unit="%", direction="up", kpi_name="支付转化率")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2pp", "看不懂"),
        ("+", "看不懂"),
        ("+abc", "看不懂"),
        ("+2x", "看不懂"),
        ("", "看不懂"),
        ("=3.5元", "看不懂"),
        ("=3.5pp", "不要带单位"),
        ("+1e13", "看不懂"),
        ("+10000000000000", "大得不合理"),
        ("+20000%", r"超过 \+10000%"),
        ("-100%", "不能达到或超过 100%"),
        ("-150%", "不能达到或超过 100%"),
    ],
)
def test_parse_refuses(text: str, message: str) -> None:
    with pytest.raises(TargetError, match=message):
        parse_target(text)


@pytest.mark.parametrize(
    ("text", "baseline", "unit", "direction", "message"),
    [
        ("+2pp", "100", "元", "up", "不能用百分点"),
        ("=3.5%", "3", "元", "up", "不要带 %"),
        ("+0", "3.00", "%", "up", "目标等于基线"),
        ("=3", "3.00", "%", "up", "目标等于基线"),
        ("+0%", "3.00", "%", "up", "目标等于基线"),
        ("-2pp", "3.00", "%", "up", "越高越好"),
        ("+10%", "1.20", "%", "down", "越低越好"),
        ("+10%", "0", "%", "up", "当前为 0"),
        ("-2pp", "1.00", "%", "down", "低于 0%"),
        ("=-1", None, "%", "down", "低于 0%"),
    ],
)
def test_resolve_refuses(text: str, baseline: str | None, unit: str, direction: str, message: str) -> None:
    with pytest.raises(TargetError, match=message):
        resolve(
            parse_target(text), D(baseline) if baseline is not None else None, unit=unit, direction=direction
        )
