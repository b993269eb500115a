"""Progress: the completion/pace/lag rules (pure tables) and the set-based week query on both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event

from handlers import progress as pg
from tests import worker_seed as seed

SH = ZoneInfo("Asia/Shanghai")
D = Decimal


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH).astimezone(UTC)


@pytest.mark.parametrize(
    ("baseline", "target", "actual", "direction", "expected"),
    [
        ("3.00", "5.00", "4.00", "up", D("0.5")),  # (4-3)/(5-3)
        ("3.00", "5.00", "6.00", "up", D("1.5")),  # overshoot is kept
        ("3.00", "5.00", "2.00", "up", D("-0.5")),  # went the wrong way
        ("3.00", "5.00", "3.00", "up", D("0")),
        ("1.20", "1.00", "1.15", "down", D("0.25")),  # (1.20-1.15)/(1.20-1.00)
        ("1.20", "1.00", "0.90", "down", D("1.5")),
        ("1.20", "1.00", "1.30", "down", D("-0.5")),
        ("3.00", "3.00", "3.10", "up", None),  # target = baseline: undefined (refused when filed)
        ("3.00", "5.00", "4.00", "sideways", None),
        ("3.00", "5.00", None, "up", None),  # no data is not 0
        (None, "5.00", "4.00", "up", None),
        ("3.00", None, "4.00", "up", None),
    ],
)
def test_completion(baseline, target, actual, direction, expected) -> None:
    def dec(v):
        return None if v is None else D(v)

    assert pg.completion(dec(baseline), dec(target), dec(actual), direction) == expected


@pytest.mark.parametrize(
    ("elapsed", "total", "expected"),
    [(0, 5, D(0)), (2, 5, D("0.4")), (5, 5, D(1)), (7, 5, D(1)), (1, 3, D(1) / D(3)), (0, 0, None)],
)
def test_expected_pace(elapsed: int, total: int, expected: Decimal | None) -> None:
    assert pg.expected_pace(elapsed, total) == expected


@pytest.mark.parametrize(
    ("done", "pace", "elapsed", "margin", "lagging"),
    [
        (D("0.20"), D("0.40"), 2, 20, False),  # exactly 20 points behind: not more than the margin
        (D("0.19"), D("0.40"), 2, 20, True),
        (D("0.00"), D("0.20"), 1, 0, False),  # the first two workdays never lag
        (D("0.00"), D("0.40"), 2, 0, True),
        (D("0.15"), D("0.40"), 2, 30, False),  # a team with a wider margin
        (None, D("0.60"), 3, 20, False),  # no data is never "lagging"
        (D("0.10"), None, 3, 20, False),  # a week with no workdays
        (D("-0.5"), D("0.60"), 3, 20, True),
    ],
)
def test_is_lagging(done, pace, elapsed, margin, lagging) -> None:
    assert pg.is_lagging(done, pace, elapsed, margin) is lagging


def seed_week(session, *, margin: int = 20) -> dict[str, int]:
    """Team ops (leader 张伟) in 2026-W48: 李雷 with three items, 韩梅梅 with one item without data."""
    at = local("2026-11-23 10:00")
    seed.team(session, lag_margin=margin)
    seed.person(session, "zhangwei", "张伟")
    seed.person(session, "lilei", "李雷")
    seed.person(session, "hanmeimei", "韩梅梅")
    seed.kpi(session, "conversion_rate", "支付转化率", metric="pay_conversion_rate")
    seed.kpi(session, "complaint_rate", "投诉率", direction="down")
    seed.kpi(session, "attitude", "服务态度", unit="", rating=True)
    lilei = seed.plan(
        session,
        "lilei",
        "2026-W48",
        [
            ("优化详情页", "conversion_rate", "shop", "3.00", "5.00"),
            ("差评回访", "complaint_rate", "shop", "1.20", "1.00"),
            ("服务态度", "attitude", "shop", "", ""),
        ],
        at=at,
    )
    han = seed.plan(
        session, "hanmeimei", "2026-W48", [("主图", "conversion_rate", "sku-1", "2.0", "2.5")], at=at
    )
    for day, v in [
        ("2026-11-20", "9.99"),
        ("2026-11-23", "3.10"),
        ("2026-11-24", "3.30"),
        ("2026-11-26", "9.00"),
    ]:
        seed.sample(session, "pay_conversion_rate", day, v, at=at)
    seed.sample(session, "pay_conversion_rate", "2026-11-24", "8.00", scope="sku-2", at=at)  # another scope
    seed.sample(session, "complaint_rate", "2026-11-24", "1.15", at=at)
    ids = {f"lilei{n}": item.id for n, item in enumerate(lilei.items, start=1)}
    ids["han1"] = han.items[0].id
    return ids


def test_week_progress_wednesday(db) -> None:
    with db() as session, session.begin():
        ids = seed_week(session)
        got = {i.item_id: i for i in pg.week_progress(session, "2026-W48", local("2026-11-25 10:00"), tz=SH)}
    assert set(got) == set(ids.values())
    conv, compl, rating, han = (got[ids[k]] for k in ("lilei1", "lilei2", "lilei3", "han1"))
    # the latest sample up to today (11-24), not the later 11-26 one nor the one before the week
    assert (conv.actual, str(conv.actual_day)) == (D("3.30"), "2026-11-24")
    assert conv.completion == (D("3.30") - D("3.00")) / (D("5.00") - D("3.00"))  # 0.15
    assert (conv.pace, conv.elapsed, conv.workdays) == (D("0.4"), 2, 5)
    assert conv.status == pg.LAGGING  # 25 points behind a 20-point margin
    assert (compl.completion, compl.status) == (D("0.25"), pg.ON_TRACK)  # 15 points behind
    assert (rating.actual, rating.completion, rating.status) == (None, None, pg.NO_DATA)
    assert (han.actual, han.completion, han.status) == (None, None, pg.NO_DATA)  # sku-1 has no samples


def test_week_progress_thursday_sees_the_new_sample(db) -> None:
    with db() as session, session.begin():
        ids = seed_week(session)
        got = {i.item_id: i for i in pg.week_progress(session, "2026-W48", local("2026-11-26 10:00"), tz=SH)}
    conv = got[ids["lilei1"]]
    assert conv.actual == D("9.00")
    assert conv.completion == D(3) and conv.status == pg.DONE


def test_week_progress_respects_the_team_margin(db) -> None:
    with db() as session, session.begin():
        ids = seed_week(session, margin=30)
        got = {i.item_id: i for i in pg.week_progress(session, "2026-W48", local("2026-11-25 10:00"), tz=SH)}
    assert got[ids["lilei1"]].status == pg.ON_TRACK


def test_week_progress_filters(db) -> None:
    with db() as session, session.begin():
        ids = seed_week(session)
        now = local("2026-11-25 10:00")
        mine = pg.week_progress(session, "2026-W48", now, person_ids=["hanmeimei"], tz=SH)
        other_team = pg.week_progress(session, "2026-W48", now, team_ids=["nobody"], tz=SH)
        other_week = pg.week_progress(session, "2026-W47", now, tz=SH)
    assert [i.item_id for i in mine] == [ids["han1"]]
    assert other_team == [] and other_week == []


def test_week_progress_is_one_query(db, engine) -> None:
    statements: list[str] = []

    def count(conn, cursor, statement, params, context, executemany) -> None:  # noqa: ANN001
        statements.append(statement)

    with db() as session, session.begin():
        seed_week(session)
        event.listen(engine, "before_cursor_execute", count)
        try:
            items = pg.week_progress(session, "2026-W48", local("2026-11-25 10:00"), overrides={}, tz=SH)
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert len(items) == 4
    assert len(statements) == 1


def test_superseded_plans_are_ignored(db) -> None:
    with db() as session, session.begin():
        ids = seed_week(session)
        old = seed.plan(
            session,
            "lilei",
            "2026-W48",
            [("旧版本", "conversion_rate", "shop", "3.00", "4.00")],
            at=local("2026-11-23 09:00"),
            version=0,
            current=False,
        )
        assert old.id
        got = pg.week_progress(session, "2026-W48", local("2026-11-25 10:00"), tz=SH)
    assert {i.item_id for i in got} == set(ids.values())


# --- the 进度 command, end to end through the simulator ---------------------------------------


def say(client, who: str, text: str) -> dict:
    resp = client.post("/sim/api/say", json={"as": who, "chat": "dm", "text": text})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()["replies"][0]


def test_progress_command_for_a_member(client, db, clock) -> None:
    with db() as session, session.begin():
        seed_week(session)
    clock.set(local("2026-11-25 10:00"))
    card = say(client, "lilei", "进度")
    text = card["text"]
    assert card["title"] == "李雷 · 2026-W48 进度"
    assert "40 %（已过 2/5 个工作日）" in text
    assert (
        "1. 优化详情页（支付转化率） ██░░░░░░░░ 15%（落后） 最新 3.30 %（11-24），目标 3.00 % → 5.00 %"
        in text
    )
    assert "25%" in text  # the complaint item, on track
    assert "3. 服务态度（服务态度） 暂无数据" in text
    assert "1 项落后于进度" in text


def test_progress_command_for_the_leader_shows_the_team(client, db, clock) -> None:
    with db() as session, session.begin():
        seed_week(session)
    clock.set(local("2026-11-25 10:00"))
    card = say(client, "zhangwei", "进度")
    lines = card["text"].splitlines()
    assert card["title"] == "运营组 · 2026-W48 团队进度"
    assert "李雷 | 3 | 20 % | 1 项" in lines  # mean of 15 % and 25 %; the rating item has no data
    assert "韩梅梅 | 1 | 暂无数据 | —" in lines
    assert "张伟 | 未提交 | — | —" in lines
    assert "已提交计划 2/3 人，落后 1 项。" in lines


@pytest.mark.parametrize(
    ("who", "text", "title"),
    [
        ("zhangwei", "进度 李雷", "李雷 · 2026-W48 进度"),
        ("zhangwei", "进度 hanmeimei", "韩梅梅 · 2026-W48 进度"),
        ("zhangwei", "进度 我", "张伟 · 2026-W48 进度"),
        ("lilei", "progress 2026-W47", "李雷 · 2026-W47 进度"),
        ("lilei", "进度 韩梅梅", "没有权限"),
        ("zhangwei", "进度 王五", "进度"),
        ("lilei", "进度 2026-W60", "进度"),
    ],
)
def test_progress_command_arguments(client, db, clock, who: str, text: str, title: str) -> None:
    with db() as session, session.begin():
        seed_week(session)
    clock.set(local("2026-11-25 10:00"))
    assert say(client, who, text)["title"] == title


def test_progress_command_without_a_plan(client, db, clock) -> None:
    with db() as session, session.begin():
        seed_week(session)
    clock.set(local("2026-11-30 10:00"))  # next week: nobody has planned
    card = say(client, "lilei", "进度")
    assert "本周还没有提交计划" in card["text"]
    assert "0 %（已过 0/5 个工作日）" in card["text"]


@pytest.mark.parametrize(
    "said, line",
    [
        ("进度", "本周还没有提交计划。发送“写计划”开始。"),
        ("进度 2026-W47", "李雷 在 2026-W47 没有提交计划。"),
        ("进度 2026-w46", "李雷 在 2026-W46 没有提交计划。"),
    ],
)
def test_progress_without_a_plan_says_which_week(sim, demo_team, said, line):
    (card,) = sim.say("lilei", said)
    assert line in card["text"]
    assert ("写计划" in card["text"]) == (said == "进度")
