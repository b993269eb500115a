"""The console in a real headless Chromium against the app on a local port: sign in with a
console link, see the team with its charts, switch a template and see the next appraisal use it,
resend a dead message. Screenshots go to docs/images/ under $PLANLOOP_DOC_IMAGES."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.config import Secret, Settings
from bot.console import sessions
from cards.model import Card
from handlers.appraisal_runs import run_week
from storage import outbox
from storage.models import Appraisal, AuditLog, OutboxMessage
from storage.outbox import Target
from tests.browser import find_chromium
from tests.conftest import TEST_KEY

CHROMIUM = find_chromium()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (Debian: apt-get install chromium)"),
]
ADMIN = "chenjing"
WEEK = "2026-W48"
PLAN = "计划\n优化详情页首屏 支付转化率 +2pp\n主图测试 详情页点击率 +0.5pp"


@pytest.fixture
def settings() -> Settings:
    return Settings(
        database_url="sqlite://",
        simulator=True,
        secret_keys=(Secret(TEST_KEY),),
        public_url="http://planloop.test",
        extra={"admins": [ADMIN]},
    )


def test_console_in_chromium(live, browser, services, sim, demo_team, db, clock, tmp_path):  # noqa: ANN001
    sim.say("lilei", PLAN)
    sim.say("hanmeimei", PLAN)
    with db() as session, session.begin():
        token = sessions.create_link(session, ADMIN, clock(), timedelta(minutes=10))

    # sign in with the console link: a GET shows a button, the POST signs in
    page = browser.new_page()
    page.goto(f"{live}/console/link/{token}")
    assert "陈静" in page.js("document.body.innerText")
    page.click_and_wait("form button[type=submit]")
    assert page.js("location.pathname") == "/console/"
    text = page.js("document.body.innerText")
    assert "运营设计组" in text and "客服仓储组" in text and "管理员" in text
    assert page.js("document.documentElement.scrollWidth") <= 390  # readable on a phone
    page.js("document.querySelectorAll('details').forEach(function(d){d.open = true;})")
    assert page.js("document.querySelectorAll('#person-lilei .tag')[0].textContent") == "已提交"
    assert page.js("document.querySelectorAll('svg.chart').length") >= 4  # two items each for two people
    page.screenshot(tmp_path / "team.png", doc_image="console-team.png")

    # the team filter (a few lines of our own script submit it on change)
    page.choose("select[name=team]", "service")
    browser.wait_event("Page.loadEventFired", page.session)
    assert "team=service" in page.js("location.search")
    headings = page.js(
        "Array.from(document.querySelectorAll('section h2')).map(function(h){return h.textContent;}).join('|')"
    )
    assert headings.startswith("客服仓储组") and "运营设计组" not in headings

    # switch ops to the promo template until the week's Sunday
    page.goto(f"{live}/console/templates")
    page.choose("#team-ops select[name=template]", "ops-promo")
    page.js("document.querySelector('#team-ops input[name=until]').value = '2026-11-29'")
    page.type_into("#team-ops input[name=reason]", "双11返场")
    page.click_and_wait("#team-ops form button[type=submit]")
    assert "模板已切换" in page.js("document.body.innerText")
    assert "大促模板" in page.js("document.querySelector('#team-ops table').innerText")
    page.screenshot(tmp_path / "templates.png", doc_image="console-templates.png")

    # the next appraisal (W48, run the following Monday) uses it
    with db() as session, session.begin():
        rows = run_week(session, WEEK, clock() + timedelta(days=7), team="ops")
    templates = {r.person_id: r.template_id for r in rows}
    assert templates["lilei"] == "ops-promo" and templates["hanmeimei"] == "ops-promo"
    page.goto(f"{live}/console/appraisals?week={WEEK}")
    row = page.js(
        "document.querySelector('#appraisal-lilei').textContent"
    )  # the template column hides on a phone
    assert "大促模板" in row and "v1" in row
    page.js("document.querySelectorAll('details').forEach(function(d){d.open = true;})")
    main = page.js("document.querySelector('main').innerText")
    assert (
        "数据缺失，暂缓发布" in main and "缺少的数据" in main and "支付转化率（pay_conversion_rate）" in main
    )
    page.screenshot(tmp_path / "appraisals.png", doc_image="console-appraisals.png")

    # a dead message, resent from the delivery page
    with db() as session, session.begin():
        row = outbox.enqueue(session, Target("sim", "user", "lilei"), Card("本周计划提醒"), dedupe_key="dead-1", now=clock())  # fmt: skip
        assert row is not None
        row.status, row.last_error, dead_id = "dead", "HTTP 500 after 8 attempts", row.id
    page.goto(f"{live}/console/delivery")
    assert "HTTP 500 after 8 attempts" in page.js(f"document.getElementById('msg-{dead_id}').innerText")
    page.screenshot(tmp_path / "delivery.png", doc_image="console-delivery.png")
    page.click_and_wait(f"#msg-{dead_id} button[type=submit]")
    assert "已重新排队" in page.js("document.body.innerText")
    with db() as session:
        assert session.get(OutboxMessage, dead_id).status == "pending"
        actions = [a.action for a in session.scalars(select(AuditLog).order_by(AuditLog.id))]
        assert {"console.sign_in", "template.switch", "outbox.resend"} <= set(actions)
        assert session.scalar(select(Appraisal).where(Appraisal.person_id == "lilei")).week == WEEK
