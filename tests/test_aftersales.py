"""After-sales cases: reason → cause, export files, storage with upsert, metrics recomputed by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from sources.aftersales_files import parse_time, read_cases
from sources.cases import Case, StoredCase, daily_case_metrics
from sources.causes import AftersalesOptions, CauseMap, parse_options
from storage.cases import case_week, store_cases, unmapped_reasons
from storage.models import AftersaleCase, MetricSample

TZ = ZoneInfo("Asia/Shanghai")
FIXTURES = Path(__file__).parent / "fixtures" / "aftersales"
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=TZ)


def at(day: int, hour: int, minute: int = 0, month: int = 12) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=TZ)


@pytest.mark.parametrize(
    ("reason", "cause"),
    [
        ("快递一直未送达", "物流"),
        ("快递/物流一直未送到", "物流"),
        ("快递 / 物流一直未送到", "物流"),  # spaces and full-width forms read as the same reason
        ("物流信息长时间未更新", "物流"),
        ("未按约定时间发货", "物流"),
        ("少件/漏发", "物流"),
        ("质量问题", "产品"),
        ("商品质量问题", "产品"),
        ("包装/商品破损/污渍", "产品"),
        ("做工粗糙", "产品"),
        ("商家发错货", "描述不符"),
        ("商品与页面描述不符", "描述不符"),
        ("颜色不符", "描述不符"),
        ("服务态度差", "服务"),
        ("客服回复太慢", "服务"),
        ("七天无理由退换货", "其他"),
        ("多拍/拍错/不想要", "其他"),
    ],
)
def test_builtin_reason_to_cause(reason: str, cause: str) -> None:
    assert CauseMap().lookup(reason) == cause


@pytest.mark.parametrize("reason", ["缺货", "", "买家要求修改地址"])
def test_unknown_reasons_are_unmapped_and_count_as_other(reason: str) -> None:
    assert CauseMap().lookup(reason) is None
    assert CauseMap().cause_of(reason) == "其他"


def test_config_rules_come_first_whole_or_as_keyword() -> None:
    rules = CauseMap({"缺货": "物流", "质量问题": "服务"})
    assert rules.cause_of("缺货") == "物流"
    assert rules.cause_of("商品缺货未发") == "物流"
    assert rules.cause_of("质量问题") == "服务"  # the admin's word beats the built-in table


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"resolution_hours": 0}, "aftersales.resolution_hours"),
        ({"resolution_hours": "48"}, "aftersales.resolution_hours"),
        ({"causes": {"缺货": "仓库"}}, "aftersales.causes.缺货"),
        ({"causes": "缺货=物流"}, "aftersales.causes"),
        ({"hours": 48}, "aftersales.hours"),
    ],
)
def test_bad_aftersales_config_names_the_key(raw: dict, problem: str) -> None:
    _, problems = parse_options(raw)
    assert len(problems) == 1 and problems[0].startswith(problem)


def test_good_aftersales_config() -> None:
    options, problems = parse_options({"resolution_hours": 24, "causes": {"缺货": "物流"}})
    assert problems == []
    assert options == AftersalesOptions(24, {"缺货": "物流"})
    assert options.fingerprint() != AftersalesOptions().fingerprint()


def test_daily_metrics_by_hand() -> None:
    # Monday 11-30: three 物流 cases at pdd, one 产品 at tb.
    cases = [
        StoredCase("pdd", at(30, 9, month=11), at(30, 15, month=11), "物流"),  # 6 h, in time
        StoredCase("pdd", at(30, 10, month=11), at(2, 11), "物流"),  # 49 h, late; closed Wednesday
        StoredCase("pdd", at(30, 23, 30, month=11), None, "物流"),  # still open
        StoredCase("tb", at(30, 8, month=11), at(1, 8), "产品"),  # 24 h, closed Tuesday
    ]
    mon, tue, wed = date(2026, 11, 30), date(2026, 12, 1), date(2026, 12, 2)
    got = daily_case_metrics(cases, [mon, tue, wed], TZ, 48)
    assert got[("complaints", "物流", mon)] == 3
    assert got[("complaints", "产品", mon)] == 1
    assert got[("complaints", "shop", mon)] == 4
    assert got[("complaints", "服务", mon)] == 0
    assert got[("complaints", "物流", tue)] == 0
    assert got[("complaints", "pdd:物流", mon)] == 3
    assert ("complaints", "tb:物流", mon) not in got
    assert got[("complaint_resolution_rate", "物流", mon)] == Decimal("33.33")  # 1 of 3 within 48 h
    assert got[("complaint_resolution_rate", "shop", mon)] == Decimal("50.00")  # 2 of 4
    assert got[("complaint_resolution_rate", "产品", mon)] == Decimal("100.00")
    assert got[("complaint_handling_hours", "物流", mon)] == Decimal("6.00")
    assert got[("complaint_handling_hours", "产品", tue)] == Decimal("24.00")
    assert got[("complaint_handling_hours", "物流", wed)] == Decimal("49.00")
    assert ("complaint_resolution_rate", "物流", tue) not in got  # nothing opened that day


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-30 09:05", at(30, 9, 5, month=11)),
        ("2026/11/30 09:05:07", at(30, 9, 5, month=11).replace(second=7)),
        ("", None),
        ("-", None),
        (None, None),
        (datetime(2026, 11, 30, 9, 5), at(30, 9, 5, month=11)),
    ],
)
def test_case_times_are_read_in_the_team_zone(raw: object, expected: datetime | None) -> None:
    assert parse_time(raw, TZ) == expected


# ---------------------------------------------------------------- export files


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "generic.csv",
            {
                ("pdd-shop", "G-1"): (at(30, 9, month=11), at(30, 15, 30, month=11), "快递一直未送达"),
                ("pdd-shop", "G-2"): (at(30, 10, month=11).replace(second=30), None, "质量问题"),
                ("file-src", "G-3"): (at(1, 8), at(4, 8), "商家发错货"),
            },
        ),
        (
            "taobao_refunds.csv",  # GBK, CRLF
            {
                ("file-src", "TB-101"): (
                    at(30, 9, 10, month=11),
                    at(30, 20, month=11),
                    "快递/物流一直未送到",
                ),
                ("file-src", "TB-102"): (at(1, 11), None, "包装/商品破损/污渍"),
            },
        ),
        (
            "pdd_aftersales.csv",  # title rows above the header
            {
                ("file-src", "PDD-1"): (at(30, 12, month=11), at(1, 9), "物流信息长时间未更新"),
                ("file-src", "PDD-2"): (at(30, 13, month=11), at(3, 13), "缺货"),
            },
        ),
        ("jd_aftersales.csv", {("file-src", "JD-9"): (at(2, 8, 30), at(2, 18, 30), "商品与描述不符")}),
        (
            "doudian_aftersales.xlsx",
            {
                ("file-src", "DY-1"): (at(1, 10), at(2, 9), "服务态度差"),
                ("file-src", "DY-2"): (at(1, 23, 59), None, "七天无理由"),
            },
        ),
    ],
)
def test_each_shop_export_gives_its_cases(name: str, expected: dict) -> None:
    result = read_cases(FIXTURES / name, shop="file-src", source="file-src", tz=TZ)
    assert result.errors == []
    got = {(c.shop, c.case_id): (c.opened, c.closed, c.reason) for c in result.cases}
    assert got == expected


def test_bad_rows_are_refused_with_line_and_column(tmp_path: Path) -> None:
    f = tmp_path / "cases.csv"
    f.write_text(
        "case_id,opened,closed,reason,status\n"
        "A,2026-11-30 09:00,,物流,open\n"
        ",2026-11-30 09:00,,物流,open\n"
        "C,30/11/2026,,物流,open\n"
        "D,2026-11-30 09:00,2026-11-29 09:00,物流,done\n",
        encoding="utf-8",
    )
    result = read_cases(f, shop="s", source="s", tz=TZ)
    assert [c.case_id for c in result.cases] == ["A"]
    assert [(e.line, e.column) for e in result.errors] == [(3, "case_id"), (4, "opened"), (5, "closed")]
    assert result.rows_read == 4 and result.rows_refused == 3


def test_a_file_without_case_headers_is_refused_whole(tmp_path: Path) -> None:
    f = tmp_path / "x.csv"
    f.write_text("日期,访客数\n2026-11-30,10\n", encoding="utf-8")
    result = read_cases(f, shop="s", source="s", tz=TZ)
    assert result.cases == [] and len(result.errors) == 1 and "售后表头" in result.errors[0].reason


# ---------------------------------------------------------------- storage


@pytest.fixture
def session(db):  # noqa: ANN001, ANN201
    with db() as one:
        yield one


def case(cid: str, opened: datetime, closed: datetime | None, reason: str, shop: str = "pdd") -> Case:
    return Case(shop, cid, opened, closed, "done" if closed else "open", reason, shop)


def samples(session, metric: str, scope: str) -> dict[date, Decimal]:
    rows = session.execute(
        select(MetricSample.day, MetricSample.value).where(
            MetricSample.metric == metric, MetricSample.scope == scope
        )
    )
    return {d: v for d, v in rows}


def test_late_close_recomputes_the_day_it_was_opened(session) -> None:
    options = AftersalesOptions()
    first = [
        case("1", at(30, 9, month=11), at(30, 12, month=11), "快递一直未送达"),
        case("2", at(30, 10, month=11), None, "快递一直未送达"),
    ]
    got = store_cases(session, first, options, TZ, NOW)
    assert (got.inserted, got.updated) == (2, 0)
    mon = date(2026, 11, 30)
    assert samples(session, "complaint_resolution_rate", "物流")[mon] == Decimal("50.00")
    # the next poll: case 2 finished Tuesday within 48 h; case 1 unchanged
    again = [first[0], case("2", at(30, 10, month=11), at(1, 20), "快递一直未送达")]
    got = store_cases(session, again, options, TZ, NOW)
    assert (got.inserted, got.updated, got.unchanged) == (0, 1, 1)
    assert samples(session, "complaint_resolution_rate", "物流")[mon] == Decimal("100.00")
    assert samples(session, "complaint_handling_hours", "物流")[date(2026, 12, 1)] == Decimal("34.00")
    assert samples(session, "complaints", "pdd:物流")[mon] == 2
    assert len(session.scalars(select(AftersaleCase)).all()) == 2


def test_two_sources_add_up_instead_of_overwriting(session) -> None:
    options = AftersalesOptions()
    store_cases(session, [case("1", at(30, 9, month=11), None, "质量问题", shop="pdd")], options, TZ, NOW)
    store_cases(session, [case("7", at(30, 9, month=11), None, "质量问题", shop="tb")], options, TZ, NOW)
    mon = date(2026, 11, 30)
    assert samples(session, "complaints", "产品")[mon] == 2
    assert samples(session, "complaints", "pdd:产品")[mon] == 1
    assert samples(session, "complaints", "tb:产品")[mon] == 1


def test_changed_rules_remap_stored_cases_and_list_what_is_unmapped(session) -> None:
    cases = [
        case("1", at(30, 9, month=11), None, "缺货"),
        case("2", at(30, 9, month=11), None, "缺货"),
        case("3", at(30, 9, month=11), None, "买家要求修改地址"),
    ]
    store_cases(session, cases, AftersalesOptions(), TZ, NOW)
    mon = date(2026, 11, 30)
    assert samples(session, "complaints", "其他")[mon] == 3
    assert unmapped_reasons(session, CauseMap()) == [("缺货", 2), ("买家要求修改地址", 1)]
    rules = AftersalesOptions(48, {"缺货": "物流"})
    got = store_cases(session, [], rules, TZ, NOW)
    assert got.remapped == 2
    assert samples(session, "complaints", "物流")[mon] == 2
    assert samples(session, "complaints", "其他")[mon] == 1
    assert "pdd:其他" in {s for (s,) in session.execute(select(MetricSample.scope))}
    assert unmapped_reasons(session, rules.cause_map) == [("买家要求修改地址", 1)]


def test_week_summary_counts_by_cause_and_the_oldest_open(session) -> None:
    store_cases(
        session,
        [
            case("1", at(30, 9, month=11), at(30, 10, month=11), "快递一直未送达"),
            case("2", at(1, 9), None, "质量问题"),
            case("3", at(29, 9, month=11), None, "快递一直未送达"),  # last week, still open
        ],
        AftersalesOptions(),
        TZ,
        NOW,
    )
    week = case_week(session, date(2026, 11, 30), date(2026, 12, 6), TZ, NOW.astimezone(UTC))
    assert week.by_cause["物流"] == 1 and week.by_cause["产品"] == 1 and week.total == 2
    assert week.open_count == 2
    assert week.oldest_open is not None and week.oldest_open[1] == "3"
    assert week.oldest_open[2] == at(29, 9, month=11)
    later = case_week(session, date(2026, 11, 30), date(2026, 12, 6), TZ, at(1, 8))
    assert later.by_cause["产品"] == 0 and later.open_count == 1  # case 2 not yet opened at 08:00


def test_storing_the_same_cases_again_writes_nothing(session) -> None:
    cases = [case(str(n), at(30, 9, month=11) + timedelta(minutes=n), None, "质量问题") for n in range(5)]
    store_cases(session, cases, AftersalesOptions(), TZ, NOW)
    got = store_cases(session, cases, AftersalesOptions(), TZ, NOW)
    assert (got.inserted, got.updated, got.unchanged) == (0, 0, 5)
    assert got.days == set()


def test_planloop_toml_aftersales_section() -> None:
    from bot.config import ConfigError, parse

    settings = parse({"aftersales": {"resolution_hours": 24, "causes": {"缺货": "物流"}}}, env={})
    assert settings.aftersales == AftersalesOptions(24, {"缺货": "物流"})
    assert parse({}, env={}).aftersales == AftersalesOptions(48, {})
    with pytest.raises(ConfigError) as err:
        parse({"aftersales": {"causes": {"缺货": "仓库"}}}, env={})
    assert err.value.problems == [
        "aftersales.causes.缺货: '仓库' is not one of 物流, 产品, 描述不符, 服务, 其他"
    ]


def test_old_logistics_metric_name_is_read_as_the_rate_for_logistics() -> None:
    import tomllib

    from handlers.setup import parse as parse_team

    text = (Path(__file__).parents[1] / "examples" / "team.toml").read_text("utf-8")
    spec = parse_team(tomllib.loads(text))
    assert (
        spec["kpis"]["logistics_resolution"]["metric"],
        spec["kpis"]["logistics_resolution"]["scope"],
    ) == (
        "complaint_resolution_rate",
        "物流",
    )
    assert spec["kpis"]["product_resolution"]["scope"] == "产品"
    old = text.replace(
        'metric = "complaint_resolution_rate"\nscope = "物流"', 'metric = "logistics_issue_resolution_rate"'
    )
    assert old != text
    kpi = parse_team(tomllib.loads(old))["kpis"]["logistics_resolution"]
    assert (kpi["metric"], kpi["scope"]) == ("complaint_resolution_rate", "物流")
