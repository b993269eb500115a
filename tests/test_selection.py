"""Which template applies: every precedence step, windows in and out, across New Year, in words."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from appraisal.selection import (
    PRESET_PERIODS,
    Employee,
    NoTemplate,
    Period,
    Switch,
    employee_type,
    parse_period,
    select_template,
    validate_period,
    week_days,
    week_of,
    with_presets,
)
from appraisal.templates import Template, parse_template


def tpl(tid: str, name: str, **conditions: Any) -> Template:
    return parse_template({"id": tid, "name": name, "weights": {"conversion_rate": 100}, **conditions})


DEFAULT = tpl("ops-default", "运营默认模板", role="operations")
NEW = tpl("ops-new", "新人模板", role="operations", employee_type="new")
PROMO = tpl("ops-promo", "大促模板", role="operations", period="double11")
LOGISTICS = tpl("ops-logistics", "物流模板", role="operations", scenario="logistics_peak")
CNY = tpl("ops-cny", "春节模板", role="operations", period="cny")
CS = tpl("cs-default", "客服默认模板", role="customer_service")
ALL = [DEFAULT, NEW, PROMO, LOGISTICS, CNY, CS]
PERIODS = with_presets([Period("cny", "春节", (12, 20), (1, 10))])
AT = datetime(2026, 10, 1, 2, tzinfo=UTC)


def switch(to: str, start: str, until: str | None, by: str = "张伟", at: datetime = AT) -> Switch:
    return Switch(to, date.fromisoformat(start), date.fromisoformat(until) if until else None, by, at)


VETERAN = Employee("lilei", "operations")
NEWBIE = Employee("hanmeimei", "operations", type="new")
LOGISTICS_ON = {"logistics_peak": "物流高峰"}


@pytest.mark.parametrize(
    ("week", "person", "scenarios", "switches", "expected", "reason"),
    [
        # 5. the role's default
        ("2026-W47", VETERAN, {}, [], "ops-default", "运营默认模板"),
        ("2026-W42", VETERAN, {}, [], "ops-default", "运营默认模板"),
        # 4. employee type beats the default
        ("2026-W47", NEWBIE, {}, [], "ops-new", "新人模板（新员工）替代 运营默认模板"),
        # 3. a period beats employee type and default; windows touching the week by one day
        ("2026-W43", VETERAN, {}, [], "ops-promo", "大促模板（双11 10-20–11-11）替代 运营默认模板"),
        ("2026-W46", VETERAN, {}, [], "ops-promo", "大促模板（双11 10-20–11-11）替代 运营默认模板"),
        ("2026-W46", NEWBIE, {}, [], "ops-promo", "大促模板（双11 10-20–11-11）替代 新人模板"),
        ("2026-W42", NEWBIE, {}, [], "ops-new", "新人模板（新员工）替代 运营默认模板"),
        ("2026-W47", NEWBIE, {}, [], "ops-new", "新人模板（新员工）替代 运营默认模板"),
        # … a period that crosses New Year
        ("2026-W50", VETERAN, {}, [], "ops-default", "运营默认模板"),  # 12-07–12-13
        (
            "2026-W51",
            VETERAN,
            {},
            [],
            "ops-cny",
            "春节模板（春节 12-20–01-10）替代 运营默认模板",
        ),  # has 12-20
        (
            "2026-W53",
            VETERAN,
            {},
            [],
            "ops-cny",
            "春节模板（春节 12-20–01-10）替代 运营默认模板",
        ),  # 12-28–01-03
        (
            "2027-W01",
            VETERAN,
            {},
            [],
            "ops-cny",
            "春节模板（春节 12-20–01-10）替代 运营默认模板",
        ),  # 01-04–01-10
        ("2027-W02", VETERAN, {}, [], "ops-default", "运营默认模板"),  # 01-11–01-17
        # 2. an active scenario beats a period
        ("2026-W46", VETERAN, LOGISTICS_ON, [], "ops-logistics", "物流模板（物流高峰场景）替代 大促模板"),
        ("2026-W47", VETERAN, LOGISTICS_ON, [], "ops-logistics", "物流模板（物流高峰场景）替代 运营默认模板"),
        ("2026-W47", NEWBIE, LOGISTICS_ON, [], "ops-logistics", "物流模板（物流高峰场景）替代 新人模板"),
        ("2026-W47", VETERAN, {"other": "其他"}, [], "ops-default", "运营默认模板"),  # another scenario
        # 1. a manual switch beats everything, inside its window only
        (
            "2026-W46",
            VETERAN,
            LOGISTICS_ON,
            [switch("ops-default", "2026-11-01", "2026-11-30")],
            "ops-default",
            "运营默认模板（张伟 手动切换，11-01–11-30）替代 物流模板",
        ),
        (
            "2026-W48",
            VETERAN,
            {},
            [switch("ops-promo", "2026-11-23", "2026-12-01")],
            "ops-promo",
            "大促模板（张伟 手动切换，11-23–12-01）替代 运营默认模板",
        ),
        (
            "2026-W48",
            VETERAN,
            {},
            [switch("ops-promo", "2026-11-29", None)],  # Sunday of the week: touches it
            "ops-promo",
            "大促模板（张伟 手动切换，自 11-29 起）替代 运营默认模板",
        ),
        (
            "2026-W48",
            VETERAN,
            {},
            [switch("ops-promo", "2026-11-01", "2026-11-23")],  # ends Monday of the week: touches it
            "ops-promo",
            "大促模板（张伟 手动切换，11-01–11-23）替代 运营默认模板",
        ),
        (
            "2026-W48",
            VETERAN,
            {},
            [switch("ops-promo", "2026-11-01", "2026-11-22")],
            "ops-default",
            "运营默认模板",
        ),
        ("2026-W48", VETERAN, {}, [switch("ops-promo", "2026-11-30", None)], "ops-default", "运营默认模板"),
        (
            "2026-W46",
            VETERAN,
            {},
            [
                switch("ops-promo", "2026-11-01", "2026-11-30")
            ],  # same as the period's choice: nothing replaced
            "ops-promo",
            "大促模板（张伟 手动切换，11-01–11-30）",
        ),
        (
            "2026-W53",
            VETERAN,
            {},
            [switch("ops-promo", "2027-01-01", "2027-01-05")],  # across New Year
            "ops-promo",
            "大促模板（张伟 手动切换，01-01–01-05）替代 春节模板",
        ),
        # the newest switch wins; a switch of another role's template is ignored
        (
            "2026-W48",
            VETERAN,
            {},
            [
                switch("ops-promo", "2026-11-01", "2026-12-31", at=AT),
                switch(
                    "ops-new", "2026-11-20", "2026-12-31", by="王芳", at=datetime(2026, 11, 20, tzinfo=UTC)
                ),
            ],
            "ops-new",
            "新人模板（王芳 手动切换，11-20–12-31）替代 运营默认模板",
        ),
        ("2026-W48", VETERAN, {}, [switch("cs-default", "2026-11-01", None)], "ops-default", "运营默认模板"),
        ("2026-W48", VETERAN, {}, [switch("deleted", "2026-11-01", None)], "ops-default", "运营默认模板"),
    ],
)
def test_precedence(
    week: str,
    person: Employee,
    scenarios: dict[str, str],
    switches: list[Switch],
    expected: str,
    reason: str,
) -> None:
    chosen = select_template(
        ALL, person=person, week=week, periods=PERIODS, scenarios=scenarios, switches=switches
    )
    assert (chosen.template.id, chosen.reason) == (expected, reason)


def test_issue_example_ops_default_switches_during_double11() -> None:
    default = parse_template(
        {
            "id": "ops-default",
            "name": "运营默认模板",
            "role": "operations",
            "weights": {"conversion_rate": 60, "ctr": 40},
        }
    )
    promo = parse_template(
        {
            "id": "ops-promo",
            "name": "大促模板",
            "role": "operations",
            "period": "double11",
            "weights": {"activity_sales": 70, "conversion_rate": 30},
        }
    )
    outside = select_template([default, promo], person=VETERAN, week="2026-W48")
    inside = select_template([default, promo], person=VETERAN, week="2026-W45")
    assert outside.template.weights == {"conversion_rate": 60, "ctr": 40}
    assert inside.template.weights == {"activity_sales": 70, "conversion_rate": 30}
    assert inside.reason == "大促模板（双11 10-20–11-11）替代 运营默认模板"
    assert (inside.step, inside.replaced) == ("period", default)


@pytest.mark.parametrize(
    ("hire", "week", "kind", "words"),
    [
        ("2026-10-01", "2026-W47", "new", "新员工，入职 46 天"),  # Monday 11-16
        ("2026-08-19", "2026-W47", "new", "新员工，入职 89 天"),
        ("2026-08-18", "2026-W47", "veteran", "老员工"),  # 90 days
        ("2026-11-18", "2026-W47", "new", "新员工，入职 0 天"),  # hired mid-week
        (None, "2026-W47", "veteran", "老员工"),
    ],
)
def test_new_from_hire_date(hire: str | None, week: str, kind: str, words: str) -> None:
    person = Employee("x", "operations", hire_date=date.fromisoformat(hire) if hire else None)
    assert employee_type(person, week) == (kind, words)
    chosen = select_template(ALL, person=person, week=week, periods=PERIODS)
    assert chosen.template.id == ("ops-new" if kind == "new" else "ops-default")
    if kind == "new":
        assert chosen.reason == f"新人模板（{words}）替代 运营默认模板"


def test_new_days_is_configurable() -> None:
    person = Employee("x", "operations", hire_date=date(2026, 10, 1))
    assert employee_type(person, "2026-W47", new_days=30) == ("veteran", "老员工")


def test_veteran_template_applies_to_veterans_only() -> None:
    vet = tpl("ops-vet", "老员工模板", role="operations", employee_type="veteran")
    assert select_template([DEFAULT, vet], person=VETERAN, week="2026-W47").template.id == "ops-vet"
    assert select_template([DEFAULT, vet], person=NEWBIE, week="2026-W47").template.id == "ops-default"


def test_combined_conditions_need_all_and_win_ties() -> None:
    promo_new = tpl(
        "ops-promo-new", "新人大促模板", role="operations", period="double11", employee_type="new"
    )
    templates = [DEFAULT, NEW, PROMO, promo_new]
    assert select_template(templates, person=NEWBIE, week="2026-W46").reason == (
        "新人大促模板（双11 10-20–11-11，新员工）替代 新人模板"
    )
    assert select_template(templates, person=VETERAN, week="2026-W46").template.id == "ops-promo"
    assert select_template(templates, person=NEWBIE, week="2026-W48").template.id == "ops-new"


def test_role_specific_beats_generic() -> None:
    generic = tpl("any-default", "通用模板")
    assert select_template([generic, DEFAULT], person=VETERAN, week="2026-W48").template.id == "ops-default"
    designer = Employee("d", "design")
    assert select_template([generic, DEFAULT], person=designer, week="2026-W48").template.id == "any-default"


def test_ties_fall_back_to_id_order() -> None:
    twin = tpl("ops-a", "A 模板", role="operations")
    assert select_template([DEFAULT, twin], person=VETERAN, week="2026-W48").template.id == "ops-a"


def test_unknown_period_never_applies() -> None:
    odd = tpl("ops-odd", "奇怪模板", role="operations", period="nope")
    assert select_template([DEFAULT, odd], person=VETERAN, week="2026-W46").template.id == "ops-default"


def test_period_override_replaces_preset() -> None:
    periods = with_presets([Period("double11", "双11", (11, 1), (11, 11))])
    assert select_template(
        [DEFAULT, PROMO], person=VETERAN, week="2026-W43", periods=periods
    ).template.id == ("ops-default")
    chosen = select_template([DEFAULT, PROMO], person=VETERAN, week="2026-W45", periods=periods)
    assert chosen.reason == "大促模板（双11 11-01–11-11）替代 运营默认模板"


def test_no_template() -> None:
    with pytest.raises(NoTemplate, match="岗位 warehouse"):
        select_template(ALL, person=Employee("w", "warehouse"), week="2026-W48")


@pytest.mark.parametrize(
    ("period", "day", "inside"),
    [
        (PRESET_PERIODS["double11"], "2026-10-19", False),
        (PRESET_PERIODS["double11"], "2026-10-20", True),
        (PRESET_PERIODS["double11"], "2026-11-11", True),
        (PRESET_PERIODS["double11"], "2026-11-12", False),
        (PRESET_PERIODS["618"], "2026-05-19", False),
        (PRESET_PERIODS["618"], "2026-05-20", True),
        (PRESET_PERIODS["618"], "2027-06-18", True),
        (PRESET_PERIODS["618"], "2026-06-19", False),
        (PERIODS["cny"], "2026-12-19", False),
        (PERIODS["cny"], "2026-12-20", True),
        (PERIODS["cny"], "2026-12-31", True),
        (PERIODS["cny"], "2027-01-01", True),
        (PERIODS["cny"], "2027-01-10", True),
        (PERIODS["cny"], "2027-01-11", False),
        (PERIODS["cny"], "2027-06-01", False),
        (Period("leap", "闰日", (2, 29), (3, 1)), "2027-02-28", False),
        (Period("leap", "闰日", (2, 29), (3, 1)), "2027-03-01", True),
        (Period("leap", "闰日", (2, 29), (3, 1)), "2028-02-29", True),
    ],
)
def test_period_contains(period: Period, day: str, inside: bool) -> None:
    assert period.contains(date.fromisoformat(day)) is inside


@pytest.mark.parametrize(
    ("period", "week", "touches"),
    [
        (PRESET_PERIODS["double11"], "2026-W42", False),  # 10-12–10-18
        (PRESET_PERIODS["double11"], "2026-W43", True),  # 10-19–10-25
        (PRESET_PERIODS["double11"], "2026-W46", True),  # 11-09–11-15
        (PRESET_PERIODS["double11"], "2026-W47", False),
        (PRESET_PERIODS["618"], "2026-W20", False),  # 05-11–05-17
        (PRESET_PERIODS["618"], "2026-W21", True),  # 05-18–05-24
        (PRESET_PERIODS["618"], "2026-W25", True),  # 06-15–06-21
        (PRESET_PERIODS["618"], "2026-W26", False),
        (Period("ny", "元旦", (1, 1), (1, 3)), "2026-W53", True),  # 2026-12-28 – 2027-01-03
        (Period("eoy", "年末", (12, 30), (12, 31)), "2026-W53", True),
        (Period("eoy", "年末", (12, 30), (12, 31)), "2027-W01", False),
    ],
)
def test_period_touches_week(period: Period, week: str, touches: bool) -> None:
    assert period.touches(week) is touches


def test_week_helpers() -> None:
    assert week_days("2026-W48")[0] == date(2026, 11, 23)
    assert week_days("2026-W53")[-1] == date(2027, 1, 3)
    assert week_of(date(2027, 1, 3)) == "2026-W53"
    assert week_of(date(2026, 11, 29)) == "2026-W48"


@pytest.mark.parametrize("week", ["2026W48", "2026-W54", "2027-W53", "W48", "2026-w48"])
def test_bad_week(week: str) -> None:
    with pytest.raises(ValueError, match="周"):
        week_days(week)


@pytest.mark.parametrize(
    ("entry", "problems"),
    [
        ({"id": "cny", "name": "春节", "from": "12-20", "to": "01-10"}, []),
        ({"id": "leap", "from": "02-29", "to": "03-01"}, []),
        (
            {"id": "x", "from": "13-01", "to": "01-10"},
            ["periods (x).from: 应为“月-日”，如 10-20，不是“13-01”"],
        ),
        (
            {"id": "x", "from": "02-30", "to": "03-01"},
            ["periods (x).from: 应为“月-日”，如 10-20，不是“02-30”"],
        ),
        ({"id": "x", "from": "10-20"}, ["periods (x).to: 应为“月-日”，如 10-20，不是“None”"]),
        (
            {"id": "x", "from": "1-2", "to": "01-10"},
            ["periods (x).from: 应为“月-日”，如 10-20，不是“1-2”"],
        ),
        (
            {"from": "10-20", "to": "11-11", "start": 1},
            [
                "periods (?).id: 必须写时段 id（字符串）",
                "periods (?).start: 不认识的字段（可用：id、name、from、to）",
            ],
        ),
    ],
)
def test_validate_period(entry: dict[str, Any], problems: list[str]) -> None:
    assert validate_period(entry) == problems


def test_parse_period() -> None:
    assert parse_period({"id": "double11", "name": "双11", "from": "11-01", "to": "11-11"}) == Period(
        "double11", "双11", (11, 1), (11, 11)
    )
    assert parse_period({"id": "p", "from": "11-01", "to": "11-11"}).name == "p"
    with pytest.raises(ValueError, match="from"):
        parse_period({"id": "p", "from": "x", "to": "11-11"})
