"""A leader's manual template switch (handlers/template_switches.py): rules, chat and CLI."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from bot.cli.commands import main
from handlers.appraisal_runs import run_week
from handlers.appraisals import AppraisalError
from handlers.template_switches import cancel_switch, switch_template
from storage.models import AuditLog, TemplateSwitch
from tests.appraisal_shop import NOW, by_person, lilei_week48, seed_shop


@pytest.fixture
def shop(db) -> None:
    seed_shop(db)


# ---------------------------------------------------------------- template switching


def test_switch_wins_over_every_rule_and_is_audited(db, shop) -> None:
    with db() as s, s.begin():
        lilei_week48(s)
        switch_template(s, "ops", "ops-promo", by="zhangwei", now=NOW, until=date(2026, 12, 1))
        rows = by_person(run_week(s, "2026-W48", NOW, team="ops"))
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "template.switch")).one()
    assert rows["lilei"].template_reason == "大促模板（张伟 手动切换，11-23–12-01）替代 运营默认模板"
    assert rows["zhaoqiang"].template_reason == "大促模板（张伟 手动切换，11-23–12-01）替代 新人模板"
    assert rows["chenjing"].template_id == "design-default"  # another role keeps its own template
    assert (audit.actor, audit.at, audit.subject) == ("zhangwei", NOW, "team ops")
    assert audit.detail == {
        "team": "ops",
        "from": ["design-default", "newcomer", "ops-default"],
        "to": "ops-promo",
        "start": "2026-11-23",
        "until": "2026-12-01",
    }


def test_a_new_switch_ends_the_previous_one(db, shop) -> None:
    with db() as s, s.begin():
        first = switch_template(s, "ops", "ops-promo", by="zhangwei", now=NOW, until=date(2026, 12, 31))
        later = NOW + timedelta(days=3)
        second = switch_template(s, "ops", "ops-default", by="zhangwei", now=later)
        assert (first.until, first.cancelled) == (date(2026, 11, 25), False)
        assert (second.start, second.until) == (date(2026, 11, 26), None)
        future = switch_template(s, "ops", "ops-promo", by="zhangwei", now=later, start=date(2026, 12, 7))
        assert second.until == date(2026, 12, 6)
        switch_template(s, "ops", "ops-default", by="zhangwei", now=later, start=date(2026, 12, 1))
        assert future.cancelled is True  # it had not started yet


def test_cancel_returns_to_the_rule_from_today(db, shop) -> None:
    with db() as s, s.begin():
        switch_template(s, "ops", "ops-promo", by="zhangwei", now=NOW)
        wednesday = NOW + timedelta(days=2)
        assert cancel_switch(s, "ops", by="zhangwei", now=wednesday) == 1
        assert cancel_switch(s, "ops", by="zhangwei", now=wednesday) == 0
        row = s.scalars(select(TemplateSwitch)).one()
        assert row.until == date(2026, 11, 24)
        w48 = by_person(run_week(s, "2026-W48", wednesday, team="ops"))["lilei"]
        w49 = by_person(run_week(s, "2026-W49", wednesday, team="ops"))["lilei"]
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "template.switch.cancel")).one()
    assert w48.template_id == "ops-promo"  # the switch covered Monday and Tuesday of W48
    assert w49.template_id == "ops-default"
    assert audit.detail["from"] == ["ops-promo"] and audit.actor == "zhangwei"


@pytest.mark.parametrize(
    ("team", "template", "until", "message"),
    [
        ("nope", "ops-promo", None, "没有 id 为“nope”的团队"),
        ("ops", "nope", None, "没有 id 为“nope”的可用模板"),
        ("ops", "cs-default", None, "适用于岗位 customer_service"),
        ("ops", "ops-promo", date(2026, 11, 22), "早于开始日期"),
    ],
)
def test_switch_refuses(db, shop, team: str, template: str, until: date | None, message: str) -> None:
    with db() as s, s.begin():
        with pytest.raises(AppraisalError, match=message):
            switch_template(s, team, template, by="zhangwei", now=NOW, until=until)
        assert s.scalars(select(TemplateSwitch)).all() == []


def test_switch_from_chat(sim, db, shop) -> None:
    (card,) = sim.say("zhangwei", "切换模板 ops-promo 至 12-01")
    assert card["title"] == "考核模板已切换 · 运营设计组"
    assert "张伟 将 运营设计组 的考核模板切换为 大促模板（11-23–12-01）。" in card["text"]
    (denied,) = sim.say("lilei", "切换模板 ops-promo 至 12-01")
    assert denied["title"] == "没有权限"
    (bad,) = sim.say("zhangwei", "切换模板 ops-promo 至 明天")
    assert "日期“明天”看不懂" in bad["text"]
    (pick,) = sim.say("zhangwei", "切换模板")
    assert pick["form"]["action"] == "template.switch"
    template, until = pick["form"]["fields"]
    assert [o["value"] for o in template["options"]] == [
        "design-default",
        "newcomer",
        "ops-default",
        "ops-promo",
        "auto",
    ]
    # Monday 11-23: this Sunday, next Sunday, the month's end is not later, or no end
    assert [o["value"] for o in until["options"]] == ["2026-11-29", "2026-12-06", "none"]
    (done,) = sim.act("zhangwei", "template.switch", {"template": "ops-default", "until": "2026-11-29"})
    assert "切换为 运营默认模板（11-23–11-29）" in done["text"]
    (open_ended,) = sim.act("zhangwei", "template.switch", {"template": "ops-promo", "until": "none"})
    assert "切换为 大促模板（自 11-23 起）" in open_ended["text"]
    (auto,) = sim.act("zhangwei", "template.switch", {"template": "auto", "until": "none"})
    assert auto["title"] == "考核模板已恢复"
    (back,) = sim.say("zhangwei", "恢复模板")
    assert "当前没有手动切换" in back["text"]
    with db() as s:
        actions = [a.action for a in s.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert actions == ["template.switch", "template.switch", "template.switch", "template.switch.cancel"]


def test_cli_template_switch(config, db, shop, capsys) -> None:
    assert (
        main(
            [
                "--config",
                config,
                "template",
                "switch",
                "--team",
                "ops",
                "--to",
                "ops-promo",
                "--until",
                "2099-12-01",
                "--reason",
                "大促提前",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("团队 ops：从 ") and out.strip().endswith(
        "起使用模板 ops-promo，到 2099-12-01 为止"
    )
    with db() as s:
        row = s.scalars(select(TemplateSwitch)).one()
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "template.switch")).one()
    assert (row.template_id, row.until, row.by) == ("ops-promo", date(2099, 12, 1), "admin")
    assert (audit.detail["to"], audit.detail["reason"]) == ("ops-promo", "大促提前")
    assert main(["--config", config, "template", "switch", "--team", "ops", "--to", "nope"]) == 1
    assert "没有 id 为“nope”的可用模板" in capsys.readouterr().err
    assert (
        main(
            [
                "--config",
                config,
                "template",
                "switch",
                "--team",
                "ops",
                "--to",
                "ops-promo",
                "--until",
                "soon",
            ]
        )
        == 2
    )
    assert main(["--config", config, "template", "switch", "--team", "x", "--to", "ops-promo"]) == 1
