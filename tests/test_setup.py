"""`planloop apply`: validation names table, entry and field; applying twice changes nothing."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import select

from handlers.setup import TeamFileError, apply, parse
from storage.models import AuditLog, Identity, Person, Team


def _raw():
    import tomllib
    from pathlib import Path

    return tomllib.loads((Path(__file__).parents[1] / "examples" / "team.toml").read_text("utf-8"))


def test_example_file_loads_twelve_people_in_two_teams(db, clock, team_spec):
    with db() as s, s.begin():
        report = apply(s, team_spec, now=clock())
    assert sum(1 for c in report.changes if c.startswith("+ person")) == 12
    with db() as s:
        assert s.scalar(select(Team).where(Team.id == "ops")).leader_id == "zhangwei"
        assert s.get(Identity, ("feishu-main", "ou_lilei")).person_id == "lilei"
        assert s.get(Identity, ("sim", "lilei")).person_id == "lilei"


def test_applying_the_same_file_twice_changes_nothing(db, clock, team_spec):
    with db() as s, s.begin():
        apply(s, team_spec, now=clock())
    with db() as s, s.begin():
        report = apply(s, team_spec, now=clock())
    assert report.changes == []
    with db() as s:
        assert (
            s.scalar(select(AuditLog).where(AuditLog.action == "team.apply").order_by(AuditLog.id.desc()))
            is not None
        )
        assert len(list(s.scalars(select(AuditLog).where(AuditLog.action == "team.apply")))) == 1


def test_a_removed_person_is_deactivated_not_deleted(db, clock):
    raw = _raw()
    with db() as s, s.begin():
        apply(s, parse(raw), now=clock())
    smaller = copy.deepcopy(raw)
    smaller["people"] = [p for p in smaller["people"] if p["id"] != "fengtao"]
    with db() as s, s.begin():
        report = apply(s, parse(smaller), now=clock())
    assert report.changes == ["- person fengtao (deactivated, history kept)"]
    with db() as s:
        assert s.get(Person, "fengtao").active is False


def test_a_changed_field_is_reported_with_old_and_new(db, clock):
    raw = _raw()
    with db() as s, s.begin():
        apply(s, parse(raw), now=clock())
    raw["people"][1]["role"] = "design"
    with db() as s, s.begin():
        report = apply(s, parse(raw), now=clock())
    assert report.changes == ["~ person lilei: role: 'operations' → 'design'"]


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda r: r["people"][0].update(team="nope"), "people (zhangwei).team: no team with id 'nope'"),
        (
            lambda r: r["people"][0].update(role="chef"),
            "people (zhangwei).role: 'chef' is not a built-in role",
        ),
        (lambda r: r["people"][0].update(type="old"), "people (zhangwei).type: 'old' is not new or veteran"),
        (lambda r: r["teams"][0].update(leader="ghost"), "teams (ops).leader: no person with id 'ghost'"),
        (
            lambda r: r["kpis"][0].update(direction="sideways"),
            "kpis (conversion_rate).direction: 'sideways' is not up or down",
        ),
        (lambda r: r["kpis"][0].pop("metric"), "kpis (conversion_rate).metric: required for a metric KPI"),
        (
            lambda r: r["templates"][0].update(weights={"conversion_rate": 60, "ctr": 30}),
            "templates (ops-default).weights",
        ),
        (
            lambda r: r["templates"][0].update(weights={"conversion_rate": 60, "nope": 40}),
            "templates (ops-default).weights.nope",
        ),
        (lambda r: r["periods"][0].update({"from": "13-40"}), "periods (double11).from: expected month-day"),
        (
            lambda r: r["people"][1]["ids"].update({"feishu-main": "ou_zhangwei"}),
            "people (lilei).ids.feishu-main: 'ou_zhangwei' is already zhangwei's id",
        ),
        (lambda r: r["people"].append(dict(r["people"][0])), "people (zhangwei).id: duplicate"),
        (lambda r: r.update(extra=[{}]), "extra: unknown table"),
    ],
)
def test_every_problem_names_table_entry_and_field(mutate, expected):
    raw = _raw()
    mutate(raw)
    with pytest.raises(TeamFileError) as info:
        parse(raw)
    assert any(line.startswith(expected) for line in info.value.problems), info.value.problems


def test_all_problems_are_reported_at_once():
    raw = _raw()
    raw["people"][0]["team"] = "nope"
    raw["kpis"][0]["direction"] = "sideways"
    with pytest.raises(TeamFileError) as info:
        parse(raw)
    assert len(info.value.problems) == 2


@pytest.mark.parametrize(
    "written, problem",
    [
        (__import__("datetime").date(2026, 12, 5), None),  # a bare TOML date
        ("2026-12-05", None),  # the quoted form CONTRACT.md shows
        (" 2026-12-05 ", None),
        ("12-05", "calendar[1].date: expected a date such as 2027-02-06"),
        ("2026-13-05", "calendar[1].date: expected a date such as 2027-02-06"),
        (20261205, "calendar[1].date: expected a date such as 2027-02-06"),
    ],
)
def test_a_calendar_day_may_be_a_toml_date_or_a_quoted_iso_date(written, problem):
    from datetime import date

    raw = _raw()
    raw["calendar"] = [{"date": written, "workday": True, "name": "调休"}]
    if problem is None:
        assert parse(raw)["calendar"] == {date(2026, 12, 5): {"workday": True, "name": "调休"}}
        return
    with pytest.raises(TeamFileError) as info:
        parse(raw)
    assert problem in info.value.problems


@pytest.mark.parametrize(
    "webhook, allow_private, problem",
    [
        ("https://oapi.dingtalk.com/robot/send?access_token=x", False, None),
        ("http://127.0.0.1:9/robot", False, "拒绝访问内网或本机地址 127.0.0.1（127.0.0.1）"),
        ("http://localhost/robot", False, "拒绝访问内网或本机地址 127.0.0.1（localhost）"),
        ("http://10.1.2.3/robot", False, "拒绝访问内网或本机地址 10.1.2.3（10.1.2.3）"),
        (
            "http://[::ffff:192.168.1.9]/robot",
            False,
            "拒绝访问内网或本机地址 ::ffff:c0a8:109（::ffff:192.168.1.9）",
        ),
        ("http://10.1.2.3/robot", True, None),  # a receiver inside the network, said so on the entry
        ("http://robot.intranet.example/robot", False, None),  # only DNS can tell: judged when sending
        ("ftp://robot.example/x", False, "只支持 http(s) 地址：ftp://robot.example"),
    ],
)
def test_a_team_robot_inside_the_network_is_named_at_apply(webhook, allow_private, problem):
    raw = _raw()
    team = raw["teams"][0]
    team["chat"] = {"bot": "dingtalk-main", "webhook": webhook, "allow_private": allow_private}
    if problem is None:
        assert (
            parse(raw, resolve_secret=lambda value, where: value)["teams"][team["id"]]["webhook"] == webhook
        )
        return
    with pytest.raises(TeamFileError) as info:
        parse(raw, resolve_secret=lambda value, where: value)
    (found,) = [p for p in info.value.problems if "chat.webhook" in p]
    assert found.startswith(f"teams ({team['id']}).chat.webhook: {problem}")
