"""The People page's actions through the app (tests/test_console_people_browser.py drives it in
Chromium): each refusal said in the banner with nothing written, each change audited."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import func, select

from bot.config import Secret, Settings
from storage.models import AuditLog, Kpi, Person, Team, Template
from tests.conftest import TEST_KEY
from tests.test_console import sign_in

ADMIN = "chenjing"


@pytest.fixture
def settings() -> Settings:
    return Settings(
        database_url="sqlite://", simulator=True, secret_keys=(Secret(TEST_KEY),),
        public_url="http://planloop.test", extra={"admins": [ADMIN]},
    )  # fmt: skip


def _post(client, services, path: str, form: dict) -> str:  # noqa: ANN001
    """POST as the admin; the page it lands on (the banner says what happened)."""
    csrf = sign_in(client, services, ADMIN)
    res = client.post(path, data={**form, "_csrf": csrf})
    assert res.status_code == 303
    return html.unescape(client.get(res.headers["Location"]).get_data(as_text=True))


@pytest.mark.parametrize(
    "form, said",
    [
        ({"id": "cs 2", "name": "客服二组"}, "团队 ID 只能用字母、数字和 _-.，最长 64 个字符"),
        ({"id": "cs2", "name": ""}, "请填写团队名称（最长 200 字）"),
        ({"id": "cs2", "name": "客服二组", "leader": "nobody"}, "负责人 nobody 不是在职人员"),
        ({"id": "cs2", "name": "客服二组", "chat_bot": "feishu-main"}, "群聊需要同时填写机器人和群 ID"),
    ],
)
def test_a_team_the_form_cannot_save_is_said_and_not_written(client, services, demo_team, form, said):  # noqa: ANN001
    page = _post(client, services, "/console/people/team", form)
    assert said in page
    with services.sessions() as session:
        assert session.get(Team, "cs2") is None


def test_a_new_team_then_its_leader(client, services, demo_team):  # noqa: ANN001
    assert "团队已保存" in _post(client, services, "/console/people/team", {"id": "cs2", "name": "客服二组"})
    form = {
        "id": "cs2",
        "name": "客服二组",
        "leader": "wangfang",
        "chat_bot": "feishu-main",
        "chat_id": "oc_cs2",
    }
    assert "团队已保存" in _post(client, services, "/console/people/team", form)
    with services.sessions() as session:
        team = session.get(Team, "cs2")
        audits = list(
            session.scalars(select(AuditLog).where(AuditLog.subject == "cs2").order_by(AuditLog.id))
        )
    assert (team.name, team.leader_id, team.chat_bot, team.chat_id, team.timezone) == (
        "客服二组", "wangfang", "feishu-main", "oc_cs2", "Asia/Shanghai",
    )  # fmt: skip
    assert [a.action for a in audits] == ["team.create", "team.edit"]
    assert audits[1].detail["before"]["leader"] is None and audits[1].detail["after"]["leader"] == "wangfang"


@pytest.mark.parametrize(
    "form, said, expected",
    [
        ({"person": "lilei", "team": "service", "role": "customer_service", "type": "new"}, "人员已保存",
         ("service", "customer_service", "new")),
        ({"person": "lilei", "team": "nope", "role": "operations", "type": "veteran"}, "请选择一个团队",
         ("ops", "operations", "veteran")),
        ({"person": "lilei", "team": "ops", "role": "pilot", "type": "veteran"}, "岗位 pilot 不存在",
         ("ops", "operations", "veteran")),
        ({"person": "nobody", "team": "ops", "role": "operations", "type": "veteran"}, "没有在职的人员 nobody",
         ("ops", "operations", "veteran")),
    ],
)  # fmt: skip
def test_moving_a_person(client, services, demo_team, form, said, expected):  # noqa: ANN001
    assert said in _post(client, services, "/console/people/person", form)
    with services.sessions() as session:
        lilei = session.get(Person, "lilei")
        assert (lilei.team_id, lilei.role, lilei.type) == expected


@pytest.mark.parametrize(
    "form, said",
    [
        ({"key": "gmv", "name": "成交额", "unit": "元", "metric": "pay_amount"}, "KPI 已保存"),
        ({"key": "gmv", "name": "", "metric": "pay_amount"}, "kpis (gmv).name: required"),
        ({"key": "gmv", "name": "成交额", "kind": "metric"}, "kpis (gmv).metric: required for a metric KPI"),
        ({"key": "gmv", "name": "成交额", "metric": "pay_amount", "direction": "sideways"},
         "kpis (gmv).direction: 'sideways' is not up or down"),
        ({"key": "bad key", "name": "成交额", "metric": "pay_amount"}, "key: required, letters/digits/_-. only (got 'bad key')"),
    ],
)  # fmt: skip
def test_a_kpi_is_saved_with_the_team_files_checks(client, services, demo_team, form, said):  # noqa: ANN001
    page = _post(client, services, "/console/people/kpi", form)
    assert said in page
    with services.sessions() as session:
        saved = session.get(Kpi, form["key"])
        audit = session.scalar(select(AuditLog).where(AuditLog.action == "console.kpi.put"))
    if said == "KPI 已保存":
        assert (saved.name, saved.unit, saved.metric, saved.direction) == ("成交额", "元", "pay_amount", "up")
        assert audit.actor == ADMIN
    else:
        assert saved is None and audit is None


def test_the_starter_catalogue_fills_an_empty_catalogue_and_never_overwrites(client, services, db, clock):  # noqa: ANN001
    from storage.models import Identity

    with db() as session, session.begin():  # the first admin alone, as `console link --name` makes them
        session.add(Team(id="ops", name="运营组", timezone="Asia/Shanghai", lag_margin=20,
                         plan_day_time="10:00", plan_deadline_time="14:00", active=True))  # fmt: skip
        session.flush()
        session.add(
            Person(id=ADMIN, name="陈静", team_id="ops", role="operations", type="veteran", active=True)
        )
        session.flush()
        session.add(Identity(bot_id="sim", external_id=ADMIN, person_id=ADMIN))
    assert "载入推荐的 KPI 和模板" in _post(
        client, services, "/console/people/team", {"id": "ops", "name": "运营组"}
    )
    page = _post(client, services, "/console/people/catalogue", {})
    assert "已载入推荐的 KPI 和考核模板" in page and "载入推荐的 KPI 和模板" not in page
    with services.sessions() as session:
        kpis = session.scalar(select(func.count()).select_from(Kpi))
        session.get(Kpi, "ctr").name = "改过的名字"
        session.commit()
        templates = session.scalar(select(func.count()).select_from(Template))
    assert kpis == 15 and templates == 8  # examples/team.toml's
    _post(client, services, "/console/people/catalogue", {})
    with services.sessions() as session:
        assert session.get(Kpi, "ctr").name == "改过的名字"
        loads = session.scalars(select(AuditLog).where(AuditLog.action == "catalogue.load")).all()
    assert len(loads) == 1 and loads[0].detail["kpis"] == 15  # the second load added nothing: no audit


def test_an_admin_cannot_deactivate_themselves(client, services, demo_team):  # noqa: ANN001
    page = _post(client, services, "/console/people/deactivate", {"person": ADMIN})
    assert "不能停用自己" in page
    with services.sessions() as session:
        assert session.get(Person, ADMIN).active


@pytest.mark.parametrize(
    "form, said, stored",
    [
        ({"id": "cny", "name": "年货节", "from": "01-05", "to": "01-25"}, "大促期间已保存", ("年货节", "01-05", "01-25")),
        ({"id": "cny", "name": "年货节", "from": "1-5", "to": "01-25"},
         "periods (cny).from: expected month-day such as 10-20, got '1-5'", None),
        ({"id": "cny", "name": "年货节", "from": "01-05", "to": "13-01"},
         "periods (cny).to: expected month-day such as 10-20, got '13-01'", None),
        ({"id": "double11", "name": "双十一", "from": "10-24", "to": "11-11"}, "大促期间已保存",
         ("双十一", "10-24", "11-11")),
    ],
)  # fmt: skip
def test_a_period_is_saved_with_the_team_files_checks(client, services, demo_team, form, said, stored):  # noqa: ANN001
    from storage.models import Period

    assert said in _post(client, services, "/console/people/period", form)
    with services.sessions() as session:
        row = session.get(Period, form["id"])
        audit = session.scalar(select(AuditLog).where(AuditLog.subject == form["id"]))
    if stored is None:
        assert row is None and audit is None
    else:
        assert (row.name, row.start_md, row.end_md) == stored
        assert audit.action == ("period.edit" if form["id"] == "double11" else "period.create")


def test_a_scenario_is_created_off_and_a_rename_keeps_it_on(client, services, demo_team):  # noqa: ANN001
    from storage.models import Scenario

    assert "场景已保存" in _post(
        client, services, "/console/people/scenario", {"id": "heatwave", "name": "高温"}
    )
    with services.sessions() as session, session.begin():
        assert session.get(Scenario, "heatwave").active is False
        session.get(Scenario, "logistics_peak").active = True
    assert "场景已保存" in _post(
        client, services, "/console/people/scenario", {"id": "logistics_peak", "name": "物流爆仓"}
    )
    with services.sessions() as session:
        renamed = session.get(Scenario, "logistics_peak")
        assert (renamed.name, renamed.active) == ("物流爆仓", True)
    assert "scenarios[1].id: required" in _post(
        client, services, "/console/people/scenario", {"id": "", "name": "x"}
    )


def test_blank_fields_keep_what_a_team_or_a_person_has(client, services, demo_team):  # noqa: ANN001
    _post(
        client,
        services,
        "/console/people/team",
        {"id": "ops", "name": "运营一组", "leader": "", "chat_bot": ""},
    )
    _post(
        client,
        services,
        "/console/people/person",
        {"person": "zhaoqiang", "team": "service", "role": "", "type": ""},
    )
    with services.sessions() as session:
        ops = session.get(Team, "ops")
        moved = session.get(Person, "zhaoqiang")
        assert (ops.name, ops.leader_id, ops.chat_bot) == ("运营一组", "zhangwei", "feishu-main")
        assert (moved.team_id, moved.role, moved.type) == ("service", "operations", "new")


@pytest.mark.parametrize(
    "settings_form, said, stored",
    [
        ({"timezone": "Asia/Urumqi", "plan_time": "09:30", "plan_deadline": "12:00", "lag_margin": "15"},
         "团队已保存", ("Asia/Urumqi", "09:30", "12:00", 15)),
        ({"timezone": "Mars/Olympus"}, "时区 Mars/Olympus 不存在", ("Asia/Shanghai", "10:00", "14:00", 20)),
        ({"plan_time": "9:30"}, "提醒写计划时间应为 HH:MM", ("Asia/Shanghai", "10:00", "14:00", 20)),
        ({"lag_margin": "120"}, "落后容差应为 0–100 之间的整数", ("Asia/Shanghai", "10:00", "14:00", 20)),
        ({}, "团队已保存", ("Asia/Shanghai", "10:00", "14:00", 20)),
    ],
)  # fmt: skip
def test_a_teams_settings_are_checked_as_the_team_file_checks_them(
    client, services, demo_team, settings_form, said, stored
):  # noqa: ANN001
    assert said in _post(
        client, services, "/console/people/team", {"id": "ops", "name": "运营设计组", **settings_form}
    )
    with services.sessions() as session:
        ops = session.get(Team, "ops")
        assert (ops.timezone, ops.plan_day_time, ops.plan_deadline_time, ops.lag_margin) == stored


@pytest.mark.parametrize(
    "form, said, stored",
    [
        ({"date": "2027-02-07", "workday": "1", "name": "春节调休"}, "工作日历已保存", (True, "春节调休")),
        ({"date": "2027-02-08", "workday": "0", "name": ""}, "工作日历已保存", (False, "")),
        (
            {"date": "2027-13-01", "workday": "1"},
            "calendar[1].date: expected a date such as 2027-02-06",
            None,
        ),
    ],
)
def test_a_calendar_day_is_saved_and_the_workday_rules_use_it(
    client, services, demo_team, form, said, stored
):  # noqa: ANN001
    from datetime import date

    from handlers.workdays import Calendar
    from storage.models import CalendarDay

    assert said in _post(client, services, "/console/people/calendar", form)
    with services.sessions() as session:
        row = session.get(CalendarDay, date.fromisoformat(form["date"])) if stored else None
        assert (None if row is None else (row.workday, row.name)) == stored
        if stored:
            assert Calendar.load(session).is_workday(date.fromisoformat(form["date"])) is stored[0]


def test_a_banner_made_elsewhere_is_not_shown(client, services, demo_team):  # noqa: ANN001
    sign_in(client, services, ADMIN)
    page = client.get("/console/people?error=管理员已批准转账&check=0123456789abcdef0123456789abcdef")
    assert page.status_code == 200 and "管理员已批准转账" not in page.get_data(as_text=True)
