"""Team setup: `planloop apply team.toml` — validate the whole file, then upsert it idempotently.

Removed people and teams are deactivated, never deleted (their history stays). Errors name
the table, the entry and the field, all of them at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy.orm import Session

from handlers.template_versions import record as record_template_version
from sources.cases import metric_alias
from sources.netguard import literal_refusal
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

# Default plan sections per role: (section, suggested metric key). Inside a promotion period
# operations plan the promotion instead.
BUILTIN_ROLES: dict[str, dict[str, Any]] = {
    "operations": {
        "name": "运营",
        "sections": [
            ["活动策划", "activity_sales"],
            ["推广执行", "ctr"],
            ["数据优化", "pay_conversion_rate"],
        ],
        "promo_sections": [["活动预热", "activity_sales"], ["活动执行", "activity_sales"], ["活动复盘", ""]],
    },
    "design": {
        "name": "设计",
        "sections": [["海报设计", "ctr"], ["详情页设计", "pay_conversion_rate"], ["物料制作", ""]],
        "promo_sections": [["活动主视觉", "ctr"], ["会场页面", "pay_conversion_rate"], ["活动物料", ""]],
    },
    "customer_service": {
        "name": "客服",
        "sections": [
            ["投诉处理", "complaint_rate"],
            ["客户回访", "refund_rate"],
            ["话术优化", "inquiry_conversion_rate"],
        ],
        "promo_sections": [],
    },
    "warehouse": {
        "name": "仓储",
        "sections": [["库存周转", "inventory_turnover_days"], ["发货时效", "ship_within_24h_rate"]],
        "promo_sections": [],
    },
}

COMPLAINT_CAUSES = ("物流延迟", "产品质量", "描述不符", "服务态度", "其他")
ID_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")  # a team file id: teams, people, templates, …
_MD = re.compile(r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")
TIME_PATTERN = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class TeamFileError(Exception):
    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class ApplyReport:
    changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


TemplateValidator = Callable[[Mapping[str, Any], set[str]], list[str]]


def _default_template_problems(entry: Mapping[str, Any], kpi_keys: set[str]) -> list[str]:
    """Weights name known KPIs and sum to 100 (the appraisal engine checks the rest)."""
    where = f"templates ({entry.get('id')})"
    weights = entry.get("weights")
    if not isinstance(weights, Mapping) or not weights:
        return [f"{where}.weights: required, e.g. {{ conversion_rate = 60, ctr = 40 }}"]
    problems = [f"{where}.weights.{k}: no KPI with key {k!r}" for k in weights if k not in kpi_keys]
    try:
        total = sum(float(v) for v in weights.values())
    except (TypeError, ValueError):
        return [*problems, f"{where}.weights: every weight must be a number"]
    if abs(total - 100) > 1e-9:
        problems.append(f"{where}.weights: must sum to 100 (they sum to {total:g})")
    return problems


def _template_validator() -> TemplateValidator:
    try:
        from appraisal.templates import validate  # the engine's full check, when present

        return validate
    except ImportError:  # pragma: no cover - the engine ships with the package
        return _default_template_problems


def parse(data: Mapping[str, Any], resolve_secret: Callable[[str, str], str] | None = None) -> dict[str, Any]:
    """Validate a parsed team file; return it normalised or raise TeamFileError with every problem."""
    problems: list[str] = []
    known = {"teams", "people", "kpis", "templates", "periods", "scenarios", "calendar", "roles"}
    for key in data:
        if key not in known:
            problems.append(f"{key}: unknown table (expected {', '.join(sorted(known))})")

    def entries(table: str, key: str = "id") -> list[tuple[str, Mapping[str, Any]]]:
        out: list[tuple[str, Mapping[str, Any]]] = []
        seen: set[str] = set()
        raw = data.get(table, [])
        if not isinstance(raw, list):
            problems.append(f"{table}: expected [[{table}]] entries")
            return out
        for n, entry in enumerate(raw, start=1):
            ident = entry.get(key) if isinstance(entry, Mapping) else None
            if not isinstance(ident, str) or not ID_PATTERN.match(ident):
                problems.append(f"{table}[{n}].{key}: required, letters/digits/_-. only (got {ident!r})")
                continue
            if ident in seen:
                problems.append(f"{table} ({ident}).{key}: duplicate")
                continue
            seen.add(ident)
            out.append((ident, entry))
        return out

    roles = {**{k: dict(v) for k, v in BUILTIN_ROLES.items()}}
    for rid, entry in entries("roles"):
        sections = entry.get("sections", [])
        if not isinstance(sections, list) or not all(isinstance(s, str | list) for s in sections):
            problems.append(f"roles ({rid}).sections: expected a list of section names")
            sections = []
        promo = entry.get("promo_sections", [])
        roles[rid] = {
            "name": str(entry.get("name", rid)),
            "sections": [[s, ""] if isinstance(s, str) else list(s)[:2] for s in sections],
            "promo_sections": [[s, ""] if isinstance(s, str) else list(s)[:2] for s in promo if s],
        }

    kpis: dict[str, dict[str, Any]] = {}
    for key, entry in entries("kpis", "key"):
        where = f"kpis ({key})"
        kind = entry.get("kind", "metric")
        direction = entry.get("direction", "up")
        if kind not in ("metric", "rating", "checklist"):
            problems.append(f"{where}.kind: {kind!r} is not one of metric, rating, checklist")
        if direction not in ("up", "down"):
            problems.append(f"{where}.direction: {direction!r} is not up or down")
        if not entry.get("name"):
            problems.append(f"{where}.name: required (what people read, e.g. 支付转化率)")
        if kind == "metric" and not entry.get("metric"):
            problems.append(
                f"{where}.metric: required for a metric KPI (a metric key such as pay_conversion_rate)"
            )
        metric, scope = metric_alias(entry.get("metric"), entry.get("scope"))
        kpis[key] = {
            "name": str(entry.get("name", key)),
            "unit": str(entry.get("unit", "")),
            "direction": direction,
            "metric": metric if kind == "metric" else None,
            "kind": kind,
            "scope": str(scope or "shop"),
        }

    people_entries = entries("people")
    person_ids = {pid for pid, _ in people_entries}
    teams: dict[str, dict[str, Any]] = {}
    for tid, entry in entries("teams"):
        where = f"teams ({tid})"
        leader = entry.get("leader")
        if leader is not None and leader not in person_ids:
            problems.append(f"{where}.leader: no person with id {leader!r}")
        chat = entry.get("chat", {})
        if not isinstance(chat, Mapping):
            problems.append(f"{where}.chat: expected {{ bot = …, chat_id = … }}")
            chat = {}
        webhook = secret = None
        for name in ("webhook", "secret"):
            if name in chat and resolve_secret is not None:
                try:
                    value = resolve_secret(str(chat[name]), f"{where}.chat.{name}")
                except ValueError as exc:
                    problems.append(str(exc))
                    value = None
                if name == "webhook":
                    webhook = value
                else:
                    secret = value
        if not isinstance(chat.get("allow_private", False), bool):
            problems.append(f"{where}.chat.allow_private: expected true or false")
        elif webhook and chat.get("allow_private", False) is not True:
            refusal = literal_refusal(webhook)  # a name that only DNS can judge is checked at send time
            if refusal:
                problems.append(f"{where}.chat.webhook: {refusal}")
        team_kpis = entry.get("kpis")
        if team_kpis is not None:
            for k in team_kpis:
                if k not in kpis:
                    problems.append(f"{where}.kpis: no KPI with key {k!r}")
        margin = entry.get("lag_margin", 20)
        if not isinstance(margin, int) or not 0 <= margin <= 100:
            problems.append(f"{where}.lag_margin: expected percentage points 0–100")
        times = {}
        for name, default in (("plan_time", "10:00"), ("plan_deadline", "14:00")):
            value = str(entry.get(name, default))
            if not TIME_PATTERN.match(value):
                problems.append(f"{where}.{name}: expected HH:MM, got {value!r}")
            times[name] = value
        teams[tid] = {
            "name": str(entry.get("name", tid)),
            "leader": leader,
            "chat_bot": chat.get("bot"),
            "chat_id": chat.get("chat_id"),
            "webhook": webhook,
            "webhook_secret": secret,
            "webhook_allow_private": chat.get("allow_private", False),
            "timezone": str(entry.get("timezone", "Asia/Shanghai")),
            "lag_margin": margin if isinstance(margin, int) else 20,
            "kpis": list(team_kpis) if team_kpis is not None else None,
            "plan_day_time": times["plan_time"],
            "plan_deadline_time": times["plan_deadline"],
        }

    people: dict[str, dict[str, Any]] = {}
    taken: dict[tuple[str, str], str] = {}
    for pid, entry in people_entries:
        where = f"people ({pid})"
        team = entry.get("team")
        if team not in teams:
            problems.append(f"{where}.team: no team with id {team!r}")
        role = entry.get("role", "operations")
        if role not in roles:
            problems.append(
                f"{where}.role: {role!r} is not a built-in role ({', '.join(BUILTIN_ROLES)}) or a [[roles]] id"
            )
        ptype = entry.get("type", "veteran")
        if ptype not in ("new", "veteran"):
            problems.append(f"{where}.type: {ptype!r} is not new or veteran")
        hire = entry.get("hire_date")
        if hire is not None and not isinstance(hire, date):
            problems.append(f"{where}.hire_date: expected a date such as 2026-09-01")
        ids = entry.get("ids", {})
        if not isinstance(ids, Mapping):
            problems.append(f'{where}.ids: expected {{ bot-id = "platform user id" }}')
            ids = {}
        for bot, ext in ids.items():
            if not isinstance(ext, str) or not ext:
                problems.append(f"{where}.ids.{bot}: expected the person's user id on that bot")
                continue
            other = taken.get((bot, ext))
            if other:
                problems.append(f"{where}.ids.{bot}: {ext!r} is already {other}'s id")
            taken[(bot, ext)] = pid
        if not entry.get("name"):
            problems.append(f"{where}.name: required")
        people[pid] = {
            "name": str(entry.get("name", pid)),
            "team": team,
            "role": role,
            "type": ptype,
            "hire_date": hire if isinstance(hire, date) else None,
            "ids": {str(k): str(v) for k, v in ids.items() if isinstance(v, str) and v},
        }

    periods: dict[str, dict[str, Any]] = {}
    for pid, entry in entries("periods"):
        where = f"periods ({pid})"
        start, end = str(entry.get("from", "")), str(entry.get("to", ""))
        for name, value in (("from", start), ("to", end)):
            if not _MD.match(value):
                problems.append(f"{where}.{name}: expected month-day such as 10-20, got {value!r}")
        periods[pid] = {"name": str(entry.get("name", pid)), "start_md": start, "end_md": end}

    scenarios: dict[str, dict[str, Any]] = {}
    for sid, entry in entries("scenarios"):
        scenarios[sid] = {"name": str(entry.get("name", sid)), "active": entry.get("active")}

    validate_template = _template_validator()
    templates: dict[str, dict[str, Any]] = {}
    for tid, entry in entries("templates"):
        where = f"templates ({tid})"
        problems.extend(validate_template(entry, set(kpis)))
        if entry.get("role") is not None and entry.get("role") not in roles:
            problems.append(f"{where}.role: {entry.get('role')!r} is not a known role")
        if entry.get("scenario") is not None and entry.get("scenario") not in scenarios:
            problems.append(f"{where}.scenario: no [[scenarios]] entry {entry.get('scenario')!r}")
        if entry.get("employee_type") not in (None, "new", "veteran"):
            problems.append(f"{where}.employee_type: expected new or veteran")
        spec = {
            k: v
            for k, v in entry.items()
            if k not in ("id", "name", "role", "period", "scenario", "employee_type")
        }
        templates[tid] = {
            "name": str(entry.get("name", "")),
            "role": entry.get("role"),
            "period": entry.get("period"),
            "scenario": entry.get("scenario"),
            "employee_type": entry.get("employee_type"),
            "spec": _jsonable(spec),
        }

    calendar: dict[date, dict[str, Any]] = {}
    for n, entry in enumerate(data.get("calendar", []), start=1):
        day = entry.get("date")
        if isinstance(day, str):  # the quoted form CONTRACT.md shows: "2026-12-05"
            try:
                day = date.fromisoformat(day.strip())
            except ValueError:
                day = None
        if not isinstance(day, date) or isinstance(day, datetime):
            problems.append(f"calendar[{n}].date: expected a date such as 2027-02-06")
            continue
        if not isinstance(entry.get("workday"), bool):
            problems.append(f"calendar ({day}).workday: expected true or false")
            continue
        calendar[day] = {"workday": entry["workday"], "name": str(entry.get("name", ""))}

    if problems:
        raise TeamFileError(problems)
    return {
        "roles": roles,
        "kpis": kpis,
        "teams": teams,
        "people": people,
        "periods": periods,
        "scenarios": scenarios,
        "templates": templates,
        "calendar": calendar,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def _sync(row: Any, values: Mapping[str, Any], label: str, report: ApplyReport) -> None:
    changed = [f"{k}: {getattr(row, k)!r} → {v!r}" for k, v in values.items() if getattr(row, k) != v]
    for key, value in values.items():
        setattr(row, key, value)
    if changed:
        report.changes.append(f"~ {label}: " + "; ".join(c for c in changed if "_enc" not in c))


def _by_key(session: Session, model: Any) -> dict[Any, Any]:
    """Every row of ``model`` by its (single-column) primary key."""
    (key,) = sa_inspect(model).primary_key
    return {getattr(row, key.name): row for row in session.scalars(select(model))}


def apply(
    session: Session,
    spec: Mapping[str, Any],
    *,
    now: datetime,
    actor: str = "admin",
    seal: Callable[[str], str] | None = None,
    open_sealed: Callable[[str], str] | None = None,
    bots: set[str] | None = None,
) -> ApplyReport:
    """Upsert a parsed team file. Same file twice → no changes. Caller owns the transaction."""
    report = ApplyReport()
    # every row apply may touch, read once per table: the upserts below then need no query each
    stored = {
        model: _by_key(session, model)
        for model in (Role, Kpi, Team, Person, Period, Scenario, Template, CalendarDay)
    }

    def upsert(model: Any, key: Any, values: Mapping[str, Any], label: str) -> Any:
        row = stored[model].get(key)
        if row is None:
            row = model(**values)
            session.add(row)
            stored[model][key] = row
            report.changes.append(f"+ {label}")
        else:
            _sync(row, values, label, report)
        return row

    for rid, r in spec["roles"].items():
        upsert(
            Role,
            rid,
            {"id": rid, "name": r["name"], "sections": r["sections"], "promo_sections": r["promo_sections"]},
            f"role {rid}",
        )
    for key, k in spec["kpis"].items():
        upsert(Kpi, key, {"key": key, **k}, f"kpi {key}")
    session.flush()

    for tid, t in spec["teams"].items():
        if bots is not None and t["chat_bot"] and t["chat_bot"] not in bots:
            report.warnings.append(f"teams ({tid}).chat.bot: no bot {t['chat_bot']!r} in planloop.toml yet")
        row = stored[Team].get(tid)
        values: dict[str, Any] = {
            "id": tid,
            "name": t["name"],
            "leader_id": None,  # set after people exist (foreign key order)
            "chat_bot": t["chat_bot"],
            "chat_id": t["chat_id"],
            "timezone": t["timezone"],
            "lag_margin": t["lag_margin"],
            "kpi_keys": t["kpis"],
            "plan_day_time": t["plan_day_time"],
            "plan_deadline_time": t["plan_deadline_time"],
            "webhook_allow_private": t["webhook_allow_private"] is True,
            "active": True,
        }
        if row is not None:
            values["leader_id"] = row.leader_id
        row = upsert(Team, tid, values, f"team {tid}")
        for attr, plain in (("webhook_enc", t["webhook"]), ("webhook_secret_enc", t["webhook_secret"])):
            current = getattr(row, attr)
            now_plain = open_sealed(current) if (current and open_sealed) else None
            if plain is None and current is not None:
                setattr(row, attr, None)
                report.changes.append(f"~ team {tid}: {attr.removesuffix('_enc')} removed")
            elif plain is not None and now_plain != plain:
                if seal is None:
                    raise TeamFileError(
                        [f"teams ({tid}).chat: server.secret_key is needed to store webhook secrets"]
                    )
                setattr(row, attr, seal(plain))
                report.changes.append(f"~ team {tid}: {attr.removesuffix('_enc')} set")
    session.flush()

    for pid, p in spec["people"].items():
        upsert(
            Person,
            pid,
            {
                "id": pid,
                "name": p["name"],
                "team_id": p["team"],
                "role": p["role"],
                "type": p["type"],
                "hire_date": p["hire_date"],
                "active": True,
            },
            f"person {pid}",
        )
    session.flush()
    wanted = {(bot, ext): pid for pid, p in spec["people"].items() for bot, ext in p["ids"].items()}
    # The simulator knows every person by their person id.
    wanted.update({("sim", pid): pid for pid in spec["people"]})
    existing = {(i.bot_id, i.external_id): i for i in session.scalars(select(Identity))}
    on_bot = {(i.bot_id, i.person_id): i for i in existing.values()}  # one id per person per bot
    listed = set(spec["people"])
    for key, ident in existing.items():
        if ident.person_id not in listed and key not in wanted:
            continue  # a removed person keeps their ids: deactivated, their history still maps
        if key not in wanted or wanted[key] != ident.person_id:
            session.delete(ident)
            on_bot.pop((ident.bot_id, ident.person_id), None)
            if key[0] != "sim":
                report.changes.append(f"- id {key[1]} on {key[0]} ({ident.person_id})")
    session.flush()
    for (bot, ext), pid in wanted.items():
        current = existing.get((bot, ext))
        if current is None or current.person_id != pid:
            # one id per person per bot: drop the person's old id on that bot first
            old = on_bot.pop((bot, pid), None)
            if old is not None:
                session.delete(old)
                session.flush()
            on_bot[(bot, pid)] = Identity(bot_id=bot, external_id=ext, person_id=pid)
            session.add(on_bot[(bot, pid)])
            if bot != "sim":
                report.changes.append(f"+ id {ext} on {bot} ({pid})")
    for person in sorted(stored[Person].values(), key=lambda p: p.id):
        if not person.active or person.id in spec["people"]:
            continue
        if person.added_from:  # added in the console: the database, not this file, is their record
            report.warnings.append(
                f"person {person.id}: not in this file, kept (added from the {person.added_from})"
            )
            continue
        person.active = False
        report.changes.append(f"- person {person.id} (deactivated, history kept)")
    for tid, t in spec["teams"].items():
        team = stored[Team][tid]
        if team.leader_id != t["leader"]:
            report.changes.append(f"~ team {tid}: leader {team.leader_id!r} → {t['leader']!r}")
            team.leader_id = t["leader"]
    # a team the file lacks keeps going while someone kept above (added in the console) is in it
    kept_teams = {p.team_id for p in stored[Person].values() if p.active and p.id not in spec["people"]}
    for team in stored[Team].values():
        if team.active and team.id not in spec["teams"]:
            if team.id in kept_teams:
                report.warnings.append(
                    f"team {team.id}: not in this file, kept (people added in the console are in it)"
                )
                continue
            team.active = False
            report.changes.append(f"- team {team.id} (deactivated)")

    for pid, p in spec["periods"].items():
        upsert(Period, pid, {"id": pid, **p}, f"period {pid}")
    for sid, s in spec["scenarios"].items():
        known = stored[Scenario].get(sid)
        values = {"id": sid, "name": s["name"]}
        if s["active"] is not None or known is None:
            values["active"] = bool(s["active"])  # absent: keep what an admin switched in chat
        upsert(Scenario, sid, values, f"scenario {sid}")
    for tid, t in spec["templates"].items():
        upsert(Template, tid, {"id": tid, **t, "active": True}, f"template {tid}")
    session.flush()
    for tid in spec["templates"]:
        # each edit is a new version (issue 16)
        record_template_version(session, stored[Template][tid], now, f"planloop apply ({actor})")
    for template in stored[Template].values():
        if template.active and template.id not in spec["templates"]:
            template.active = False
            report.changes.append(f"- template {template.id} (retired)")
    for day, c in spec["calendar"].items():
        upsert(CalendarDay, day, {"day": day, **c}, f"calendar {day}")

    if report.changes:
        session.add(
            AuditLog(
                at=now,
                actor=actor,
                action="team.apply",
                subject="team file",
                detail={"changes": report.changes[:500], "count": len(report.changes)},
            )
        )
    session.flush()
    return report


def known_roles(session: Session) -> set[str]:
    """Every role a person may have: the built-in ones and those a team file or the console added."""
    return set(BUILTIN_ROLES) | set(session.scalars(select(Role.id)))


def team_kpis(session: Session, team: Team) -> list[Kpi]:
    """The KPIs a team plans against (all KPIs unless the team file narrowed them)."""
    query = select(Kpi).order_by(Kpi.key)
    if team.kpi_keys is not None:
        query = query.where(Kpi.key.in_(team.kpi_keys))
    return list(session.scalars(query))
