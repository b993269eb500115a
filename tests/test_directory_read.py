"""Reading each platform's directory (bot/platforms/directory.py) against the fakes' contacts APIs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from bot.config import BotConfig, Secret
from bot.platforms import build
from bot.platforms.base import Deps
from bot.platforms.directory import DirectoryError, read_directory
from handlers.directory import Member
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.directory import Dept, Org, OrgPerson, serve_directory
from tests.fakes.feishu import FakeFeishu
from tests.fakes.feishu import bot_config as feishu_bot
from tests.fakes.wecom import FakeWeCom


def _org(size: int = 0) -> Org:
    """运营部 › 设计组, and 客服部; 钱七 left, 孙八 is disabled; ``size`` more people in 客服部."""
    people = [
        OrgPerson(
            {"feishu": "ou_lilei", "dingtalk": "0102", "wecom": "LiLei"}, "李雷", ["ops"], union_id="u-lilei"
        ),
        OrgPerson(
            {"feishu": "ou_han", "dingtalk": "0103", "wecom": "HanMeimei"}, "韩梅梅", ["design", "ops"]
        ),
        OrgPerson({"feishu": "ou_wang", "dingtalk": "0201", "wecom": "WangFang"}, "王芳", ["cs"]),
        OrgPerson({"feishu": "ou_boss", "dingtalk": "0001", "wecom": "Boss"}, "老板", []),
        OrgPerson(
            {"feishu": "ou_qian", "dingtalk": "0301", "wecom": "QianQi"}, "钱七", ["cs"], status="left"
        ),
        OrgPerson(
            {"feishu": "ou_sun", "dingtalk": "0302", "wecom": "SunBa"}, "孙八", ["cs"], status="disabled"
        ),
    ]
    people += [
        OrgPerson({"feishu": f"ou_cs{n}", "dingtalk": f"9{n:03}", "wecom": f"Cs{n}"}, f"客服{n}", ["cs"])
        for n in range(size)
    ]
    depts = [Dept("ops", "运营部"), Dept("design", "设计组", parent="ops"), Dept("cs", "客服部")]
    return Org(departments=depts, people=people)


@contextmanager
def _served(platform: str, org: Org) -> Iterator[tuple[Any, BotConfig, Any]]:
    """The platform's fake with ``org`` served: (fake, bot config, the bot's adapter)."""
    http = requests.Session()
    deps = Deps(http=http, clock=lambda: datetime.now(UTC), sessions=None)  # type: ignore[arg-type]
    if platform == "feishu":
        fake: Any = FakeFeishu()
        serve_directory(fake, org)
        with fake.running():
            bot = feishu_bot(fake.base_url)
            yield fake, bot, build(bot, deps)
        return
    if platform == "dingtalk":
        fake = FakeDingTalk(lambda: datetime.now(UTC))
        plain = {"app_key": fake.app_key, "robot_code": fake.robot_code}
        secrets = {"app_secret": Secret(fake.app_secret)}
    else:
        fake = FakeWeCom()
        plain = {"corp_id": fake.corp_id, "agent_id": fake.agent_id}
        secrets = {"secret": Secret(fake.secret)}
    serve_directory(fake, org)
    fake.start()
    try:
        bot = BotConfig(
            f"{platform}-main", platform, {**plain, "api_base": fake.url, "oapi_base": fake.url}, secrets
        )
        yield fake, bot, build(bot, deps)
    finally:
        fake.stop()


def _read(platform: str, org: Org) -> list[Member]:
    with _served(platform, org) as (_fake, bot, adapter):
        return read_directory(bot, requests.Session(), adapter)


@pytest.fixture(params=["feishu", "dingtalk", "wecom"])
def platform(request: pytest.FixtureRequest) -> str:
    return request.param


def test_every_member_once_with_their_departments_and_whether_they_are_still_here(platform):
    members = {m.name: m for m in _read(platform, _org())}
    ids = {"feishu": "ou_han", "dingtalk": "0103", "wecom": "HanMeimei"}[platform]
    assert members["韩梅梅"].external_id == ids
    assert set(members["韩梅梅"].departments) == {"设计组", "运营部"}
    assert members["李雷"].departments == ("运营部",) and members["王芳"].departments == ("客服部",)
    assert members["李雷"].active and members["王芳"].active
    if platform == "dingtalk":  # DingTalk lists no leavers, and has no disabled state to say
        assert "钱七" not in members and members["孙八"].active
        assert members["李雷"].union_id == "u-lilei"
    else:
        assert not members["钱七"].active and not members["孙八"].active
    assert "老板" in members  # directly under the root


def test_pages_are_followed_past_the_platforms_page_size(platform):
    members = _read(platform, _org(size=130))  # Feishu pages by 50, DingTalk by 100
    assert len({m.external_id for m in members}) == len(members)
    assert sum(1 for m in members if m.name.startswith("客服")) == 130


@pytest.mark.parametrize(
    "platform, words",
    [
        (
            "feishu",
            "飞书拒绝了读取通讯录：请在开放平台给应用开通通讯录读取权限，并把可见范围设为需要的部门（错误码 40004）。",
        ),
        (
            "dingtalk",
            "钉钉拒绝了读取通讯录：请在开放平台给应用开通通讯录读取权限，并把可见范围设为需要的部门（错误码 88）。",
        ),
        (
            "wecom",
            "企业微信拒绝了读取通讯录：请在开放平台给应用开通通讯录读取权限，并把可见范围设为需要的部门（错误码 60011）。",
        ),
    ],
)
def test_no_contacts_permission_is_said_with_what_to_grant(platform, words):
    org = _org()
    org.denied = True
    with pytest.raises(DirectoryError) as info:
        _read(platform, org)
    assert info.value.text == words


@pytest.mark.parametrize("platform, code", [("feishu", 99991400), ("dingtalk", 90002), ("wecom", 45009)])
def test_a_rate_limit_says_try_again_later(platform, code):
    org = _org()
    org.limited = 1
    with pytest.raises(DirectoryError) as info:
        _read(platform, org)
    assert f"限制了调用频率，请过几分钟再拉取（错误码 {code}）" in info.value.text


def test_a_token_the_platform_refuses_is_fetched_again_once(platform):
    org = _org()
    with _served(platform, org) as (fake, bot, adapter):
        read_directory(bot, requests.Session(), adapter)
        fake.tokens.clear()  # every token the platform gave is now refused (revoked or expired early)
        again = read_directory(bot, requests.Session(), adapter)
    assert {m.name for m in again} >= {"李雷", "韩梅梅", "王芳"}


def test_the_simulator_has_no_directory():
    bot = BotConfig("sim", "simulator", {}, {})
    with pytest.raises(DirectoryError) as info:
        read_directory(bot, requests.Session(), object())
    assert info.value.text == "这个机器人还没有配置应用凭证，无法读取通讯录。"


def test_the_requests_are_the_documented_ones():
    """Feishu: the tree with fetch_child and page_size ≤ 50; each department's own members by open_id."""
    org = _org()
    _read("feishu", org)
    paths = [(path, args) for path, args in org.calls]
    first_path, first_args = paths[0]
    assert first_path == "/open-apis/contact/v3/departments/0/children"
    assert first_args == {
        "fetch_child": "true",
        "department_id_type": "open_department_id",
        "page_size": "50",
    }
    asked = sorted(args["department_id"] for path, args in paths if path.endswith("find_by_department"))
    assert asked == ["0", "od-cs", "od-design", "od-ops"]


def test_an_empty_directory_is_refused_not_stored(platform):
    """A narrowed visible range reads as nobody: stored, it would flag everyone as gone."""
    with pytest.raises(DirectoryError) as info:
        _read(platform, Org(departments=[Dept("ops", "运营部")], people=[]))
    assert info.value.text == "通讯录里没有任何人：请检查应用的通讯录权限范围（可见范围）是否包含需要的部门。"
