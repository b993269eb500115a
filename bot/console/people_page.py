"""The console's People page (admin): teams, people from the platform's directory, leavers, and a
starter set of KPIs and templates, so a team is set up from an empty database without a file.

- **Pull** reads a bot's directory (bot/platforms/directory.py) and stores it
  (handlers/directory.record_pull); the nightly ``directory-sync`` job does the same.
- **Add** turns the picked newcomers into people (handlers/directory.add_people), all or none.
- **Deactivate** confirms a leaver (handlers/directory.deactivate): inactive, history kept.
- **New team** and **leader** write a team row, **a person's team, role and type** change a person
  (handlers/team_edits.py), as a team file would; **a KPI** is saved by handlers/catalog_edits.put_kpi,
  the open API's own write, with the team file's checks.
- **Starter catalogue** loads the KPIs, periods, scenarios and templates of examples/team.toml that
  the database does not have yet (handlers/team_edits.load_catalogue).
Every action is audited with the signed-in admin's person id.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from bot.console.render import page
from bot.console.texts import texts
from bot.console.web import Current, Refusal, back_to, check_post, current, field, nav, shown_error, to_login
from bot.platforms.directory import directory_bots
from bot.services import Services
from handlers import team_edits
from handlers.directory import (
    Choice,
    DirectoryChoiceError,
    add_people,
    deactivate,
    leavers,
    newcomers,
)
from handlers.setup import known_roles
from storage.db import transaction
from storage.models import CalendarDay, DirectoryMember, Kpi, Period, Person, Scenario, Team

ACTION = "people"  # every action of this page (roles.ACTIONS): admins only
MAX_PICKS = 500  # newcomers added in one submit
BANNERS = {
    "pulled": "通讯录已拉取。",
    "added": "已添加所选人员。",
    "deactivated": "已停用，历史记录保留。",
    "team_saved": "团队已保存。",
    "person_saved": "人员已保存。",
    "kpi_saved": "KPI 已保存。",
    "period_saved": "大促期间已保存。",
    "scenario_saved": "场景已保存。",
    "calendar_saved": "工作日历已保存。",
    "catalogue": "已载入推荐的 KPI 和考核模板。",
}


def add_routes(bp: Blueprint, services: Services) -> None:
    locale = services.settings.locale
    t = texts(locale)

    def back(found: Current, *, done: str = "", error: str = "") -> Response:
        return back_to("console.people", found, done=done, error=error)

    def admin_post(session: Any) -> Current:
        found = check_post(services, session)
        if not found.viewer.may(ACTION):
            raise Refusal(403, "action_denied")
        return found

    @bp.get("/people")
    def people() -> Response:
        with services.sessions() as session:
            found = current(services, session)
            if found is None:
                return to_login()
            if not found.viewer.may_open("people"):
                raise Refusal(403, "page_denied")
            teams = list(session.scalars(select(Team).where(Team.active.is_(True)).order_by(Team.id)))
            everyone = list(
                session.scalars(
                    select(Person).where(Person.active.is_(True)).order_by(Person.team_id, Person.id)
                )
            )
            pulls = dict(
                session.execute(select(DirectoryMember.bot_id, func.max(DirectoryMember.seen_at)).group_by(DirectoryMember.bot_id)).all()
            )  # fmt: skip
            roles = sorted(known_roles(session))
            kpis = list(session.scalars(select(Kpi).order_by(Kpi.key)))
            periods = list(session.scalars(select(Period).order_by(Period.start_md)))
            scenarios = list(session.scalars(select(Scenario).order_by(Scenario.id)))
            calendar = list(session.scalars(select(CalendarDay).order_by(CalendarDay.day)))
            values: dict[str, Any] = {
                "teams": teams, "everyone": everyone, "roles": roles, "kpis": kpis, "no_kpis": not kpis,
                "periods": periods, "scenarios": scenarios, "calendar": calendar,
                "newcomers": newcomers(session), "leavers": leavers(session),
                "bots": [(b, pulls[b].astimezone(services.settings.tz).strftime("%Y-%m-%d %H:%M") if b in pulls else "")
                         for b in directory_bots(services.settings.bots)],
                "chat_bots": [b.id for b in services.settings.bots],
            }  # fmt: skip
        error = shown_error(found)
        banner = BANNERS.get(request.args.get("done", ""), "")
        return page(
            "people.html", locale=locale, title=t["people"], here="people", viewer=found.viewer,
            csrf=found.signed.csrf, banner=error or banner, banner_error=bool(error), **nav(found.viewer), **values,
        )  # fmt: skip

    @bp.post("/people/pull")
    def directory_pull() -> Response:
        from bot.platforms.directory import DirectoryError
        from bot.worker.jobs import pull_directory

        with services.sessions() as session:
            found = admin_post(session)
        bot_id = field("bot")
        if bot_id not in directory_bots(services.settings.bots):
            return back(found, error=f"没有可拉取通讯录的机器人 {bot_id[:64]}")
        try:
            pull_directory(services, bot_id, services.clock(), found.viewer.person_id)
        except DirectoryError as exc:
            return back(found, error=exc.text)
        return back(found, done="pulled")

    @bp.post("/people/add")
    def add() -> Response:
        picks = request.form.getlist("pick")[:MAX_PICKS]
        with transaction(services.sessions) as session:
            found = admin_post(session)
            choices = []
            for n in picks:
                choices.append(
                    Choice(field(f"bot_{n}"), field(f"ext_{n}"), field(f"person_{n}"), field(f"name_{n}"),
                           field(f"team_{n}"), field(f"role_{n}"), field(f"type_{n}") or "veteran")
                )  # fmt: skip
            if not choices:
                return back(found, error="没有勾选要添加的人")
            try:
                add_people(session, choices, by=found.viewer.person_id, now=services.clock())
            except DirectoryChoiceError as exc:
                session.rollback()
                return back(found, error=str(exc))
        return back(found, done="added")

    @bp.post("/people/deactivate")
    def deactivate_person() -> Response:
        with transaction(services.sessions) as session:
            found = admin_post(session)
            person_id = field("person")
            if person_id == found.viewer.person_id:
                return back(found, error="不能停用自己")
            reason = field("reason")[:200] or "控制台确认离职"
            if (
                deactivate(session, person_id, by=found.viewer.person_id, now=services.clock(), reason=reason)
                is None
            ):
                return back(found, error=f"没有在职的人员 {person_id[:64]}")
        return back(found, done="deactivated")

    def save_entry(save: Any, entry: dict[str, Any], done: str) -> Response:
        with transaction(services.sessions) as session:
            found = admin_post(session)
            try:
                save(session, entry, by=found.viewer.person_id, now=services.clock())
            except team_edits.TeamEditError as exc:
                session.rollback()
                return back(found, error=str(exc))
        return back(found, done=done)

    @bp.post("/people/team")
    def save_team() -> Response:
        entry: dict[str, Any] = {"id": field("id"), "name": field("name"), "leader": field("leader") or None}
        entry |= {name: field(name) for name in ("timezone", "plan_time", "plan_deadline", "lag_margin")}
        chat_bot, chat_id = field("chat_bot"), field("chat_id")
        if chat_bot or chat_id:
            entry["chat"] = {"bot": chat_bot, "chat_id": chat_id}
        return save_entry(team_edits.save_team, entry, "team_saved")

    @bp.post("/people/person")
    def save_person() -> Response:
        entry = {name: field(name) for name in ("person", "team", "role", "type")}
        return save_entry(team_edits.save_person, entry, "person_saved")

    @bp.post("/people/kpi")
    def save_kpi() -> Response:
        from handlers.catalog_edits import TeamFileError, put_kpi

        with transaction(services.sessions) as session:
            found = admin_post(session)
            key = field("key")
            entry = {name: field(name) for name in ("name", "unit", "direction", "kind", "metric", "scope")}
            entry = {name: value for name, value in entry.items() if value}
            try:
                put_kpi(
                    session, key, entry, actor=found.viewer.person_id, now=services.clock(), via="console"
                )
            except TeamFileError as exc:
                session.rollback()
                return back(found, error="；".join(exc.problems))
        return back(found, done="kpi_saved")

    @bp.post("/people/period")
    def save_period() -> Response:
        entry = {"id": field("id"), "name": field("name"), "from": field("from"), "to": field("to")}
        return save_entry(team_edits.save_period, entry, "period_saved")

    @bp.post("/people/scenario")
    def save_scenario() -> Response:
        return save_entry(
            team_edits.save_scenario, {"id": field("id"), "name": field("name")}, "scenario_saved"
        )

    @bp.post("/people/calendar")
    def save_calendar() -> Response:
        entry = {"date": field("date"), "workday": field("workday") == "1", "name": field("name")}
        return save_entry(team_edits.save_calendar_day, entry, "calendar_saved")

    @bp.post("/people/catalogue")
    def catalogue() -> Response:
        import tomllib

        from handlers.setup import parse

        with transaction(services.sessions) as session:
            found = admin_post(session)
            try:
                spec = parse(tomllib.loads(team_edits.example_team_file().read_text(encoding="utf-8")))
            except FileNotFoundError:
                return back(
                    found, error="找不到 examples/team.toml：请在 planloop 的安装目录（或镜像的 /app）运行"
                )
            team_edits.load_catalogue(session, spec, by=found.viewer.person_id, now=services.clock())
        return back(found, done="catalogue")
