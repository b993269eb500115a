"""The `planloop` command as an admin uses it: exit codes, messages, apply, export."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from openpyxl import load_workbook

from bot.cli.commands import main
from storage.db import head_revision

EXAMPLE = str(Path(__file__).parents[1] / "examples" / "team.toml")


def test_db_upgrade_on_a_fresh_file(tmp_path, capsys):
    path = tmp_path / "p.toml"
    path.write_text(f'[server]\ndatabase_url = "sqlite:///{tmp_path / "x.db"}"\n')
    assert main(["--config", str(path), "db", "upgrade"]) == 0
    assert f"数据库已在版本 {head_revision()}" in capsys.readouterr().out


def test_commands_refuse_an_unmigrated_database_with_the_fix(tmp_path, capsys):
    path = tmp_path / "p.toml"
    path.write_text(f'[server]\ndatabase_url = "sqlite:///{tmp_path / "x.db"}"\n')
    assert main(["--config", str(path), "apply", EXAMPLE]) == 1
    assert "先运行 `planloop db upgrade`" in capsys.readouterr().err


def test_a_bad_config_is_exit_2_with_one_line_per_problem(tmp_path, capsys):
    path = tmp_path / "p.toml"
    path.write_text('[server]\ntimezone = "Nowhere/City"\nlocale = "xx"\n')
    assert main(["--config", str(path), "db", "upgrade"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "config: server.timezone: unknown time zone 'Nowhere/City' (expected e.g. Asia/Shanghai)",
        "config: server.locale: 'xx' is not one of zh-CN, en-US",
    ]


def test_apply_twice_then_dry_run(config, capsys):
    assert main(["--config", config, "apply", EXAMPLE]) == 0
    first = capsys.readouterr().out
    assert "+ person lilei" in first and re.search(r"已更改 \d+ 项$", first.strip())
    assert main(["--config", config, "apply", EXAMPLE]) == 0
    assert capsys.readouterr().out.strip() == "没有变化"


def test_apply_dry_run_changes_nothing(config, capsys):
    assert main(["--config", config, "apply", "--dry-run", EXAMPLE]) == 0
    assert re.search(r"将更改 \d+ 项（--dry-run，没有写入）$", capsys.readouterr().out.strip())
    assert main(["--config", config, "apply", "--dry-run", EXAMPLE]) == 0
    assert "+ person lilei" in capsys.readouterr().out  # still not applied


def test_apply_reports_every_problem_and_exits_2(config, tmp_path, capsys):
    bad = tmp_path / "team.toml"
    bad.write_text(
        Path(EXAMPLE)
        .read_text("utf-8")
        .replace('team = "ops"', 'team = "opz"', 1)
        .replace('direction = "down"', 'direction = "less"', 1)
    )
    assert main(["--config", config, "apply", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}：people (zhangwei).team: no team with id 'opz'" in err
    assert f"{bad}：kpis (complaint_rate).direction: 'less' is not up or down" in err


def test_usage_errors_are_exit_2(config, capsys):
    with pytest.raises(SystemExit) as info:
        main(["--config", config, "export", "plans"])
    assert info.value.code == 2
    assert main(["--config", config, "export", "plans", "--week", "2026-48"]) == 2
    assert "not an ISO week" in capsys.readouterr().err


def _filed(client):
    values = {
        "item1_text": "优化详情页首屏",
        "item1_kpi": "conversion_rate",
        "item1_target": "+2%",
        "item2_text": "差评回访",
        "item2_kpi": "complaint_rate",
        "item2_target": "-10%",
    }
    res = client.post(
        "/sim/api/act", json={"as": "lilei", "chat": "dm", "action": "plan.submit", "values": values}
    )
    assert res.status_code == 200


def test_export_plans_json_matches_the_contract(config, client, demo_team, capsys):
    _filed(client)
    assert main(["--config", config, "export", "plans", "--week", "2026-W48", "--team", "ops"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["week"] == "2026-W48"
    lilei = next(p for p in data["plans"] if p["employee"] == "lilei")
    assert (lilei["team"], lilei["status"], lilei["submitted_at"]) == (
        "ops",
        "submitted",
        "2026-11-23T10:00:00+08:00",
    )
    assert [i["kpi"] for i in lilei["items"]] == ["conversion_rate", "complaint_rate"]
    item = lilei["items"][0]
    assert set(item) >= {"text", "kpi", "baseline", "target", "actual", "progress", "lagging"}
    assert item["target"] == pytest.approx(item["baseline"] * 1.02)
    missing = next(p for p in data["plans"] if p["employee"] == "hanmeimei")
    assert (missing["status"], missing["items"]) == ("missing", [])
    assert {p["team"] for p in data["plans"]} == {"ops"}


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_plans_tabular(config, client, demo_team, tmp_path, fmt):
    _filed(client)
    out = tmp_path / f"plans.{fmt}"
    assert (
        main(["--config", config, "export", "plans", "--week", "2026-W48", "--format", fmt, "-o", str(out)])
        == 0
    )
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(out.read_bytes().decode("utf-8-sig"))))
    else:
        rows = [list(r) for r in load_workbook(out, read_only=True).active.iter_rows(values_only=True)]
    header, body = rows[0], rows[1:]
    assert header[:6] == ["week", "employee", "team", "status", "submitted_at", "text"]
    lilei = [r for r in body if r[1] == "lilei"]
    assert [r[6] for r in lilei] == ["conversion_rate", "complaint_rate"]
    assert len(body) == 2 + 11  # two items, and one row for each of the 11 people without a plan


def test_export_an_unknown_team_fails_with_a_reason(config, demo_team, capsys):
    assert main(["--config", config, "export", "plans", "--week", "2026-W48", "--team", "nope"]) == 1
    assert "no team with id 'nope'" in capsys.readouterr().err


def test_export_progress_shows_actual_and_completion_per_item(config, client, demo_team, db, capsys):
    from datetime import UTC, date, datetime
    from decimal import Decimal

    from storage.models import MetricSample, PlanItem

    _filed(client)
    with db() as s, s.begin():
        item = s.query(PlanItem).filter_by(kpi_key="conversion_rate").one()
        halfway = item.baseline + (item.target - item.baseline) / 2
        s.add(
            MetricSample(
                metric="pay_conversion_rate",
                scope="shop",
                day=date(2026, 11, 24),
                value=halfway,
                source="test",
                fetched_at=datetime(2026, 11, 24, tzinfo=UTC),
            )
        )
    assert main(["--config", config, "export", "progress", "--week", "2026-W48"]) == 0
    data = json.loads(capsys.readouterr().out)
    (lilei,) = [p for p in data["progress"] if p["employee"] == "lilei"]
    conv = next(i for i in lilei["items"] if i["kpi"] == "conversion_rate")
    assert conv["actual"] == pytest.approx(float(halfway))
    assert conv["actual_date"] == "2026-11-24"
    assert Decimal(str(conv["progress"])).quantize(Decimal("0.01")) == Decimal("0.50")
    complaint = next(i for i in lilei["items"] if i["kpi"] == "complaint_rate")
    assert (complaint["actual"], complaint["progress"], complaint["status"]) == (None, None, "no data")


# ---------------------------------------------------------------- the first hour (issue 20)


def _all_parsers(parser, path=("planloop",)):  # noqa: ANN001, ANN202
    import argparse

    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _all_parsers(sub, (*path, name))


def test_every_subcommand_describes_itself_and_every_option_has_help():
    from bot.cli.commands import build_parser

    undocumented = []
    for path, parser in _all_parsers(build_parser()):
        if len(path) > 1 and not parser.description:
            undocumented.append(" ".join(path))
        for action in parser._actions:
            if action.option_strings and not action.help and action.dest != "help":
                undocumented.append(f"{' '.join(path)} {action.option_strings[0]}")
    assert undocumented == []


@pytest.mark.parametrize("where", ["before", "after"])
def test_config_is_accepted_before_and_after_the_subcommand(tmp_path, capsys, where):
    path = tmp_path / "p.toml"
    path.write_text(f'[server]\ndatabase_url = "sqlite:///{tmp_path / "x.db"}"\n')
    args = ["db", "upgrade"]
    argv = ["--config", str(path), *args] if where == "before" else [*args, "--config", str(path)]
    assert main(argv) == 0
    assert (tmp_path / "x.db").exists()


def test_a_command_without_a_config_leaves_no_empty_database_behind(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PLANLOOP_CONFIG", raising=False)
    assert main(["export", "plans", "--week", "2026-W48"]) == 1
    err = capsys.readouterr().err
    assert f"没有数据库 {tmp_path / 'planloop.db'}" in err and "planloop db upgrade" in err
    assert list(tmp_path.iterdir()) == []


def test_xlsx_is_not_written_to_a_terminal(config, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert main(["--config", config, "export", "plans", "--week", "2026-W48", "--format", "xlsx"]) == 2
    assert "请加 -o 文件名.xlsx" in capsys.readouterr().err


def test_building_the_cli_does_not_load_prometheus_client():
    """`planloop serve` must set PROMETHEUS_MULTIPROC_DIR before prometheus_client is imported
    (bot/ops/serve.py), so no subcommand may import it while the parser is built."""
    import subprocess
    import sys

    code = "import sys; from bot.cli.commands import build_parser; build_parser(); print('prometheus_client' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1]
    )
    assert (done.returncode, done.stdout.strip()) == (0, "False"), done.stderr
