"""Leader ratings (handlers/ratings.py), through the simulator."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest
from sqlalchemy import select

from handlers.appraisal_runs import run_week
from storage.models import AuditLog, Rating
from tests.appraisal_shop import NOW, by_person, seed_shop


@pytest.fixture
def shop(db) -> None:
    seed_shop(db)


# ---------------------------------------------------------------- ratings


def test_leader_rates_from_a_card(sim, db, shop) -> None:
    (form,) = sim.say("zhangwei", "评分")
    assert form["form"]["action"] == "appraisal.rate"
    (ok,) = sim.act(
        "zhangwei",
        "appraisal.rate",
        {"week": "2026-W48", "person": "chenjing", "kpi": "leader_rating", "stars": "5"},
    )
    assert "陈静 · 2026-W48 · 主管评分：5 星" in ok["text"]
    sim.act(
        "zhangwei",
        "appraisal.rate",
        {"week": "2026-W48", "person": "zhaoqiang", "kpi": "learning", "done": "2", "planned": "4"},
    )
    with db() as s, s.begin():
        rating = s.get(Rating, ("chenjing", "2026-W48", "leader_rating"))
        assert (rating.stars, rating.by) == (5, "zhangwei")
        rows = by_person(run_week(s, "2026-W48", NOW, team="ops"))
        audit = s.scalars(
            select(AuditLog).where(AuditLog.action == "appraisal.rate").order_by(AuditLog.id)
        ).all()
    assert rows["chenjing"].score == D(24)  # 20 × 120 %
    assert rows["zhaoqiang"].score == D(30)  # 60 × 2/4
    assert [a.detail["to"] for a in audit] == [
        {"stars": 5, "done": None, "planned": None},
        {"stars": None, "done": 2, "planned": 4},
    ]


@pytest.mark.parametrize(
    ("who", "values", "expected"),
    [
        ("lilei", {"person": "chenjing", "kpi": "leader_rating", "stars": "5"}, "只有团队主管"),
        ("zhangwei", {"person": "sunli", "kpi": "leader_rating", "stars": "5"}, "请选择本团队的员工"),
        ("zhangwei", {"person": "chenjing", "kpi": "ctr", "stars": "5"}, "请选择评分类或清单类指标"),
        ("zhangwei", {"person": "chenjing", "kpi": "leader_rating", "stars": "9"}, "星级应在 1–5 之间"),
        ("zhangwei", {"person": "chenjing", "kpi": "leader_rating"}, "请选择 1–5 星"),
        ("zhangwei", {"person": "chenjing", "kpi": "learning", "done": "x"}, "完成任务数应为整数"),
        ("zhangwei", {"person": "chenjing", "kpi": "learning"}, "请填写完成任务数"),
        (
            "zhangwei",
            {"person": "chenjing", "kpi": "leader_rating", "stars": "3", "week": "2026-W99"},
            "没有这一周",
        ),
    ],
)
def test_rating_refuses(sim, db, shop, who: str, values: dict, expected: str) -> None:
    (card,) = sim.act(who, "appraisal.rate", {"week": "2026-W48", **values})
    assert expected in json.dumps(card, ensure_ascii=False)
    with db() as s:
        assert s.scalars(select(Rating)).all() == []
