"""End to end: `planloop import` / `planloop sources check` on the command line, and a plan item's
progress following the imported 生意参谋 numbers (GBK CSV, UTF-8-BOM CSV, XLSX)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from bot.cli.commands import main
from bot.config import SourceConfig
from bot.worker.polling import import_file
from handlers import exports

SYCM_TODAY = """【生意参谋平台】店铺整体_全部_2026-11-23_2026-11-23
统计时间：2026-11-23 ~ 2026-11-23

统计日期,店铺名,访客数,支付转化率,支付金额
2026-11-23,小店,"1,000",{cvr},"￥8,000.00"
合计,小店,"1,000",{cvr},"￥8,000.00"
"""


def test_cli_import_and_sources_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exports_dir = tmp_path / "exports"
    exports_dir.mkdir()
    config = tmp_path / "planloop.toml"
    config.write_text(
        f"""
[server]
database_url = "sqlite:///{tmp_path / "p.db"}"

[[sources]]
id = "shop-reports"
kind = "file"
path = "{exports_dir}"
preset = "sycm"
""",
        encoding="utf-8",
    )
    assert main(["--config", str(config), "db", "upgrade"]) == 0

    bad = tmp_path / "店铺整体.csv"
    bad.write_bytes(SYCM_TODAY.format(cvr="3.50%").replace('"1,000",3.50%', "abc,3.50%", 1).encode("gbk"))
    capsys.readouterr()
    assert main(["--config", str(config), "import", str(bad), "--source", "shop-reports"]) == 1
    out, err = capsys.readouterr()
    assert "GB18030" in out and "载入 0 行，拒绝 1 行" in out
    assert "店铺整体.csv 第 5 行「访客数」列" in err

    good = tmp_path / "good.csv"
    good.write_text("date,metric,value\n2026-11-22,complaint_rate,1.20%\n", encoding="utf-8-sig")
    assert main(["--config", str(config), "import", str(good)]) == 0
    out, _ = capsys.readouterr()
    assert "载入 1 行" in out and "新增 1" in out

    assert main(["--config", str(config), "import", str(good), "--source", "nope"]) == 2
    assert main(["--config", str(config), "import", str(tmp_path / "missing.csv")]) == 1

    (exports_dir / "a.csv").write_bytes(SYCM_TODAY.format(cvr="3.50%").encode("gbk"))
    capsys.readouterr()
    assert main(["--config", str(config), "sources", "check"]) == 0
    out, _ = capsys.readouterr()
    assert "✓ shop-reports (file)" in out and "会载入 3 个数值" in out and "pay_conversion_rate: 1" in out


def _xlsx(path: Path, cvr: float) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["店铺经营核心日报"])
    ws.append([])
    ws.append(["统计日期", "店铺名称", "访客数", "支付转化率"])
    ws.append(["2026-11-23", "小店", 1000, cvr])
    ws.cell(4, 4).number_format = "0.00%"
    ws.append(["合计", None, 1000, cvr])
    wb.save(path)


def test_plan_progress_follows_imported_reports(sim, demo_team, services, db, clock, tmp_path: Path) -> None:
    services.settings = dataclasses.replace(
        services.settings,
        sources=(SourceConfig("shop-reports", "file", {"path": str(tmp_path), "preset": "sycm"}, {}),),
    )
    (receipt,) = sim.say("lilei", "计划\n优化详情页首屏 支付转化率 +2pp")
    assert receipt["title"].startswith("本周计划已提交")

    def actual() -> Decimal | None:
        with db() as session:
            data = exports.export(session, "plans", "2026-W48", team=None, now=clock())
        (plan,) = [p for p in data["plans"] if p["employee"] == "lilei"]
        value = plan["items"][0]["actual"]
        return None if value is None else Decimal(str(value))

    assert actual() is None  # nothing for this week yet

    gbk = tmp_path / "店铺整体.csv"
    gbk.write_bytes(SYCM_TODAY.format(cvr="3.50%").encode("gbk"))
    assert import_file(services, gbk, "shop-reports")[:2] == (1, 0)
    assert actual() == Decimal("3.5")

    bom = tmp_path / "店铺整体_修正.csv"
    bom.write_bytes(SYCM_TODAY.format(cvr="3.60%").encode("utf-8-sig"))
    assert import_file(services, bom, "shop-reports")[:2] == (1, 0)
    assert actual() == Decimal("3.6")

    xlsx = tmp_path / "日报.xlsx"
    _xlsx(xlsx, 0.037)
    assert import_file(services, xlsx, "shop-reports")[:2] == (1, 0)
    assert actual() == Decimal("3.7")
