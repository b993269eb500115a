"""What people see of the cases: the customer-service progress card, the plan form's proposed
causes, the leader's Monday line of causes against the week before."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from cards.aftersales import cause_changes_line, largest_causes
from handlers.digests import send_monday_summary
from sources.cases import Case
from sources.causes import AftersalesOptions
from storage.cases import store_cases
from storage.models import OutboxMessage

SH = ZoneInfo("Asia/Shanghai")


def at(month: int, day: int, hour: int) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=SH)


CASES = [
    # W46: 物流 3, 产品 1
    ("a1", at(11, 9, 9), at(11, 9, 12), "快递一直未送达"),
    ("a2", at(11, 10, 9), at(11, 10, 12), "物流信息长时间未更新"),
    ("a3", at(11, 12, 9), at(11, 12, 12), "未按约定时间发货"),
    ("a4", at(11, 13, 9), at(11, 14, 12), "质量问题"),
    # W47: 物流 1, 产品 2, 服务 1 (still open)
    ("b1", at(11, 16, 9), at(11, 16, 12), "快递一直未送达"),
    ("b2", at(11, 17, 9), at(11, 17, 12), "质量问题"),
    ("b3", at(11, 18, 9), at(11, 18, 12), "包装/商品破损/污渍"),
    ("b4", at(11, 19, 14), None, "服务态度差"),
    # W48 so far (the clock: Monday 11-23 10:00)
    ("c1", at(11, 23, 8), None, "快递一直未送达"),
]


@pytest.fixture
def cases(db, demo_team, clock) -> None:  # noqa: ANN001
    with db() as s, s.begin():
        store_cases(
            s,
            [Case("pdd-shop", cid, o, c, "", r, "pdd-shop") for cid, o, c, r in CASES],
            AftersalesOptions(),
            SH,
            clock(),
        )


def text_of(card: dict) -> str:
    return json.dumps(card, ensure_ascii=False)


def test_customer_service_progress_card_shows_the_weeks_cases(sim, cases) -> None:  # noqa: ANN001
    (card,) = sim.say("sunli", "进度")
    text = text_of(card)
    assert "本周售后 1 件**：物流 1" in text
    assert "未结 2 件，最早的 11-19 14:00 开始（pdd-shop b4）" in text


def test_other_roles_do_not_get_the_case_lines(sim, cases) -> None:  # noqa: ANN001
    (card,) = sim.say("lilei", "进度 我")
    assert "本周售后" not in text_of(card)


def test_plan_form_proposes_last_weeks_largest_causes(sim, cases) -> None:  # noqa: ANN001
    (card,) = sim.say("sunli", "写计划")
    fields = {f["name"]: f for f in card["form"]["fields"]}
    assert fields["item1_text"]["label"] == "1. 投诉处理"
    assert fields["item1_causes"]["value"] == "产品质量、物流延迟"  # W47: 产品 2, then 物流 1 (table order)
    assert fields["item2_causes"]["value"] == ""


def test_leaders_monday_card_compares_causes_with_the_week_before(db, cases, clock) -> None:  # noqa: ANN001
    with db() as s, s.begin():
        send_monday_summary(s, "service", "2026-W48", clock(), bots={"sim", "feishu-main"})
    with db() as s:
        sent = {m.dedupe_key: m.card for m in s.scalars(select(OutboxMessage))}
    leader = text_of(sent["monday:service:2026-W48:leader"])
    assert "售后原因（2026-W47 比前一周）**：物流 3 → 1 · 产品 1 → 2 · 服务 0 → 1；未结 2 件" in leader
    assert "售后原因" not in text_of(sent["monday:service:2026-W48:chat"])


@pytest.mark.parametrize(
    ("last", "this", "line", "largest"),
    [
        ({"物流": 12, "产品": 3}, {"物流": 7, "产品": 4}, "物流 12 → 7 · 产品 3 → 4", ["物流", "产品"]),
        ({}, {"服务": 1}, "服务 0 → 1", []),
        ({}, {}, "", []),
    ],
)
def test_cause_lines(last: dict, this: dict, line: str, largest: list) -> None:
    assert cause_changes_line(last, this) == line
    assert largest_causes(last, 2) == largest


def test_qianniu_report_gives_satisfaction_per_agent(tmp_path) -> None:  # noqa: ANN001
    from sources.files import ReportOptions, read_report
    from sources.presets import preset_for

    f = tmp_path / "客服绩效.csv"
    f.write_text(
        "日期,旺旺,咨询人数,询单->最终付款成功率,平均响应(秒),客户满意比\n"
        "2026-11-22,小店:孙丽,120,45.50%,32,96.30%\n"
        "2026-11-22,小店:周敏,80,40.00%,41,88.00%\n",
        encoding="utf-8",
    )
    result = read_report(f, ReportOptions(preset_for("qianniu"), "shop", "cs-report"), datetime.now(SH))
    got = {(s.metric, s.scope): s.value for s in result.samples}
    assert got[("satisfaction_rate", "小店:孙丽")] == Decimal("96.30")
    assert got[("satisfaction_rate", "小店:周敏")] == Decimal("88.00")
    assert got[("inquiry_conversion_rate", "小店:孙丽")] == Decimal("45.50")


def test_a_kpi_scoped_to_the_persons_qianniu_account(sim, demo_team, db, clock) -> None:  # noqa: ANN001
    from datetime import date

    from storage.models import Identity, Kpi, MetricSample, PlanItem

    with db() as s, s.begin():
        s.add(Kpi(key="satisfaction", name="客户满意率", unit="%", direction="up",
                  metric="satisfaction_rate", kind="metric", scope="@qianniu"))  # fmt: skip
        s.add(Identity(bot_id="qianniu", external_id="小店:孙丽", person_id="sunli"))
        for scope, value in (("小店:孙丽", "96.30"), ("小店:周敏", "88.00")):
            s.add(MetricSample(metric="satisfaction_rate", scope=scope, day=date(2026, 11, 22),
                               value=Decimal(value), source="cs-report", fetched_at=clock()))  # fmt: skip
    (receipt,) = sim.say("sunli", "计划\n回访不满意客户 客户满意率 +1pp")
    assert receipt["title"].startswith("本周计划已提交"), receipt
    with db() as s:
        (item,) = s.scalars(select(PlanItem)).all()
    assert (item.scope, item.baseline, item.target) == ("小店:孙丽", Decimal("96.30"), Decimal("97.30"))
