"""Sign-in to the console with each chat platform's OAuth, end to end on real loopback sockets:
the app served on 127.0.0.1, the platform's fake (tests/fakes/oauth.py) on another port, and a
requests.Session as the browser following every redirect and keeping the cookies."""

from __future__ import annotations

import threading
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select
from werkzeug.serving import make_server

from bot.config import BotConfig, Secret
from storage.models import AuditLog
from tests.fakes.oauth import FakeOAuth

AES = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
# platform -> (bot id, the app's client id, what the fake says the signed-in user is, expected person)
CASES = {
    "feishu": ("feishu-main", "cli_console", "ou_zhangwei", "张伟"),
    "dingtalk": ("dingtalk-main", "dingconsole", "union-zhangwei", "张伟"),
    "wecom": ("wecom-main", "wwconsole", "ZhangWei", "张伟"),
}
SECRET = "s3cret-of-the-app"


def bot_for(platform: str, fake: FakeOAuth) -> BotConfig:
    bot_id, client_id = CASES[platform][0], CASES[platform][1]
    if platform == "feishu":
        return BotConfig(
            bot_id, "feishu", {"app_id": client_id, "api_base": fake.url, "oauth_base": fake.url},
            {"app_secret": Secret(SECRET)},
        )  # fmt: skip
    if platform == "dingtalk":
        return BotConfig(
            bot_id, "dingtalk",
            {"app_key": client_id, "api_base": fake.url, "oapi_base": fake.url, "oauth_base": fake.url},
            {"app_secret": Secret(SECRET), "token": Secret("t"), "aes_key": Secret(AES)},
        )  # fmt: skip
    return BotConfig(
        bot_id, "wecom",
        {"corp_id": client_id, "agent_id": 1000002, "api_base": fake.url, "oauth_base": fake.url,
         "web_login_base": fake.url},
        {"secret": Secret(SECRET), "token": Secret("t"), "aes_key": Secret(AES)},
    )  # fmt: skip


@pytest.fixture(params=list(CASES))
def platform(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def fake(platform: str):  # noqa: ANN201
    server = FakeOAuth(platform, CASES[platform][1], SECRET, user=CASES[platform][2])
    server.union_to_userid = {"union-zhangwei": "0101", "union-lilei": "0102"}
    server.start()
    yield server
    server.stop()


@pytest.fixture
def live(settings, engine, clock, fake, platform, demo_team):  # noqa: ANN001, ANN201
    """The app with one bot of ``platform`` pointed at the fake, served on 127.0.0.1."""
    from bot.services import build_services
    from bot.web.app import create_app

    cfg = replace(settings, bots=(bot_for(platform, fake),))
    services = build_services(cfg, clock=clock, engine=engine)
    app = create_app(cfg, services)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    services.settings = replace(cfg, public_url=base)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base, services
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


def test_sign_in_through_the_platform_lands_on_the_team_page(live, fake, platform):  # noqa: ANN001
    base, services = live
    browser = requests.Session()
    login = browser.get(f"{base}/console/login", timeout=10)
    assert login.status_code == 200
    bot_id, _, _, name = CASES[platform]
    res = browser.get(f"{base}/console/login/{bot_id}", timeout=10)
    assert res.status_code == 200, res.text
    assert urlsplit(res.url).path == "/console/"
    assert name in res.text and "运营设计组" in res.text and "主管" in res.text
    # what the platform saw: our state came back unchanged, and the code was exchanged once
    authorize = next(r for what, r in fake.requests if what in ("authorize", "web_login"))
    assert authorize["args"]["redirect_uri"] == f"{base}/console/oauth/{bot_id}"
    assert len(authorize["args"]["state"]) >= 40
    expected = {
        "feishu": ["authorize", "token", "user_info"],
        "dingtalk": ["authorize", "userAccessToken", "users/me", "accessToken", "getbyunionid"],
        "wecom": ["web_login", "gettoken", "getuserinfo"],  # a desktop browser: WeCom's QR web login
    }[platform]
    assert fake.calls() == expected
    if platform == "feishu":
        token_call = next(r for what, r in fake.requests if what == "token")["json"]
        assert token_call["redirect_uri"] == f"{base}/console/oauth/{bot_id}"
        assert token_call["grant_type"] == "authorization_code"
    with services.sessions() as session:
        audit = session.scalar(select(AuditLog).where(AuditLog.action == "console.sign_in"))
        assert (audit.actor, audit.detail) == ("zhangwei", {"via": bot_id})


@pytest.mark.parametrize(
    "user_agent, path, query",
    [
        # inside the WeCom client: the silent in-app OAuth (path/91022)
        ("Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 wxwork/4.1.30 MicroMessenger/7.0.1", "/connect/oauth2/authorize",
         {"appid", "redirect_uri", "response_type", "scope", "state", "agentid"}),
        # any other browser: WeCom's web login, a QR code to scan (path/98152)
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0", "/wwlogin/sso/login",
         {"login_type", "appid", "agentid", "redirect_uri", "state"}),
    ],
)  # fmt: skip
def test_wecom_sign_in_is_silent_in_the_client_and_a_qr_login_elsewhere(
    settings, engine, clock, demo_team, user_agent, path, query
):  # noqa: ANN001
    fake = FakeOAuth("wecom", "wwconsole", SECRET, user="ZhangWei").start()
    try:
        from bot.services import build_services
        from bot.web.app import create_app

        cfg = replace(settings, bots=(bot_for("wecom", fake),))
        client = create_app(cfg, build_services(cfg, clock=clock, engine=engine)).test_client()
        res = client.get("/console/login/wecom-main", headers={"User-Agent": user_agent})
        location = urlsplit(res.headers["Location"])
        assert res.status_code == 302 and location.path == path
        assert set(parse_qs(location.query)) == query
        assert parse_qs(location.query)["appid"] == ["wwconsole"]
        # the platform's page sends the person back with a code and our state: signed in
        at_platform = requests.get(res.headers["Location"], allow_redirects=False, timeout=10)
        back = urlsplit(at_platform.headers["Location"])
        done = client.get(f"{back.path}?{back.query}")
        assert done.status_code == 303 and done.headers["Location"].endswith("/console/")
    finally:
        fake.stop()


def test_state_from_another_browser_is_refused(live, fake, platform):  # noqa: ANN001
    base, _ = live
    bot_id = CASES[platform][0]
    mine = requests.Session()
    first = mine.get(f"{base}/console/login/{bot_id}", allow_redirects=False, timeout=10)
    assert first.status_code == 302
    at_platform = requests.get(first.headers["Location"], allow_redirects=False, timeout=10)
    callback = at_platform.headers["Location"]
    # an attacker's browser (no oauth cookie) replays the callback: refused, nobody signed in
    other = requests.Session()
    res = other.get(callback, timeout=10)
    assert res.status_code == 403 and "state" in res.text
    # a forged state in the right browser: refused too
    forged = callback.replace(parse_qs(urlsplit(callback).query)["state"][0], "forged")
    res = mine.get(forged, timeout=10)
    assert res.status_code == 403
    assert mine.get(f"{base}/console/", allow_redirects=False, timeout=10).status_code == 302


def test_callback_used_twice_signs_in_once(live, fake, platform):  # noqa: ANN001
    base, _ = live
    bot_id = CASES[platform][0]
    browser = requests.Session()
    first = browser.get(f"{base}/console/login/{bot_id}", allow_redirects=False, timeout=10)
    callback = requests.get(first.headers["Location"], allow_redirects=False, timeout=10).headers["Location"]
    assert browser.get(callback, timeout=10).status_code == 200
    assert browser.get(callback, timeout=10).status_code == 403


UNKNOWN = {
    "feishu": ("ou_stranger", "不在 planloop 的团队数据中"),
    "dingtalk": ("union-stranger", "不是本企业通讯录中的成员"),
    "wecom": ("Stranger", "不在 planloop 的团队数据中"),
}


def test_unknown_user_gets_a_clear_page(live, fake, platform):  # noqa: ANN001
    base, _ = live
    fake.user, text = UNKNOWN[platform]
    res = requests.Session().get(f"{base}/console/login/{CASES[platform][0]}", timeout=10)
    assert res.status_code == 403
    assert text in res.text and '<html lang="zh-CN">' in res.text
    if platform != "dingtalk":
        assert fake.user in res.text  # the id an admin must add to the team file


def test_wecom_outsider_and_refused_consent(settings, engine, clock, demo_team):  # noqa: ANN001
    from bot.platforms.signin import SignInError, build_signin

    fake = FakeOAuth("wecom", "wwconsole", SECRET, user="wx-outsider", outsiders={"wx-outsider"}).start()
    try:
        bot = bot_for("wecom", fake)
        signin = build_signin(bot, requests.Session())
        assert signin is not None
        back = requests.get(signin.authorize_url("st", "http://x/cb"), allow_redirects=False, timeout=10)
        args = {k: v[0] for k, v in parse_qs(urlsplit(back.headers["Location"]).query).items()}
        for given, shown in [
            (args, "不是本企业的成员"),
            ({"error": "access_denied", "state": "st"}, "取消了授权"),
            ({"code": "never-issued"}, "授权码无效"),
        ]:
            with pytest.raises(SignInError) as refused:
                signin.identify(given, "http://x/cb")
            assert shown in refused.value.text
    finally:
        fake.stop()


@pytest.mark.parametrize("platform", ["feishu"])  # the refusal redirect Feishu's 获取授权码 documents
def test_feishu_refused_consent_is_a_clear_page(live, fake, platform):  # noqa: ANN001
    base, _ = live
    fake.deny = True
    res = requests.Session().get(f"{base}/console/login/feishu-main", timeout=10)
    assert res.status_code == 403 and "你在平台上取消了授权" in res.text
    assert fake.calls() == ["authorize"]  # no token call without a code


@pytest.mark.parametrize(
    ("answers", "refused", "calls", "errcode"),
    [
        ([{"errcode": 0}], {42001}, ["t1"], 0),  # accepted: one call
        ([{"errcode": 42001}, {"errcode": 0}], {42001}, ["t1", "t2"], 0),  # refused: a fresh token, once
        ([{"errcode": 42001}, {"errcode": 42001}], {42001}, ["t1", "t2"], 42001),  # not a third time
        ([{"errcode": 60020}], {42001}, ["t1"], 60020),  # another error is not a stale token
    ],
)
def test_an_app_token_refused_as_stale_is_fetched_again_once(answers, refused, calls, errcode):
    from bot.platforms.tokens import with_fresh_token

    issued, used = iter(["t1", "t2", "t3"]), []
    stale_seen: list[str | None] = []

    def app_token(stale: str | None) -> str:
        stale_seen.append(stale)
        return next(issued)

    def call(token: str) -> dict:
        used.append(token)
        return answers[len(used) - 1]

    assert (
        with_fresh_token(app_token, call, lambda answer: answer["errcode"] in refused)["errcode"] == errcode
    )
    assert used == calls
    assert stale_seen == [None, "t1"][: len(calls)]
