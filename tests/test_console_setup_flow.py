"""Issue 22's "done when": an admin configures a team from an empty database to a first appraisal
without writing a team file, the people taken from the directory (WeCom's contacts API, the fake)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from appraisal.completion import DEFAULT_CAP
from bot.cli.commands import main
from bot.config import load
from storage.db import transaction
from storage.models import Appraisal, AuditLog, Identity, Kpi, Person, Team, Template
from tests.conftest import TEST_KEY, Sim
from tests.fakes.directory import Dept, Org, OrgPerson, serve_directory
from tests.fakes.wecom import FakeWeCom
from tests.worker_seed import sample

AES = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
ORG = [
    OrgPerson({"wecom": "LaoBan"}, "老板", []),
    OrgPerson({"wecom": "LiLei"}, "李雷", ["ops"]),
    OrgPerson({"wecom": "HanMeimei"}, "韩梅梅", ["ops"]),
    OrgPerson({"wecom": "QianQi"}, "钱七", ["ops"], status="left"),
]


@pytest.fixture
def wecom():  # noqa: ANN201
    fake = FakeWeCom()
    org = serve_directory(fake, Org(departments=[Dept("ops", "运营部")], people=list(ORG)))
    fake.start()
    yield fake, org
    fake.stop()


def _config(tmp_path: Path, engine, fake: FakeWeCom) -> Path:  # noqa: ANN001
    url = engine.url.render_as_string(hide_password=False)
    path = tmp_path / "planloop.toml"
    path.write_text(
        f'[server]\ndatabase_url = "{url}"\nsecret_key = "{TEST_KEY}"\nadmins = ["boss"]\n'
        'public_url = "http://planloop.test"\n[simulator]\nenabled = true\n'
        f'[[bots]]\nid = "wecom-main"\nplatform = "wecom"\ncorp_id = "{fake.corp_id}"\nagent_id = {fake.agent_id}\n'
        f'secret = "{fake.secret}"\ntoken = "{fake.token}"\naes_key = "{AES}"\napi_base = "{fake.url}"\n',
        encoding="utf-8",
    )
    return path


def _csrf(body: str) -> str:
    found = re.search(r'name="_csrf" value="([^"]+)"', body)
    assert found
    return found.group(1)


def _rows(body: str, prefix: str) -> dict[str, dict[str, str]]:
    """The newcomers form's hidden fields, by the row's index."""
    out: dict[str, dict[str, str]] = {}
    for name, index, value in re.findall(rf'name="({prefix})_(\d+)" value="([^"]*)"', body):
        out.setdefault(index, {})[name] = value
    return out


def test_from_an_empty_database_to_a_first_appraisal_without_a_file(tmp_path, engine, clock, wecom, capsys):
    from bot.services import build_services
    from bot.web.app import create_app

    fake, org = wecom
    path = _config(tmp_path, engine, fake)
    # 1. the first admin, on an empty database: one command prints their sign-in link
    argv = ["--config", str(path), "console", "link", "--person", "boss", "--name", "老板"]
    assert main([*argv, "--team", "ops", "--team-name", "运营组"]) == 0
    link = capsys.readouterr().out.strip()
    settings = load(path)
    services = build_services(settings, clock=clock, engine=engine)
    app = create_app(settings, services)
    client = app.test_client()
    assert client.post(link.removeprefix("http://planloop.test")).status_code == 303

    # 2. the starter catalogue: KPIs, periods, scenarios, a template per role
    people_page = client.get("/console/people").get_data(as_text=True)
    assert "还没有 KPI 和考核模板" in people_page
    csrf = _csrf(people_page)
    assert client.post("/console/people/catalogue", data={"_csrf": csrf}).status_code == 303
    # 3. the directory: everyone still at the company is proposed; 老板 links to the admin by name
    assert client.post("/console/people/pull", data={"_csrf": csrf, "bot": "wecom-main"}).status_code == 303
    body = client.get("/console/people").get_data(as_text=True)
    rows = {r["ext"]: n for n, r in _rows(body, "ext").items()}
    assert set(rows) == {"LaoBan", "LiLei", "HanMeimei"}  # 钱七 has left
    persons = {n: r["person"] for n, r in _rows(body, "person").items()}
    assert persons[rows["LaoBan"]] == "boss" and persons[rows["LiLei"]] == "lilei"
    form = {"_csrf": csrf, "pick": list(rows.values())}
    for ext, n in rows.items():
        form |= {f"bot_{n}": "wecom-main", f"ext_{n}": ext, f"person_{n}": persons[n], f"name_{n}": ext,
                 f"team_{n}": "ops", f"role_{n}": "operations", f"type_{n}": "veteran"}  # fmt: skip
    assert client.post("/console/people/add", data=form).status_code == 303
    # 4. the team's leader and chat
    team = {"_csrf": csrf, "id": "ops", "name": "运营组", "leader": "boss", "chat_bot": "", "chat_id": ""}
    assert client.post("/console/people/team", data=team).status_code == 303
    with services.sessions() as session:
        assert session.get(Team, "ops").leader_id == "boss"
        assert {p.id: p.added_from for p in session.scalars(select(Person))} == {
            "boss": "console", "lilei": "directory", "hanmeimei": "directory",
        }  # fmt: skip
        assert session.get(Identity, ("wecom-main", "LaoBan")).person_id == "boss"
        assert session.scalar(select(Kpi).where(Kpi.key == "conversion_rate")) is not None
        assert session.get(Template, "ops-default").active

    # 5. the week: plans in chat, the shop's numbers, the appraisal job
    with transaction(services.sessions) as session:  # last week's numbers: the baselines
        sample(session, "pay_conversion_rate", "2026-11-22", "3.0", at=clock())
        sample(session, "ctr", "2026-11-22", "5.0", at=clock())
    sim = Sim(client)
    for who in ("lilei", "hanmeimei"):
        (receipt,) = sim.say(who, "计划\n优化详情页首屏 支付转化率 +2%\n主图测试 详情页点击率 +1%")
        assert receipt["title"].startswith("本周计划已提交"), receipt["text"]
    with transaction(services.sessions) as session:  # Thursday's report: conversion +1.5pp, CTR +0.6pp
        sample(session, "pay_conversion_rate", "2026-11-26", "4.5", at=clock())
        sample(session, "ctr", "2026-11-26", "5.6", at=clock())
    from bot.worker.jobs import run_job

    clock.set(datetime(2026, 11, 27, 12, 0, tzinfo=UTC))  # Friday 20:00 in Shanghai
    run_job(services, "appraisal", clock())
    with services.sessions() as session:
        scored = {a.person_id: (a.template_id, a.score) for a in session.scalars(select(Appraisal))}
        actions = [a.action for a in session.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert set(scored) >= {"lilei", "hanmeimei"}
    # both items far past their +2 % targets: each capped at DEFAULT_CAP (150 %), so the score is 150
    capped = ("ops-default", DEFAULT_CAP * 100)
    assert scored["lilei"] == capped and scored["hanmeimei"] == capped
    for action in (
        "team.create",
        "person.add",
        "catalogue.load",
        "directory.pull",
        "person.link",
        "team.edit",
    ):
        assert action in actions, action
    assert org.calls[0][0] == "/cgi-bin/department/list"


def test_the_nightly_sync_reads_the_pulled_directories_again_and_flags_leavers(
    tmp_path, engine, clock, wecom
):
    from bot.services import build_services
    from bot.worker.jobs import run_job
    from handlers.directory import Member, leavers, newcomers, record_pull

    fake, org = wecom
    services = build_services(load(_config(tmp_path, engine, fake)), clock=clock, engine=engine)
    assert run_job(services, "directory-sync", clock()).status == "skipped"  # nobody pulled one yet
    with transaction(services.sessions) as session:
        session.add(Team(id="ops", name="运营组", timezone="Asia/Shanghai", lag_margin=20,
                         plan_day_time="10:00", plan_deadline_time="14:00", active=True))  # fmt: skip
        session.add(
            Person(id="lilei", name="李雷", team_id="ops", role="operations", type="veteran", active=True)
        )
        session.flush()
        session.add(Identity(bot_id="wecom-main", external_id="LiLei", person_id="lilei"))
        record_pull(session, "wecom-main", [Member("LiLei", "李雷", ("运营部",), True)], clock(), "boss")
    org.people = [p for p in org.people if p.name != "李雷"]  # 李雷 leaves the company overnight
    clock.advance(days=1)
    result = run_job(services, "directory-sync", clock())
    assert result.status == "done"
    # 老板, 韩梅梅 and 钱七 (listed by WeCom as status 5, left: no newcomer)
    assert result.detail["wecom-main"] == {"listed": 3, "newcomers": 2, "leavers": 1}
    with services.sessions() as session:
        assert [(lv.person_id, lv.why) for lv in leavers(session)] == [("lilei", "gone")]
        assert {n.name for n in newcomers(session)} == {"老板", "韩梅梅"}
        assert session.get(Person, "lilei").active  # flagged only: an admin confirms
    org.denied = True  # the app lost its contacts permission: said, not raised
    clock.advance(days=1)
    failed = run_job(services, "directory-sync", clock())
    assert failed.status == "failed" and "60011" in failed.detail["wecom-main"]["error"]


@pytest.mark.parametrize(
    "person, team, said",
    [
        ("stranger", "ops", "stranger 不在 planloop.toml 的 [server] admins 里"),
        ("boss", "运营", "--person 和 --team 只能用字母、数字和 _-."),
    ],
)
def test_only_an_admin_with_plain_ids_is_made_by_console_link(
    tmp_path, engine, wecom, capsys, person, team, said
):
    config = _config(tmp_path, engine, wecom[0])  # admins = ["boss"]
    argv = ["--config", str(config), "console", "link", "--person", person, "--name", "某人", "--team", team]
    assert main(argv) == 1
    assert said in capsys.readouterr().err
    with engine.connect() as conn:
        assert (
            conn.execute(select(Person.id)).first() is None and conn.execute(select(Team.id)).first() is None
        )
