"""The People page in headless Chromium: pull the WeCom directory (the fake), add a newcomer to a
team, confirm a leaver. The screenshot goes to docs/images/ under $PLANLOOP_DOC_IMAGES."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.config import BotConfig, Secret, Settings
from bot.console import sessions
from storage.models import Identity, Person
from tests.browser import find_chromium
from tests.conftest import TEST_KEY
from tests.fakes.directory import Dept, Org, OrgPerson, serve_directory
from tests.fakes.wecom import FakeWeCom

CHROMIUM = find_chromium()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (Debian: apt-get install chromium)"),
]
ADMIN = "chenjing"
AES = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


@pytest.fixture
def wecom() -> Any:
    fake = FakeWeCom()
    # the example team as WeCom lists it: 赵强 has left, 小明 is new
    team = tomllib.loads((Path(__file__).parents[1] / "examples" / "team.toml").read_text("utf-8"))
    people = [
        OrgPerson({"wecom": p["ids"]["wecom-main"]}, p["name"], [p["team"]],
                  status="left" if p["id"] == "zhaoqiang" else "active")
        for p in team["people"]
    ] + [OrgPerson({"wecom": "XiaoMing"}, "小明", ["service"])]  # fmt: skip
    serve_directory(
        fake, Org(departments=[Dept("ops", "运营设计部"), Dept("service", "客服仓储部")], people=people)
    )
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def settings(wecom: FakeWeCom) -> Settings:
    bot = BotConfig(
        "wecom-main", "wecom", {"corp_id": wecom.corp_id, "agent_id": wecom.agent_id, "api_base": wecom.url},
        {"secret": Secret(wecom.secret), "token": Secret(wecom.token), "aes_key": Secret(AES)},
    )  # fmt: skip
    return Settings(
        database_url="sqlite://", simulator=True, secret_keys=(Secret(TEST_KEY),),
        public_url="http://planloop.test", extra={"admins": [ADMIN]}, bots=(bot,),
    )  # fmt: skip


def test_people_page_in_chromium(live, browser, services, demo_team, db, clock, tmp_path):  # noqa: ANN001
    with db() as session, session.begin():
        token = sessions.create_link(session, ADMIN, clock(), timedelta(minutes=10))
    page = browser.new_page()
    page.goto(f"{live}/console/link/{token}")
    page.click_and_wait("form button[type=submit]")
    page.goto(f"{live}/console/people")
    assert "从通讯录添加人员" in page.js("document.body.innerText")

    page.click_and_wait("#pull-wecom-main")
    text = page.js("document.body.innerText")
    assert "通讯录已拉取" in text and "上次拉取 从未" not in text
    # 小明 is new; the example team's people are known by their WeCom ids, so only 小明 is proposed
    assert page.js("document.querySelectorAll('#add-form tbody tr').length") == 1
    assert (
        page.js("document.querySelector('#new-wecom-main-XiaoMing input[name^=person_]').value") == "xiaoming"
    )
    # 赵强 left the company: flagged, not yet deactivated
    assert page.js(
        "Array.from(document.querySelectorAll('#leavers tr')).map(function(r){return r.id;}).join()"
    ) == ("leaver-zhaoqiang")
    wide = page.js(
        "Array.from(document.querySelectorAll('body *')).filter(function(e){return e.getBoundingClientRect().right > 392;}).map(function(e){return e.tagName + '#' + e.id + '.' + e.className;}).slice(0,8).join(' ')"
    )
    assert page.js("document.documentElement.scrollWidth") <= 390 + 1, wide  # wide tables scroll inside
    page.screenshot(tmp_path / "people.png", doc_image="console-people.png")

    page.js("document.querySelector('#new-wecom-main-XiaoMing input[name=pick]').checked = true")
    page.choose("#new-wecom-main-XiaoMing select[name^=team_]", "service")
    page.choose("#new-wecom-main-XiaoMing select[name^=role_]", "customer_service")
    page.click_and_wait("#add-picked")
    assert "已添加所选人员" in page.js("document.body.innerText")

    page.js("window.confirm = function(){ return true; }")  # the page asks before deactivating
    page.click_and_wait("#leaver-zhaoqiang button[type=submit]")
    assert "已停用，历史记录保留" in page.js("document.body.innerText")
    with db() as session:
        added = session.get(Person, "xiaoming")
        assert (added.team_id, added.role, added.added_from) == ("service", "customer_service", "directory")
        assert session.get(Identity, ("wecom-main", "XiaoMing")).person_id == "xiaoming"
        assert session.get(Person, "zhaoqiang").active is False
