"""The demo's story: a fresh data dir shows a team in the middle of its work, through the same
simulator API a person uses, the same story every time, told once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.demo.run import prepare
from bot.services import build_services
from bot.web.app import create_app
from storage.models import Appeal, Appraisal, AuditLog, Plan, PlanItem, Rating

THURSDAY = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)  # 16:00 in Shanghai, 2026-W49
MEMBERS = {
    "lilei",
    "hanmeimei",
    "zhaoqiang",
    "chenjing",
    "liuyang",
    "sunli",
    "zhoumin",
    "wujun",
    "zhenggang",
    "fengtao",
}
PAST = ("2026-W45", "2026-W46", "2026-W47", "2026-W48")

pytestmark = pytest.mark.slow  # four weeks acted out through the real paths: a few seconds


@pytest.fixture(scope="module")
def demo(tmp_path_factory):  # noqa: ANN001, ANN201
    data = tmp_path_factory.mktemp("demo")
    settings = prepare(data, 8765, now=THURSDAY)
    services = build_services(settings, clock=lambda: THURSDAY)
    yield data, services, create_app(settings, services).test_client()
    services.engine.dispose()


def say(client, who: str, text: str) -> list[dict]:  # noqa: ANN001
    res = client.post("/sim/api/say", json={"as": who, "chat": "dm", "text": text})
    assert res.status_code == 200
    return res.get_json()["replies"]


def titles(client, who: str) -> list[str]:  # noqa: ANN001
    return [m["title"] for m in client.get(f"/sim/api/messages?chat={who}").get_json()["messages"]]


def test_this_week_has_every_plan_but_one_and_a_lagging_item(demo):
    _, services, client = demo
    with services.sessions() as s:
        filed = set(s.scalars(select(Plan.person_id).where(Plan.week == "2026-W49", Plan.current.is_(True))))
    assert filed == MEMBERS - {"zhaoqiang"}
    (progress,) = say(client, "lilei", "进度")
    assert progress["title"] == "李雷 · 2026-W49 进度"
    assert "大促会场改版（支付转化率）" in progress["text"] and "（落后）" in progress["text"]
    assert "运营设计组 · 2026-W49 未提交计划 1 人" in titles(client, "zhangwei")


def test_four_past_weeks_are_appraised_with_the_leaders_tables_and_summaries(demo):
    _, services, client = demo
    with services.sessions() as s:
        appraised = {
            week: set(
                s.scalars(
                    select(Appraisal.person_id).where(Appraisal.week == week, Appraisal.current.is_(True))
                )
            )
            for week in PAST
        }
        grades = set(s.scalars(select(Appraisal.grade)))
        late = s.scalar(select(func.count()).where(Plan.status == "late"))
        revised = s.scalar(select(func.count()).where(Plan.version == 2))
        rated = s.scalar(
            select(func.count()).select_from(AuditLog).where(AuditLog.action == "appraisal.rate")
        )
        ratings = s.scalar(select(func.count()).select_from(Rating))
        notes = s.scalar(select(func.count()).where(func.coalesce(PlanItem.note, "") != ""))
        appeals = list(s.scalars(select(Appeal.status)))
    assert appraised == dict.fromkeys(PAST, MEMBERS)
    assert len(grades) >= 4  # a spread of grades, not everyone a D
    assert (late, revised, appeals) == (4, 1, ["accepted"])
    assert ratings == rated > 0 and notes == len(PAST)
    leader = titles(client, "zhangwei")
    for week in PAST:
        assert f"运营设计组 · {week} 考核汇总" in leader
    assert "运营设计组 · 周初汇总 · 2026-W49（组长版）" in leader
    assert "考核模板已切换 · 运营设计组" in leader and "申诉已处理" in leader


def test_an_appraisal_explains_itself_and_the_promotion_week_used_the_promotion_template(demo):
    _, services, client = demo
    (card,) = say(client, "lilei", "考核 2026-W47")
    assert "大促模板" in card["text"] and "为什么用这个模板" in card["text"]
    assert "总分 = Σ 权重 × 完成度" in card["text"]
    with services.sessions() as s:
        reason = s.scalar(select(Appraisal.version_reason).where(Appraisal.version == 2))
    assert reason.startswith("申诉（") and "已接受" in reason


def test_the_story_is_told_once_and_the_same_every_time(demo, tmp_path):
    data, services, _ = demo

    def table(sessions) -> list[tuple]:  # noqa: ANN001
        with sessions() as s:
            return list(
                s.execute(
                    select(Appraisal.person_id, Appraisal.week, Appraisal.version, Appraisal.score).order_by(
                        Appraisal.person_id, Appraisal.week, Appraisal.version
                    )
                )
            )

    before = table(services.sessions)
    with services.sessions() as s:
        plans = s.scalar(select(func.count()).select_from(Plan))
    prepare(data, 8765, now=THURSDAY)  # a restart
    with services.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Plan)) == plans
    assert table(services.sessions) == before

    other = prepare(Path(tmp_path) / "again", 8765, now=THURSDAY)
    again = build_services(other)
    try:
        assert table(again.sessions) == before
    finally:
        again.engine.dispose()
