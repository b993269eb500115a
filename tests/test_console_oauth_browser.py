"""Signing in to the console in headless Chromium through each platform's OAuth (the fakes of
tests/fakes/oauth.py on their own port): the button, the platform's redirect back with our state,
the cookie-bound state check, the team page. tests/test_console_oauth.py covers the refusals."""

from __future__ import annotations

from typing import Any

import pytest

from bot.config import Secret, Settings
from tests.browser import find_chromium
from tests.conftest import TEST_KEY
from tests.fakes.oauth import FakeOAuth
from tests.test_console_oauth import CASES, SECRET, bot_for

CHROMIUM = find_chromium()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (Debian: apt-get install chromium)"),
]


@pytest.fixture(params=list(CASES))
def platform(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def fake(platform: str) -> Any:
    server = FakeOAuth(platform, CASES[platform][1], SECRET, user=CASES[platform][2])
    server.union_to_userid = {"union-zhangwei": "0101"}
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(fake: FakeOAuth, platform: str) -> Settings:
    return Settings(
        database_url="sqlite://", simulator=True, secret_keys=(Secret(TEST_KEY),),
        public_url="http://planloop.test", bots=(bot_for(platform, fake),),
    )  # fmt: skip


def test_a_leader_signs_in_with_the_platform_and_sees_the_team(live, browser, fake, platform, demo_team):  # noqa: ANN001
    bot_id, _, _, name = CASES[platform]
    page = browser.new_page()
    page.goto(f"{live}/console/")  # signed out: the sign-in page, one button per bot
    assert page.js("location.pathname") == "/console/login"
    page.click_and_wait(f"a[href$='/console/login/{bot_id}'] button")
    page.wait_for("location.pathname === '/console/'")
    text = page.js("document.body.innerText")
    assert name in text and "运营设计组" in text and "主管" in text
    # the platform's page was really visited (a QR web login for WeCom outside its client)
    first = {"feishu": "authorize", "dingtalk": "authorize", "wecom": "web_login"}[platform]
    assert fake.calls()[0] == first
