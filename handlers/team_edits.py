"""Teams, people and the starter catalogue written without a file (the console's People page, issue 22).

``save_team`` creates or edits one team's name, leader and chat with the team file's own rules;
``save_person`` moves a person to another team, role or type; ``save_period`` and ``save_scenario``
write one promotion period or scenario through the team file's validation;
``load_catalogue`` adds the KPIs, roles, periods, scenarios and templates of a parsed team file
that the database does not have yet, and never changes one it has. Both are audited.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from handlers.setup import ID_PATTERN, TIME_PATTERN, TeamFileError, known_roles, parse
from handlers.template_versions import record as record_template_version
from storage.db import upsert
from storage.models import (
    AuditLog,
    CalendarDay,
    Identity,
    Kpi,
    Period,
    Person,
    Role,
    Scenario,
    Team,
    Template,
)


def example_team_file() -> Path:
    """examples/team.toml (the demo's team, the starter catalogue): beside the source tree, else
    in the working directory (the image's /app)."""
    for base in (Path(__file__).resolve().parents[1], Path.cwd()):
        candidate = base / "examples" / "team.toml"
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        "examples/team.toml not found: run planloop from its source tree or the image's /app"
    )


class TeamEditError(ValueError):
    """What the admin must correct, in a sentence."""


def save_team(session: Session, entry: Mapping[str, Any], *, by: str, now: datetime) -> Team:
    """Create the team ``entry["id"]`` or change its name, leader and chat (other settings stay; a
    blank leader or chat keeps the one the team has)."""
    team_id, name = str(entry.get("id") or ""), str(entry.get("name") or "").strip()
    leader = entry.get("leader")
    chat = entry.get("chat") or {}
    problems = []
    if not ID_PATTERN.match(team_id):
        problems.append("团队 ID 只能用字母、数字和 _-.，最长 64 个字符")
    if not name or len(name) > 200:
        problems.append("请填写团队名称（最长 200 字）")
    if leader is not None:
        person = session.get(Person, str(leader))
        if person is None or not person.active:
            problems.append(f"负责人 {str(leader)[:64]} 不是在职人员")
    if chat and not (chat.get("bot") and chat.get("chat_id")):
        problems.append("群聊需要同时填写机器人和群 ID")
    settings = _team_settings(entry, problems)
    if problems:
        raise TeamEditError("；".join(problems))
    team = session.get(Team, team_id)
    created = team is None
    if team is None:
        team = Team(id=team_id, name=name, timezone="Asia/Shanghai", lag_margin=20, plan_day_time="10:00",
                    plan_deadline_time="14:00", active=True)  # fmt: skip
        session.add(team)
    before = {"name": team.name, "leader": team.leader_id, "chat": [team.chat_bot, team.chat_id]}
    before |= {attr: getattr(team, attr) for attr in settings}
    team.name, team.active = name, True
    for attr, value in settings.items():
        setattr(team, attr, value)
    if leader is not None or created:  # a blank leader keeps the one the team has
        team.leader_id = leader
    if chat:
        team.chat_bot, team.chat_id = str(chat["bot"])[:64], str(chat["chat_id"])[:200]
    after = {"name": team.name, "leader": team.leader_id, "chat": [team.chat_bot, team.chat_id]}
    after |= {attr: getattr(team, attr) for attr in settings}
    detail = {"after": after} if created else {"before": before, "after": after}
    session.add(AuditLog(at=now, actor=by, action="team.create" if created else "team.edit", subject=team_id,
                         detail=detail))  # fmt: skip
    session.flush()
    return team


def _team_settings(entry: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    """The time zone, plan times and lag margin given (a blank one keeps the team's), checked as
    the team file checks them."""
    out: dict[str, Any] = {}
    zone = str(entry.get("timezone") or "").strip()
    if zone:
        try:
            ZoneInfo(zone)
            out["timezone"] = zone
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"时区 {zone[:64]} 不存在（例如 Asia/Shanghai）")
    for key, attr, label in (
        ("plan_time", "plan_day_time", "提醒写计划"),
        ("plan_deadline", "plan_deadline_time", "计划截止"),
    ):
        value = str(entry.get(key) or "").strip()
        if value and not TIME_PATTERN.match(value):
            problems.append(f"{label}时间应为 HH:MM，例如 10:00")
        elif value:
            out[attr] = value
    margin = str(entry.get("lag_margin") or "").strip()
    if margin and not (margin.isdigit() and 0 <= int(margin) <= 100):
        problems.append("落后容差应为 0–100 之间的整数（百分点）")
    elif margin:
        out["lag_margin"] = int(margin)
    return out


def save_calendar_day(session: Session, entry: Mapping[str, Any], *, by: str, now: datetime) -> CalendarDay:
    """A workday-calendar override (调休 Saturday, an extra day off), checked as the team file checks it."""
    raw = {"date": str(entry.get("date") or ""), "workday": entry.get("workday") in (True, "1", "true", "on")}
    if entry.get("name"):
        raw["name"] = str(entry["name"])
    try:
        ((day, values),) = parse({"calendar": [raw]})["calendar"].items()
    except TeamFileError as exc:
        raise TeamEditError("；".join(exc.problems)) from None
    row = session.get(CalendarDay, day)
    before = None if row is None else {"workday": row.workday, "name": row.name}
    if row is None:
        row = CalendarDay(day=day, **values)
        session.add(row)
    else:
        row.workday, row.name = values["workday"], values["name"]
    if before != values:
        session.add(AuditLog(at=now, actor=by, action="calendar.set", subject=day.isoformat(),
                             detail={"before": before, "after": values}))  # fmt: skip
    session.flush()
    return row


def new_person(
    session: Session,
    person_id: str,
    name: str,
    team_id: str,
    role: str,
    kind: str,
    *,
    added_from: str,
    hire_date: date | None = None,
) -> Person:
    """A person added without a team file (from the directory, or the first admin), known to the
    simulator by their person id as a team file's people are (setup.apply)."""
    person = Person(id=person_id, name=name[:200], team_id=team_id, role=role, type=kind, hire_date=hire_date,
                    active=True, added_from=added_from)  # fmt: skip
    session.add(person)
    session.flush()
    session.add(Identity(bot_id="sim", external_id=person_id, person_id=person_id))
    return person


def save_person(session: Session, entry: Mapping[str, str], *, by: str, now: datetime) -> Person:
    """Move an active person (``entry["person"]``) to another team, role or type (a team file's
    ``team``, ``role``, ``type``); a blank value keeps what they have."""
    person_id = str(entry.get("person") or "")
    person = session.get(Person, person_id)
    if person is None or not person.active:
        raise TeamEditError(f"没有在职的人员 {person_id[:64]}")
    values = {
        "team": entry.get("team") or person.team_id,
        "role": entry.get("role") or person.role,
        "type": entry.get("type") or person.type,
    }
    roles = known_roles(session)
    team = session.get(Team, values["team"])
    problems = []
    if team is None or not team.active:
        problems.append("请选择一个团队")
    if values.get("role") not in roles:
        problems.append(f"岗位 {str(values.get('role'))[:64]} 不存在")
    if values.get("type") not in ("new", "veteran"):
        problems.append("类型应为新人或老员工")
    if problems:
        raise TeamEditError("；".join(problems))
    before = {"team": person.team_id, "role": person.role, "type": person.type}
    person.team_id, person.role, person.type = values["team"], values["role"], values["type"]
    after = {"team": person.team_id, "role": person.role, "type": person.type}
    if after != before:
        session.add(AuditLog(at=now, actor=by, action="person.edit", subject=person_id,
                             detail={"before": before, "after": after}))  # fmt: skip
    session.flush()
    return person


def save_period(session: Session, entry: Mapping[str, str], *, by: str, now: datetime) -> Period:
    """Create or change a promotion period (``id``, ``name``, ``from`` and ``to`` as month-day)."""
    ((period_id, values),) = _checked(entry, "periods").items()
    return _save(session, Period, period_id, values, "period", by=by, now=now)


def save_scenario(session: Session, entry: Mapping[str, str], *, by: str, now: datetime) -> Scenario:
    """Create a scenario or rename one (turning it on or off stays handlers/scenarios.set_scenario)."""
    ((scenario_id, values),) = _checked(entry, "scenarios").items()
    row = session.get(Scenario, scenario_id)
    return _save(session, Scenario, scenario_id, {"name": values["name"], "active": row.active if row else False},
                 "scenario", by=by, now=now)  # fmt: skip


def _checked(entry: Mapping[str, str], table: str) -> dict[str, dict[str, Any]]:
    """One entry through the team file's own validation (handlers.setup.parse)."""
    try:
        return dict(parse({table: [dict(entry)]})[table])
    except TeamFileError as exc:
        raise TeamEditError("；".join(exc.problems)) from None


def _save(session: Session, model: Any, ident: str, values: Mapping[str, Any], what: str, *, by: str,
          now: datetime) -> Any:  # fmt: skip
    row, before = upsert(session, model, ident, values)
    if before != dict(values):
        action = f"{what}.create" if before is None else f"{what}.edit"
        session.add(AuditLog(at=now, actor=by, action=action, subject=ident,
                             detail={"before": before, "after": dict(values)}))  # fmt: skip
    session.flush()
    return row


def load_catalogue(session: Session, spec: Mapping[str, Any], *, by: str, now: datetime) -> dict[str, int]:
    """Add what ``spec`` (a parsed team file) defines and the database lacks; say how many of each."""
    added = {"roles": 0, "kpis": 0, "periods": 0, "scenarios": 0, "templates": 0}
    tables: list[tuple[str, Any, str]] = [
        ("roles", Role, "id"), ("kpis", Kpi, "key"), ("periods", Period, "id"),
        ("scenarios", Scenario, "id"), ("templates", Template, "id"),
    ]  # fmt: skip
    for table, model, key in tables:
        have = set(session.scalars(select(getattr(model, key))))
        for ident, values in spec[table].items():
            if ident in have:
                continue
            row = dict(values)
            if table == "scenarios":
                row["active"] = bool(row.get("active"))
            if table == "templates":
                row["active"] = True
            session.add(model(**{key: ident, **row}))
            added[table] += 1
    session.flush()
    for template_id in spec["templates"]:
        stored = session.get(Template, template_id)
        if stored is not None:
            record_template_version(session, stored, now, f"starter catalogue ({by})")
    if any(added.values()):
        session.add(
            AuditLog(at=now, actor=by, action="catalogue.load", subject="starter catalogue", detail=added)
        )
    session.flush()
    return added
