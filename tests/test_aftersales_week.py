"""End to end: a week of after-sales cases imported, a plan on 物流问题处理率 filed, the logistics
scenario switched on, the appraisal scored from the cases — every number recomputed here by hand
from the stored cases."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.config import SourceConfig
from bot.worker.polling import import_file_report
from handlers.appraisal_runs import run_week
from storage.models import AftersaleCase, PlanItem, Scenario, SourceRun

SH = ZoneInfo("Asia/Shanghai")
HEADER = "case_id,opened,closed,reason,status,shop\n"


def write(path: Path, rows: list[str]) -> Path:
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def rate_by_hand(cases: list[AftersaleCase], shop: str, cause: str, day: date, hours: int = 48) -> Decimal:
    """Of the cases opened on ``day`` (Shanghai time) for the shop and cause, the share finished in time."""
    opened = [
        c for c in cases if c.shop == shop and c.cause == cause and c.opened.astimezone(SH).date() == day
    ]
    in_time = [c for c in opened if c.closed is not None and c.closed - c.opened <= timedelta(hours=hours)]
    return (Decimal(len(in_time)) * 100 / len(opened)).quantize(Decimal("0.01"))


@pytest.mark.slow
def test_a_week_of_cases_scores_the_logistics_plan(
    sim, demo_team, services, db, clock, tmp_path: Path
) -> None:
    source = SourceConfig("pdd-after", "file", {"path": str(tmp_path), "preset": "aftersales"}, {})
    services.settings = dataclasses.replace(services.settings, sources=(source,))

    # Last week (imported Monday morning, before the plan): Sunday 11-22, one of two 物流 cases in time.
    last_week = write(
        tmp_path / "w47.csv",
        [
            "P1,2026-11-22 09:00,2026-11-22 19:00,快递/物流一直未送到,退款成功,pdd-after",
            "P2,2026-11-22 11:00,,物流信息长时间未更新,待商家处理,pdd-after",
            "P3,2026-11-22 12:00,2026-11-22 13:00,质量问题,退款成功,pdd-after",
            "T1,2026-11-22 12:00,,快递一直未送达,处理中,tb-shop",
        ],
    )
    report = import_file_report(services, last_week, "pdd-after")
    assert (report.loaded, report.refused) == (4, 0)

    (receipt,) = sim.say("sunli", "计划\n处理拼多多物流投诉 物流问题处理率 +10pp @pdd-after:物流")
    assert receipt["title"].startswith("本周计划已提交"), receipt
    with db() as s:
        (item,) = s.scalars(select(PlanItem)).all()
        assert (item.kpi_key, item.scope) == ("logistics_resolution", "pdd-after:物流")
        cases = list(s.scalars(select(AftersaleCase)))
    baseline = rate_by_hand(cases, "pdd-after", "物流", date(2026, 11, 22))
    assert baseline == Decimal("50.00") and item.baseline == baseline
    assert item.target == baseline + 10

    # This week: Sunday 11-29's five 物流 cases; imported Sunday night, then again Monday morning
    # when P9 has been finished — Sunday's rate is recomputed from 40 % to 60 %.
    clock.set(datetime(2026, 11, 29, 14, 0, tzinfo=UTC))  # 22:00 Shanghai
    sunday = [
        "P5,2026-11-29 08:00,2026-11-29 12:00,快递/物流一直未送到,退款成功,pdd-after",
        "P6,2026-11-29 09:00,2026-11-29 20:00,未按约定时间发货,退款成功,pdd-after",
        "P7,2026-11-29 11:00,,缺货,待商家处理,pdd-after",  # 缺货 is unmapped: 其他, not 物流
        "P8,2026-11-29 12:00,,物流信息长时间未更新,待商家处理,pdd-after",
        "P9,2026-11-29 13:00,{closed},快递一直未送达,{status},pdd-after",
        "P10,2026-11-29 15:00,,少件/漏发,待商家处理,pdd-after",
        "P4,2026-11-24 10:00,2026-11-25 09:00,快递一直未送达,退款成功,pdd-after",
    ]
    first = [r.format(closed="", status="待商家处理") for r in sunday]
    import_file_report(services, write(tmp_path / "w48a.csv", first), "pdd-after")
    with db() as s:
        cases = list(s.scalars(select(AftersaleCase)))
    assert rate_by_hand(cases, "pdd-after", "物流", date(2026, 11, 29)) == Decimal("40.00")

    clock.set(datetime(2026, 11, 30, 1, 30, tzinfo=UTC))  # Monday 09:30 Shanghai
    second = [r.format(closed="2026-11-30 09:00", status="退款成功") for r in sunday]
    report = import_file_report(services, write(tmp_path / "w48b.csv", second), "pdd-after")
    with db() as s:
        run = s.get(SourceRun, report.run_id)
        assert (run.detail["cases_updated"], run.detail["cases_unchanged"]) == (1, 6)  # only P9 changed
        cases = list(s.scalars(select(AftersaleCase)))
    actual = rate_by_hand(cases, "pdd-after", "物流", date(2026, 11, 29))
    assert actual == Decimal("60.00")

    with db() as s, s.begin():
        s.get(Scenario, "logistics_peak").active = True
    with db() as s, s.begin():
        rows = {r.person_id: r for r in run_week(s, "2026-W48", clock(), team="service")}
        sunli = rows["sunli"]
        assert sunli.template_id == "cs-logistics"
        (scored,) = [i for i in sunli.items if i.get("kpi") == "logistics_resolution"]
        assert Decimal(str(scored["actual"])) == actual
        # weight 50 × (60 − 50) / (60 − 50) = 50; complaint_rate and avg_response have no item
        completion = (actual - baseline) / (item.target - baseline)
        assert sunli.score == 50 * completion == Decimal(50)


def test_cli_import_of_an_aftersales_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli.commands import main

    config = tmp_path / "planloop.toml"
    config.write_text(
        f"""
[server]
database_url = "sqlite:///{tmp_path / "p.db"}"

[aftersales]
causes = {{ "缺货" = "物流" }}

[[sources]]
id = "pdd-after"
kind = "file"
preset = "aftersales"
path = "{tmp_path}"
""",
        encoding="utf-8",
    )
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    cases = write(
        tmp_path / "cases.csv",
        [
            "A1,2026-11-30 09:00,2026-11-30 10:00,缺货,done,",
            "A2,2026-11-30 09:00,,买家要求修改地址,open,",
            "A3,2026-11-30 09:00,,买家要求修改地址,open,",
            "A4,30/11/2026,,质量问题,open,",
        ],
    )
    capsys.readouterr()
    assert main(["--config", str(config), "import", str(cases), "--source", "pdd-after"]) == 1
    out, err = capsys.readouterr()
    assert "载入 3 行，拒绝 1 行" in out
    assert "未归类的售后原因（计入“其他”，可在 [aftersales] causes 里归类）：买家要求修改地址 ×2" in out
    assert "cases.csv 第 5 行「opened」列" in err

    assert main(["--config", str(config), "sources", "check"]) == 1  # the folder's file has a bad row
    out, _ = capsys.readouterr()
    assert "✗ pdd-after (file)" in out and "售后单: 3" in out  # a refused row marks the source
