"""`planloop config export`: the database written back as a team file that applies to no change."""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path

import pytest

from bot.cli.commands import main
from handlers.config_export import export, render, webhook_env
from handlers.setup import apply, parse
from storage.db import transaction
from storage.models import Person, Team

EXAMPLE = Path(__file__).parents[1] / "examples" / "team.toml"


def _round_trip(session, env: dict[str, str] | None = None) -> dict:
    """Export, render, read back and validate, as `planloop apply` would read the file."""
    text = render(export(session), ["a header line"])
    return parse(tomllib.loads(text), lambda raw, where: (env or {})[raw.removeprefix("env:")])


def _file_with_extras() -> dict:
    raw = tomllib.loads(EXAMPLE.read_text("utf-8"))
    raw["roles"] = [{"id": "live", "name": "直播", "sections": [["直播场次", "gmv"], "复盘"]}]
    raw["calendar"] = [{"date": date(2027, 2, 7), "workday": True, "name": "春节调休"}]
    raw["teams"][0]["chat"] = {"bot": "dingtalk-main", "webhook": "https://oapi.dingtalk.com/robot/send?x=1"}
    raw["teams"][0]["chat"]["secret"] = "SEC123"
    raw["teams"][1]["kpis"] = ["complaint_rate", "ctr"]
    raw["teams"][1]["lag_margin"] = 15
    raw["people"][0]["hire_date"] = date(2026, 9, 1)
    return raw


def test_the_export_of_an_applied_file_applies_to_no_change(db, clock):
    from storage.secrets import Sealer
    from tests.conftest import TEST_KEY

    sealer = Sealer([TEST_KEY])
    raw = _file_with_extras()
    with transaction(db) as session:
        apply(session, parse(raw, lambda v, w: v), now=clock(), seal=sealer.seal, open_sealed=sealer.open)
    first_team = raw["teams"][0]["id"]
    env = {webhook_env(first_team, "webhook"): raw["teams"][0]["chat"]["webhook"]}
    env[webhook_env(first_team, "secret")] = "SEC123"
    with transaction(db) as session:
        again = _round_trip(session, env)
        report = apply(session, again, now=clock(), seal=sealer.seal, open_sealed=sealer.open)
    assert report.changes == []
    assert again["roles"]["live"]["sections"] == [["直播场次", "gmv"], ["复盘", ""]]
    assert again["calendar"] == {date(2027, 2, 7): {"workday": True, "name": "春节调休"}}
    assert again["teams"][raw["teams"][1]["id"]]["kpis"] == ["complaint_rate", "ctr"]


def test_secrets_are_named_not_written_and_the_inactive_are_left_out(db, clock):
    from storage.secrets import Sealer
    from tests.conftest import TEST_KEY

    sealer = Sealer([TEST_KEY])
    raw = _file_with_extras()
    with transaction(db) as session:
        apply(session, parse(raw, lambda v, w: v), now=clock(), seal=sealer.seal, open_sealed=sealer.open)
        gone = session.get(Person, raw["people"][-1]["id"])
        gone.active = False
    team = raw["teams"][0]["id"]
    with db() as session:
        exported = export(session)
        text = render(exported, ["header"])
    assert "SEC123" not in text and "oapi.dingtalk.com" not in text
    assert exported.needed_env == [webhook_env(team, "webhook"), webhook_env(team, "secret")]
    (chat,) = [t["chat"] for t in exported.data["teams"] if t["id"] == team]
    assert chat == {
        "bot": "dingtalk-main",
        "webhook": f"env:{webhook_env(team, 'webhook')}",
        "secret": f"env:{webhook_env(team, 'secret')}",
    }
    assert raw["people"][-1]["id"] not in {p["id"] for p in exported.data["people"]}
    assert len(exported.data["people"]) == len(raw["people"]) - 1
    assert text.startswith("# header\n")


@pytest.mark.parametrize(
    "team_id, what, name",
    [
        ("ops", "webhook", "PLANLOOP_TEAM_OPS_WEBHOOK"),
        ("cs-east.2", "secret", "PLANLOOP_TEAM_CS_EAST_2_SECRET"),
    ],
)
def test_the_environment_variable_a_team_robot_is_read_from(team_id, what, name):
    assert webhook_env(team_id, what) == name


def test_an_empty_database_exports_an_empty_file_that_applies(db, clock):
    with db() as session:
        exported = export(session)
    assert exported.data == {} and exported.needed_env == []
    assert parse(tomllib.loads(render(exported, [])))["people"] == {}


def test_the_command_writes_a_file_and_says_what_it_holds(config, tmp_path, capsys):
    assert main(["--config", config, "apply", str(EXAMPLE)]) == 0
    capsys.readouterr()
    out = tmp_path / "team.toml"
    assert main(["--config", config, "config", "export", "-o", str(out)]) == 0
    said = capsys.readouterr()
    people = len(tomllib.loads(EXAMPLE.read_text("utf-8"))["people"])
    assert said.out == ""
    assert f"已写入 {out}：2 个团队、{people} 人" in said.err
    assert main(["--config", config, "apply", "--dry-run", str(out)]) == 0
    assert capsys.readouterr().out.strip() == "没有变化"
    # to standard output when no file is named; a file that cannot be written is a clear failure
    assert main(["--config", config, "config", "export"]) == 0
    assert tomllib.loads(capsys.readouterr().out)["teams"][0]["id"] == "ops"
    assert main(["--config", config, "config", "export", "-o", str(tmp_path / "no" / "x.toml")]) == 1
    assert "无法写入" in capsys.readouterr().err


def test_a_team_without_chat_or_leader_exports_without_them(db, clock):
    with transaction(db) as session:
        session.add(Team(id="solo", name="独立组", timezone="Asia/Shanghai", lag_margin=20,
                         plan_day_time="10:00", plan_deadline_time="14:00"))  # fmt: skip
    with db() as session:
        (team,) = export(session).data["teams"]
    assert team == {
        "id": "solo", "name": "独立组", "timezone": "Asia/Shanghai", "lag_margin": 20,
        "plan_time": "10:00", "plan_deadline": "14:00",
    }  # fmt: skip
