"""The web console: sign-in links, sessions (expiry, logout, logout --all), CSRF, and the role ×
page permission table; the actions reuse the chat/CLI functions and are audited."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.config import Secret, Settings
from bot.console import sessions
from bot.console.web import COOKIE
from storage.models import AuditLog, ConsoleSession, OutboxMessage, Scenario, TemplateSwitch
from tests.conftest import TEST_KEY

ADMIN, LEADER, MEMBER, OTHER_LEADER = "chenjing", "zhangwei", "lilei", "wangfang"


@pytest.fixture
def settings() -> Settings:
    return Settings(
        database_url="sqlite://",
        simulator=True,
        secret_keys=(Secret(TEST_KEY),),
        public_url="http://planloop.test",
        extra={"admins": [ADMIN]},
    )


def link_for(services, person: str, minutes: int = 10) -> str:  # noqa: ANN001
    with services.sessions() as session, session.begin():
        return sessions.create_link(session, person, services.clock(), timedelta(minutes=minutes))


def sign_in(client, services, person: str) -> str:  # noqa: ANN001
    """Signs ``client`` in through a one-time link (the real flow); returns the CSRF token."""
    token = link_for(services, person)
    res = client.post(f"/console/link/{token}")
    assert res.status_code == 303, res.get_data(as_text=True)
    assert res.headers["Location"].endswith("/console/")
    page = client.get("/console/")
    assert page.status_code == 200
    return csrf_of(page.get_data(as_text=True))


def csrf_of(body: str) -> str:
    match = re.search(r'name="_csrf" value="([^"]+)"', body)
    assert match, "no CSRF field on the page"
    return match.group(1)


def test_link_signs_in_once_and_sets_a_strict_cookie(client, services, demo_team):  # noqa: ANN001
    token = link_for(services, LEADER)
    shown = client.get(f"/console/link/{token}")
    assert shown.status_code == 200 and "张伟" in shown.get_data(as_text=True)  # a GET never spends it
    res = client.post(f"/console/link/{token}")
    assert res.status_code == 303
    cookie = res.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # public_url is http here
    again = client.post(f"/console/link/{token}")
    assert again.status_code == 410 and "已用过或已过期" in again.get_data(as_text=True)
    with services.sessions() as session:
        kinds = sorted(r.kind for r in session.scalars(select(ConsoleSession)))
        stored = [r.id for r in session.scalars(select(ConsoleSession))]
    assert kinds == ["link", "session"]
    assert token not in stored and sessions.digest(token) in stored  # only the hash is kept


def test_secure_cookie_when_public_url_is_https(services, demo_team):  # noqa: ANN001
    from bot.web.app import create_app

    services.settings = Settings(
        database_url="sqlite://", secret_keys=(Secret(TEST_KEY),), public_url="https://plan.example.com"
    )
    client = create_app(services.settings, services).test_client()
    res = client.post(f"/console/link/{link_for(services, LEADER)}")
    assert res.status_code == 303 and "Secure" in res.headers["Set-Cookie"]


def test_expired_link_and_expired_session(client, services, clock, demo_team):  # noqa: ANN001
    token = link_for(services, LEADER, minutes=10)
    clock.advance(minutes=11)
    assert client.post(f"/console/link/{token}").status_code == 410
    sign_in(client, services, LEADER)
    clock.advance(hours=12, seconds=1)
    res = client.get("/console/")
    assert res.status_code == 302 and res.headers["Location"].endswith("/console/login")


def test_logout_revokes_this_session(client, services, demo_team):  # noqa: ANN001
    csrf = sign_in(client, services, LEADER)
    assert client.post("/console/logout", data={"_csrf": csrf}).status_code == 303
    assert client.get("/console/").status_code == 302


def test_cli_logout_all_revokes_every_session(client, app, services, config, demo_team, capsys):  # noqa: ANN001
    from bot.cli.commands import main

    other = app.test_client()
    sign_in(client, services, LEADER)
    sign_in(other, services, ADMIN)
    unused = link_for(services, MEMBER)
    assert main(["--config", config, "console", "logout", "--all"]) == 0
    assert (
        capsys.readouterr().out == "已让所有人退出：吊销了 3 个会话和未用的登录链接\n"
    )  # zh-CN: no [server] locale
    assert client.get("/console/").status_code == 302
    assert other.get("/console/").status_code == 302
    assert client.post(f"/console/link/{unused}").status_code == 410
    with services.sessions() as session:
        assert session.scalar(select(AuditLog).where(AuditLog.action == "console.logout")).detail == {
            "revoked": 3
        }


def test_cli_link_prints_a_working_url(client, services, config, demo_team, capsys):  # noqa: ANN001
    from bot.cli.commands import main

    assert main(["--config", config, "console", "link", "--person", MEMBER, "--minutes", "5"]) == 0
    url = capsys.readouterr().out.strip()
    assert re.fullmatch(r"http://127\.0\.0\.1:8000/console/link/[A-Za-z0-9_-]{40,}", url), url
    assert client.post(url.removeprefix("http://127.0.0.1:8000")).status_code == 303
    assert main(["--config", config, "console", "link", "--person", "nobody"]) == 1
    assert main(["--config", config, "console", "link", "--person", MEMBER, "--minutes", "0"]) == 2


def test_a_session_of_a_deactivated_person_stops(client, services, demo_team):  # noqa: ANN001
    from storage.models import Person

    sign_in(client, services, MEMBER)
    with services.sessions() as session, session.begin():
        session.get(Person, MEMBER).active = False
    assert client.get("/console/").status_code == 302


# ------------------------------------------------------------------ the permission table

PAGES = (
    "/console/", "/console/appraisals", "/console/templates", "/console/delivery",
    "/console/templates/ops-default/edit", "/console/data", "/console/people",
)  # fmt: skip
#            team  appraisals templates delivery edit a template  data  people
GET_TABLE = {
    ADMIN: (200, 200, 200, 200, 200, 200, 200),
    LEADER: (200, 200, 200, 403, 403, 200, 403),
    MEMBER: (200, 200, 403, 403, 403, 403, 403),
    None: (302, 302, 302, 302, 302, 302, 302),
}


@pytest.mark.parametrize("who", list(GET_TABLE))
def test_who_may_open_which_page(client, services, demo_team, who):  # noqa: ANN001
    if who:
        sign_in(client, services, who)
    got = tuple(client.get(p).status_code for p in PAGES)
    assert got == GET_TABLE[who]


# (path, form) -> expected status per role; 303 = done (redirect back), 403 = refused
POSTS = {
    "switch ops": ("/console/templates/switch", {"team": "ops", "template": "ops-promo"}),
    "switch service": ("/console/templates/switch", {"team": "service", "template": "cs-logistics"}),
    "undo ops": ("/console/templates/undo", {"team": "ops"}),
    "scenario": ("/console/scenarios", {"scenario": "logistics_peak", "active": "1"}),
    "resend": ("/console/delivery/resend", {"id": "00000000-0000-0000-0000-000000000000"}),
    "decide": ("/console/appraisals/decide", {"appeal": "999", "decision": "reject"}),
    "edit template": (
        "/console/templates/ops-default/edit",
        {"w.conversion_rate": "50", "w.ctr": "50", "do": "save"},
    ),
    "pull": ("/console/data/pull", {"source": "no-such-source"}),
    "upload": ("/console/data/upload", {}),
    "confirm": ("/console/data/confirm", {"upload": "0" * 32}),
    "directory pull": ("/console/people/pull", {"bot": "no-such-bot"}),
    "add people": ("/console/people/add", {}),
    "deactivate": ("/console/people/deactivate", {"person": "nobody"}),
    "save team": ("/console/people/team", {"id": "new", "name": "新组"}),
    "catalogue": ("/console/people/catalogue", {}),
    "save person": ("/console/people/person", {"person": "lilei", "team": "ops", "role": "operations"}),
    "save kpi": ("/console/people/kpi", {"key": "x", "name": "X", "metric": "ctr"}),
    "save period": (
        "/console/people/period",
        {"id": "cny", "name": "年货节", "from": "01-05", "to": "01-25"},
    ),
    "save scenario": ("/console/people/scenario", {"id": "heat", "name": "高温"}),
}
POST_TABLE = {
    #     switch ops  switch service  undo ops  scenario  resend  decide (no such appeal)  edit template
    #     pull (no such source)  upload (no file)  confirm (no such upload)
    #     directory pull (no such bot)  add people (none ticked)  deactivate (nobody)  save team  catalogue
    #     save person  save kpi  save period  save scenario
    ADMIN: (303, 303, 303, 303, 303, 303, 303, 400, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303),
    LEADER: (303, 403, 303, 403, 403, 303, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403),
    MEMBER: (403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403),
    None: (401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401),
}


@pytest.mark.parametrize("who", list(POST_TABLE))
def test_who_may_do_what(client, services, demo_team, who):  # noqa: ANN001
    csrf = sign_in(client, services, who) if who else "x"
    got = tuple(client.post(path, data={**form, "_csrf": csrf}).status_code for path, form in POSTS.values())
    assert got == POST_TABLE[who]


@pytest.mark.parametrize(
    "csrf, headers",
    [
        ("", {}),
        ("forged", {}),
        (None, {"Origin": "https://evil.example"}),
        (None, {"Sec-Fetch-Site": "cross-site"}),
    ],
)
def test_csrf_refused(client, services, demo_team, csrf, headers):  # noqa: ANN001
    real = sign_in(client, services, ADMIN)
    res = client.post(
        "/console/scenarios",
        data={"scenario": "logistics_peak", "active": "1", "_csrf": real if csrf is None else csrf},
        headers=headers,
    )
    assert res.status_code == 403
    with services.sessions() as session:
        assert session.get(Scenario, "logistics_peak").active is False
        assert session.scalar(select(AuditLog).where(AuditLog.action == "scenario.on")) is None


# ------------------------------------------------------------------ the pages' content and actions


def test_pages_keep_the_strict_csp(client, services, demo_team):  # noqa: ANN001
    sign_in(client, services, ADMIN)
    for path in PAGES:
        res = client.get(path)
        csp = res.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src 'nonce-" in csp
        assert res.headers["Cache-Control"] == "no-store"


def test_team_page_leader_sees_own_team_member_sees_self(client, app, services, demo_team):  # noqa: ANN001
    sign_in(client, services, LEADER)
    body = client.get("/console/").get_data(as_text=True)
    assert "运营设计组" in body and "李雷" in body and "客服仓储组" not in body
    member = app.test_client()
    sign_in(member, services, MEMBER)
    body = member.get("/console/").get_data(as_text=True)
    assert "李雷" in body and "韩梅梅" not in body


def test_switch_and_undo_are_audited_with_reason(client, services, demo_team):  # noqa: ANN001
    csrf = sign_in(client, services, LEADER)
    res = client.post(
        "/console/templates/switch",
        data={"_csrf": csrf, "team": "ops", "template": "ops-promo", "until": "2026-12-06", "reason": "预热"},
    )
    assert res.status_code == 303 and "done=switched" in res.headers["Location"]
    page = client.get("/console/templates").get_data(as_text=True)
    assert "大促模板" in page and "模板已切换" not in page  # the banner shows only after the redirect
    with services.sessions() as session:
        audit = session.scalar(select(AuditLog).where(AuditLog.action == "template.switch"))
        assert (
            audit.actor == LEADER and audit.detail["to"] == "ops-promo" and audit.detail["reason"] == "预热"
        )
        assert audit.detail["until"] == "2026-12-06"
    res = client.post("/console/templates/undo", data={"_csrf": csrf, "team": "ops"})
    assert res.status_code == 303
    with services.sessions() as session:
        assert (
            session.scalar(select(AuditLog).where(AuditLog.action == "template.switch.cancel")).actor
            == LEADER
        )
        live = [s for s in session.scalars(select(TemplateSwitch)) if not s.cancelled]
        assert live == []


def test_bad_switch_shows_a_reason_not_a_500(client, services, demo_team):  # noqa: ANN001
    csrf = sign_in(client, services, LEADER)
    res = client.post("/console/templates/switch", data={"_csrf": csrf, "team": "ops", "template": "nope"})
    assert res.status_code == 303 and "error=" in res.headers["Location"]
    body = client.get(res.headers["Location"]).get_data(as_text=True)
    assert "没有 id 为“nope”的可用模板" in body
    res = client.post(
        "/console/templates/switch",
        data={"_csrf": csrf, "team": "ops", "template": "ops-promo", "until": "12/31"},
    )
    assert "error=" in res.headers["Location"]


def test_scenario_on_is_audited(client, services, demo_team):  # noqa: ANN001
    csrf = sign_in(client, services, ADMIN)
    assert (
        client.post(
            "/console/scenarios", data={"_csrf": csrf, "scenario": "logistics_peak", "active": "1"}
        ).status_code
        == 303
    )
    with services.sessions() as session:
        assert session.get(Scenario, "logistics_peak").active is True
        audit = session.scalar(select(AuditLog).where(AuditLog.action == "scenario.on"))
        assert (audit.actor, audit.detail) == (ADMIN, {"scenario": "logistics_peak", "active": True})


def test_resend_a_dead_message(client, services, demo_team):  # noqa: ANN001
    from cards.model import Card
    from storage import outbox
    from storage.outbox import Target

    with services.sessions() as session, session.begin():
        row = outbox.enqueue(
            session, Target("sim", "user", MEMBER), Card("周报"), dedupe_key="t1", now=services.clock()
        )
        assert row is not None
        row.status, row.last_error = "dead", "HTTP 500"
        row_id = row.id
    csrf = sign_in(client, services, ADMIN)
    page = client.get("/console/delivery").get_data(as_text=True)
    assert row_id in page and "HTTP 500" in page
    assert client.post("/console/delivery/resend", data={"_csrf": csrf, "id": row_id}).status_code == 303
    with services.sessions() as session:
        assert session.get(OutboxMessage, row_id).status == "pending"
        assert session.scalar(select(AuditLog).where(AuditLog.action == "outbox.resend")).detail == {
            "was": "dead"
        }


def test_en_us_locale(services, demo_team):  # noqa: ANN001
    from bot.web.app import create_app

    services.settings = Settings(
        database_url="sqlite://", secret_keys=(Secret(TEST_KEY),), public_url="http://planloop.test",
        locale="en-US", extra={"admins": [ADMIN]},
    )  # fmt: skip
    client = create_app(services.settings, services).test_client()
    sign_in(client, services, ADMIN)
    body = client.get("/console/templates").get_data(as_text=True)
    assert '<html lang="en-US">' in body and "Switch template" in body and "Sign out" in body
    spent = client.post("/console/link/not-a-link").get_data(as_text=True)
    assert "This sign-in link was used or has expired." in spent and "链接" not in spent


def test_anonymous_is_sent_to_login_listing_the_platforms(client, demo_team):  # noqa: ANN001
    res = client.get("/console/login")
    assert res.status_code == 200 and "planloop console link" in res.get_data(as_text=True)
    assert COOKIE not in (res.headers.get("Set-Cookie") or "")


def test_appraisals_page_decides_an_appeal_through_the_card_handler(
    client, app, services, db, clock, demo_team
):  # noqa: ANN001
    from storage.models import Appeal, Appraisal
    from tests.test_pages import LAST_WEEK, seed_appraisals

    seed_appraisals(db, clock())
    with db() as session, session.begin():
        row = session.scalar(
            select(Appraisal).where(
                Appraisal.person_id == MEMBER, Appraisal.week == LAST_WEEK, Appraisal.current.is_(True)
            )
        )
        appeal = Appeal(
            appraisal_id=row.id, kpi_key="conversion_rate", note="数据源晚到一天", created_at=clock()
        )
        session.add(appeal)
        session.flush()
        appeal_id = appeal.id
    member = app.test_client()
    member_csrf = sign_in(member, services, MEMBER)
    body = member.get(f"/console/appraisals?week={LAST_WEEK}").get_data(as_text=True)
    assert "数据源晚到一天" in body and 'name="decision"' not in body  # a member sees it, without the form
    refused = member.post(
        "/console/appraisals/decide",
        data={"_csrf": member_csrf, "appeal": str(appeal_id), "decision": "reject", "reply": "x"},
    )
    assert refused.status_code == 403

    csrf = sign_in(client, services, LEADER)
    body = client.get(f"/console/appraisals?week={LAST_WEEK}").get_data(as_text=True)
    assert f'id="appeal-{appeal_id}"' in body and "107" in body and "v2" in body
    # the handler's own validation comes back as a banner: a rejection needs a reason
    res = client.post(
        "/console/appraisals/decide", data={"_csrf": csrf, "appeal": str(appeal_id), "decision": "reject"}
    )
    assert "error=" in res.headers["Location"]
    assert "驳回时请写明理由" in client.get(res.headers["Location"]).get_data(as_text=True)
    res = client.post(
        "/console/appraisals/decide",
        data={"_csrf": csrf, "appeal": str(appeal_id), "decision": "reject", "reply": "数据已按时到达"},
    )
    assert res.status_code == 303 and "done=decided" in res.headers["Location"]
    with db() as session:
        decided = session.get(Appeal, appeal_id)
        assert (decided.status, decided.reply) == ("rejected", "数据已按时到达")


def test_delivery_page_shows_who_holds_a_stream_bot(services, engine, demo_team):  # noqa: ANN001
    from dataclasses import replace

    from bot.config import BotConfig
    from bot.web.app import create_app
    from bot.worker.leader import elect

    stream = BotConfig(
        "feishu-stream", "feishu", {"app_id": "cli_s", "api_base": "http://127.0.0.1:9", "connection": "stream"},
        {"app_secret": Secret("x")},
    )  # fmt: skip
    services.settings = replace(services.settings, bots=(stream,))
    client = create_app(services.settings, services).test_client()
    sign_in(client, services, ADMIN)

    def state() -> str:
        body = client.get("/console/delivery").get_data(as_text=True)
        return re.search(r"<td>feishu-stream</td><td>feishu</td><td>([^<]*)</td>", body).group(1)

    if engine.dialect.name != "postgresql":
        assert state() == "状态见 worker 的 /healthz"
        return
    assert state() == "没有 worker 持有连接"
    lease = elect(engine, "stream:feishu-stream")
    assert lease.try_acquire()
    try:
        assert state() == "有 worker 持有连接"
    finally:
        lease.release()
    assert state() == "没有 worker 持有连接"


def test_sessions_store(db, clock, demo_team):  # noqa: ANN001
    now = clock()
    with db() as session, session.begin():
        link = sessions.create_link(session, MEMBER, now)
        browser, state = sessions.start_oauth(session, "feishu-main", now)
        stale_browser, stale_state = sessions.start_oauth(session, "feishu-main", now - timedelta(minutes=11))
        old = sessions.open_session(session, MEMBER, now - timedelta(days=40), "link")
    with db() as session, session.begin():
        assert sessions.redeem_link(session, link + "x", now) is None
        assert sessions.redeem_link(session, link, now) == MEMBER
        assert sessions.redeem_link(session, link, now) is None  # once
        assert sessions.finish_oauth(session, browser, "dingtalk-main", state, now) is False  # another bot
        assert sessions.finish_oauth(session, browser, "feishu-main", state + "x", now) is False
        assert (
            sessions.finish_oauth(session, stale_browser, "feishu-main", stale_state, now) is False
        )  # expired
        assert sessions.finish_oauth(session, browser, "feishu-main", state, now) is True
        assert sessions.finish_oauth(session, browser, "feishu-main", state, now) is False  # once
        assert (
            sessions.lookup(session, "é" * 10, now) is None
            and sessions.lookup(session, "x" * 500, now) is None
        )
        fresh = sessions.open_session(session, LEADER, now, "link")  # purges the 40-day-old one
    with db() as session:
        assert sessions.lookup(session, fresh, now).person_id == LEADER
        assert session.get(ConsoleSession, sessions.digest(old)) is None


@pytest.mark.parametrize(
    "path",
    [
        "/console/?team=service",
        "/console/?team=%3Cscript%3E",
        "/console/appraisals?week=%3Cscript%3Ealert(1)%3C/script%3E",
        "/console/appraisals?week=2026-W99&team=service",
        "/console/templates?team=service",
    ],
)
def test_a_leader_never_sees_another_team_whatever_the_query(client, services, demo_team, path):  # noqa: ANN001
    sign_in(client, services, LEADER)
    res = client.get(path)
    body = res.get_data(as_text=True)
    assert res.status_code == 200
    assert "王芳" not in body and "客服仓储组" not in body and "<script>alert" not in body


@pytest.mark.parametrize("check", ["", "0" * 32, "é" * 5])
def test_a_banner_from_elsewhere_is_not_shown(client, services, demo_team, check):  # noqa: ANN001
    sign_in(client, services, LEADER)
    body = client.get(f"/console/templates?error=请把工资转到这个账户&check={check}").get_data(as_text=True)
    assert "请把工资转到这个账户" not in body


def test_team_page_shows_the_plan_state_charts_and_progress_notes(client, sim, services, db, demo_team):  # noqa: ANN001
    from storage.models import PlanItem

    sim.say(MEMBER, "计划\n优化详情页首屏 支付转化率 +2pp\n主图测试 详情页点击率 +0.5pp")
    with db() as session, session.begin():
        item = session.scalar(select(PlanItem).where(PlanItem.position == 2))
        item.note = "新主图周三上线"
    sign_in(client, services, LEADER)
    body = client.get("/console/?team=ops").get_data(as_text=True)
    assert "进展说明：新主图周三上线" in body
    row = re.search(r'<tr id="person-lilei">(.*?)</tr>', body, flags=re.S).group(1)
    assert "已提交" in row and ">2<" in row
    assert body.count("<svg") >= 2  # one pace chart per metric item


def test_a_recomputed_week_shows_its_newest_version_in_the_console_and_the_api(
    client, services, db, clock, demo_team
):  # noqa: ANN001
    """The weekly run writes versions in multi-row statements: after a recompute the console's
    appraisals page and GET /api/v1/appraisals see exactly one current row per person, the new one."""
    from bot.api.tokens import create_token
    from handlers.appraisal_runs import run_week
    from storage.models import Appraisal
    from tests.test_pages import LAST_WEEK

    with db() as session, session.begin():
        first = {a.person_id: a.id for a in run_week(session, LAST_WEEK, clock(), hold=False)}
    with db() as session, session.begin():
        second = run_week(session, LAST_WEEK, clock(), reason="数据补录后重算", hold=False)
        made = create_token(session, name="t", scopes=["appraisals:read"], now=clock())
        headers = {"Authorization": f"Bearer {made.secret}"}
    assert {a.person_id for a in second} == set(first) and len(first) == 10
    with db() as session:
        current = session.execute(
            select(Appraisal.person_id, Appraisal.version, Appraisal.id).where(
                Appraisal.week == LAST_WEEK, Appraisal.current.is_(True)
            )
        ).all()
    assert sorted((p, v) for p, v, _ in current) == sorted((p, 2) for p in first)
    assert not {i for _, _, i in current} & set(first.values())

    sign_in(client, services, LEADER)
    body = client.get(f"/console/appraisals?week={LAST_WEEK}").get_data(as_text=True)
    ops = sum(a.team_id == "ops" for a in second)  # the leader's own team
    assert body.count(">v2<") == ops == 5 and ">v1<" not in body and "数据补录后重算" in body

    res = client.get(f"/api/v1/appraisals?week={LAST_WEEK}&limit=100", headers=headers)
    assert res.status_code == 200, res.get_json()
    rows = res.get_json()["appraisals"]
    assert sorted((r["employee"], r["version"], r["version_reason"].split("；")[0]) for r in rows) == sorted(
        (p, 2, "数据补录后重算") for p in first
    )
