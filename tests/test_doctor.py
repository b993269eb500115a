"""`planloop doctor` against fake tenants on real sockets, one planted misconfiguration per row.

Each row asserts the exact failing line(s) (and that nothing else fails) and the exit code.
The fakes are tests/fakes/{feishu,dingtalk,wecom}.py with the doctor's endpoints layered on by
tests/fakes/tenants.py. A stream row plants a stand-in client module, since the platform clients
live in their own branch; it dials the fake DingTalk gateway the way the real client does.
"""

from __future__ import annotations

import io
import sys
import threading
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.config import BotConfig, Secret, Settings
from bot.doctor.runner import run
from bot.doctor.texts import EN, ZH
from storage.models import Identity, Person, Team
from tests.conftest import TEST_KEY
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.feishu import FakeFeishu
from tests.fakes.feishu import bot_config as feishu_bot
from tests.fakes.tenants import DingTalkTenant, FeishuTenant, WeComTenant
from tests.fakes.wecom import FakeWeCom

PUBLIC = "https://planloop.example.com"
FEISHU_APP = "https://open.feishu.cn/app/cli_fake_app"
DING = "https://open-dev.dingtalk.com"


@dataclass
class Run:
    code: int
    output: str

    @property
    def lines(self) -> list[str]:
        return [line.strip() for line in self.output.splitlines() if line.strip()]

    @property
    def failures(self) -> list[str]:
        return [line for line in self.lines if line.startswith("✗")]


def doctor(engine, clock, bot: BotConfig, **kwargs: Any) -> Run:  # noqa: ANN001
    from bot.services import build_services

    settings = Settings(
        database_url="sqlite://",
        public_url=kwargs.pop("public_url", PUBLIC),
        secret_keys=(Secret(TEST_KEY),),
        bots=(bot,),
        locale=kwargs.pop("locale", "zh-CN"),
    )
    services = build_services(settings, clock=clock, engine=engine)
    out = io.StringIO()
    code = run(settings, services, out=out, stream_timeout=kwargs.pop("stream_timeout", 3.0), **kwargs)
    return Run(code, out.getvalue())


def seed(db, bot_id: str, chat_id: str, people: dict[str, tuple[str, str]]) -> None:  # noqa: ANN001
    """Team 运营组 whose group chat is on ``bot_id``; ``people``: person id -> (name, platform id)."""
    with db() as s, s.begin():
        s.add(Team(id="ops", name="运营组", chat_bot=bot_id, chat_id=chat_id))
        s.flush()
        for pid, (name, external) in people.items():
            s.add(Person(id=pid, name=name, team_id="ops", role="operations"))
            s.flush()
            s.add(Identity(bot_id=bot_id, external_id=external, person_id=pid))


# ---------------------------------------------------------------- Feishu


@pytest.fixture
def feishu() -> Iterator[tuple[FakeFeishu, FeishuTenant]]:
    fake = FakeFeishu()
    tenant = FeishuTenant(fake)
    tenant.chats["oc_team"] = True
    tenant.users |= {"ou_lilei", "ou_hanmeimei"}
    with fake.running():
        yield fake, tenant


FEISHU_PEOPLE = {"lilei": ("李雷", "ou_lilei"), "hanmeimei": ("韩梅梅", "ou_hanmeimei")}


def test_feishu_all_pass_prints_the_whole_checklist(db, engine, clock, feishu):
    fake, _tenant = feishu
    seed(db, "feishu-main", "oc_team", FEISHU_PEOPLE)
    result = doctor(engine, clock, feishu_bot(fake.base_url, timeout=1))
    assert result.code == 0
    assert result.lines == [
        "feishu-main（飞书，回调模式）",
        "✓ 凭证：tenant_access_token 获取成功",
        "✓ 权限 im:message：已开通",
        "✓ 权限 im:message:send_as_bot：已开通",
        "✓ 权限 contact:user.id:readonly：已开通",
        '– 长连接：回调模式，不使用长连接（connection = "webhook"）',
        "? 回调地址：无法从服务器内部确认外网能否访问，请自己在外网打开确认："
        f"{PUBLIC}/webhooks/feishu/feishu-main → 把地址填到 开发者后台 {FEISHU_APP} › 开发配置 › 事件与回调 › "
        "请求地址（事件配置和回调配置各一处）",
        "✓ 群 运营组（oc_team）：群存在，机器人在群里",
        "✓ 成员 ID：2 人的 ID 都能找到",
        "6 项通过、0 项未通过、1 项不适用、1 项需自己确认",
    ]


def _feishu_bad_secret(fake: FakeFeishu, tenant: FeishuTenant) -> None:
    fake.app_secret = "a-rotated-secret"


FEISHU_ROWS: list[tuple[str, Callable[[FakeFeishu, FeishuTenant], None], list[str]]] = [
    (
        "bad secret",
        _feishu_bad_secret,
        [
            f"✗ 凭证：飞书拒绝：10014 app secret invalid → 核对开发者后台 {FEISHU_APP} › 凭证与基础信息 的 App ID 和 App Secret"
        ],
    ),
    (
        "scope not requested",
        lambda f, t: t.scopes.pop("im:message:send_as_bot"),
        [
            f"✗ 权限 im:message:send_as_bot：没有申请 → 开发者后台 {FEISHU_APP} › 开发配置 › 权限管理 开通，"
            "然后在 版本管理与发布 发布新版本"
        ],
    ),
    (
        "scope not granted",
        lambda f, t: t.scopes.update({"contact:user.id:readonly": 2}),
        [
            "✗ 权限 contact:user.id:readonly：已申请，但还没有授权 → 请企业管理员在 飞书管理后台 › 工作台 › 应用审核 通过，"
            f"或在 {FEISHU_APP} › 版本管理与发布 重新发布"
        ],
    ),
    (
        "unknown group",
        lambda f, t: t.chats.clear(),
        [
            "✗ 群 运营组（oc_team）：找不到这个群（232006） → 改团队文件 teams.chat.chat_id（oc_ 开头），再运行 planloop apply"
        ],
    ),
    (
        "bot not in group",
        lambda f, t: t.chats.update({"oc_team": False}),
        [
            "✗ 群 运营组（oc_team）：群存在，但机器人不在群里 → 在飞书群 设置 › 群机器人 › 添加机器人 里加上这个应用的机器人"
        ],
    ),
    (
        "bot ability off",
        lambda f, t: setattr(t, "bot_ability", False),
        [
            f"✗ 群 运营组（oc_team）：应用没有开启机器人能力（232025） → 开发者后台 {FEISHU_APP} › 添加应用能力 › 机器人，"
            "然后发布新版本"
        ],
    ),
    (
        "unknown person id",
        lambda f, t: t.users.discard("ou_hanmeimei"),
        [
            "✗ 成员 韩梅梅（ou_hanmeimei）：找不到这个 ID（飞书拒绝：41012 user id invalid error） → "
            "改团队文件 people.ids 里的 ID，再运行 planloop apply"
        ],
    ),
    (
        "person outside the contact range",
        lambda f, t: t.outside_range.add("ou_lilei"),
        [
            f"✗ 成员 李雷（ou_lilei）：不在应用的通讯录权限范围内（41050） → 开发者后台 {FEISHU_APP} › 开发配置 › 权限管理 › "
            "数据权限 › 通讯录权限范围 加上此人，然后发布新版本"
        ],
    ),
    (
        "no scope to read contacts",
        lambda f, t: t.scopes.pop("contact:contact.base:readonly"),
        [
            "✗ 成员 ID：缺少权限 contact:contact.base:readonly, contact:contact:access_as_app, contact:contact:readonly, "
            f"contact:contact:readonly_as_app（99991672） → 开发者后台 {FEISHU_APP} › 开发配置 › 权限管理 开通，"
            "然后在 版本管理与发布 发布新版本"
        ],
    ),
    (
        "rate limited",
        lambda f, t: f.fail_next("/open-apis/auth/v3/tenant_access_token", status=429, reset=3),
        ["✗ 凭证：飞书限流（HTTP 429，3 秒后可重试），稍后再运行一次"],
    ),
    (
        "server error",
        lambda f, t: f.fail_next(
            "/open-apis/auth/v3/tenant_access_token", status=503, code=1, msg="busy", reset=None
        ),
        ["✗ 凭证：飞书服务端出错（HTTP 503），稍后再运行一次"],
    ),
]


@pytest.mark.parametrize(
    "plant, expected", [row[1:] for row in FEISHU_ROWS], ids=[row[0] for row in FEISHU_ROWS]
)
def test_feishu_names_each_planted_misconfiguration(db, engine, clock, feishu, plant, expected):
    fake, tenant = feishu
    seed(db, "feishu-main", "oc_team", FEISHU_PEOPLE)
    plant(fake, tenant)
    result = doctor(engine, clock, feishu_bot(fake.base_url, timeout=1))
    assert result.code == 1
    assert result.failures == expected


def test_feishu_a_timeout_is_a_line_not_a_traceback(db, engine, clock, feishu):
    fake, _tenant = feishu
    fake.fail_next(
        "/open-apis/auth/v3/tenant_access_token", status=200, code=0, msg="ok", delay=1.5, reset=None
    )
    result = doctor(engine, clock, feishu_bot(fake.base_url, timeout=0.5))
    host = fake.base_url.removeprefix("http://")
    assert result.code == 1
    assert result.failures == [
        f"✗ 凭证：飞书（{host}）0.5 s 内没有回答，稍后再运行一次；一直超时请检查本机到 {host} 的网络和代理"
    ]
    assert "– 其余检查：凭证没有通过，已跳过" in result.lines


def test_feishu_checklist_in_english_follows_the_server_locale(db, engine, clock, feishu):
    fake, tenant = feishu
    seed(db, "feishu-main", "oc_team", FEISHU_PEOPLE)
    tenant.chats["oc_team"] = False
    result = doctor(engine, clock, feishu_bot(fake.base_url, timeout=1), locale="en-US")
    assert result.failures == [
        "✗ group 运营组 (oc_team): the group exists but the bot is not in it → "
        "add the app's bot in the Feishu group's Settings › Bots › Add Bot"
    ]
    assert result.lines[-1] == "5 passed, 1 failed, 1 not applicable, 1 to confirm by hand"


def test_a_loopback_public_url_fails_the_webhook_line(db, engine, clock, feishu):
    fake, _tenant = feishu
    result = doctor(engine, clock, feishu_bot(fake.base_url, timeout=1), public_url="http://127.0.0.1:8000")
    assert result.failures == [
        "✗ 回调地址：public_url 的主机 127.0.0.1 是本机或内网地址，平台从外网访问不到 → "
        "在 planloop.toml 的 [server] public_url 填平台能从外网访问的地址"
    ]


# ---------------------------------------------------------------- DingTalk

GROUP = "cidTeamOps=="
DING_PEOPLE = {"lilei": ("李雷", "staff-lilei"), "hanmeimei": ("韩梅梅", "staff-hanmeimei")}
ROUTE_URL = f"{PUBLIC}/webhooks/dingtalk/dingtalk-main/card"


@pytest.fixture
def dingtalk() -> Iterator[tuple[FakeDingTalk, DingTalkTenant]]:
    fake = FakeDingTalk(lambda: datetime.now(UTC))
    tenant = DingTalkTenant(fake)
    tenant.groups[GROUP] = [fake.robot_code]
    tenant.users |= {"staff-lilei", "staff-hanmeimei"}
    fake.start()
    yield fake, tenant
    fake.stop()


def ding_bot(fake: FakeDingTalk, **values: Any) -> BotConfig:
    plain = {
        "app_key": fake.app_key,
        "robot_code": fake.robot_code,
        "api_base": fake.url,
        "oapi_base": fake.url,
        "card_template_id": "tpl-plan.schema",
        "card_callback_route_key": "planloop-cards",
        "connection": "webhook",
        "timeout": 1,
        **values,
    }
    secrets = {"app_secret": Secret(fake.app_secret), "card_callback_secret": Secret("card-callback-secret")}
    return BotConfig("dingtalk-main", "dingtalk", plain, secrets)


UNREGISTERED = (
    "✗ 卡片回调路由：没有注册记录：钉钉没有查询注册的接口，无法确认路由 planloop-cards 是否已注册 → "
    "运行 planloop doctor --fix 注册（可以重复运行）"
)

DING_ROWS: list[tuple[str, Callable[[FakeDingTalk, DingTalkTenant], None], list[str]]] = [
    (
        "bad secret",
        lambda f, t: setattr(f, "app_secret", "rotated"),
        [
            "✗ 凭证：钉钉拒绝：invalidClientIdOrSecret 无效的clientId或者clientSecret → "
            f"核对开发者后台 {DING} › 应用 › 凭证与基础信息 的 Client ID（AppKey）和 Client Secret"
        ],
    ),
    (
        "missing Card.Streaming.Write",
        lambda f, t: t.granted.discard("Card.Streaming.Write"),
        [
            f"✗ 权限 Card.Streaming.Write：缺少权限 Card.Streaming.Write → 开发者后台 {DING} › 应用 › 开发配置 › 权限管理 "
            "搜索 Card.Streaming.Write 申请开通（已开通应用需管理员重新授权）"
        ],
    ),
    (
        "missing Card.Instance.Write",
        lambda f, t: t.granted.discard("Card.Instance.Write"),
        [
            f"✗ 权限 Card.Instance.Write：缺少权限 Card.Instance.Write → 开发者后台 {DING} › 应用 › 开发配置 › 权限管理 "
            "搜索 Card.Instance.Write 申请开通（已开通应用需管理员重新授权）"
        ],
    ),
    (
        "missing robot permission",
        lambda f, t: t.granted.discard("qyapi_robot_sendmsg"),
        [
            f"✗ 机器人：缺少权限 qyapi_robot_sendmsg → 开发者后台 {DING} › 应用 › 开发配置 › 权限管理 "
            "搜索 qyapi_robot_sendmsg 申请开通（已开通应用需管理员重新授权）",
            f"✗ 群 运营组（{GROUP}）：缺少权限 qyapi_robot_sendmsg → 开发者后台 {DING} › 应用 › 开发配置 › 权限管理 "
            "搜索 qyapi_robot_sendmsg 申请开通（已开通应用需管理员重新授权）",
        ],
    ),
    (
        "unregistered card route",
        lambda f, t: None,
        [UNREGISTERED],
    ),
    (
        "unknown group",
        lambda f, t: t.groups.clear(),
        [
            f"✗ 群 运营组（{GROUP}）：找不到这个群（钉钉拒绝：invalid.openConversationId 无效的openConversationId） → "
            "改团队文件 teams.chat.chat_id，再运行 planloop apply"
        ],
    ),
    (
        "bot not in group",
        lambda f, t: t.groups.update({GROUP: ["dingsomeotherbot"]}),
        [
            f"✗ 群 运营组（{GROUP}）：群存在，但机器人不在群里 → 在钉钉群 设置 › 机器人 › 添加机器人 里加上这个应用的机器人"
        ],
    ),
    (
        "rate limited",
        lambda f, t: f.fail_next(
            "/v1.0/oauth2/accessToken",
            403,
            {"code": "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", "message": "调用频率超限"},
        ),
        ["✗ 凭证：钉钉限流（Forbidden.AccessDenied.QpsLimitForAppkeyAndApi），稍后再运行一次"],
    ),
    (
        "unknown person id",
        lambda f, t: t.users.discard("staff-hanmeimei"),
        [
            "✗ 成员 韩梅梅（staff-hanmeimei）：找不到这个 ID（钉钉拒绝：60121 找不到该用户） → "
            "改团队文件 people.ids 里的 ID，再运行 planloop apply"
        ],
    ),
]


@pytest.mark.parametrize("plant, expected", [row[1:] for row in DING_ROWS], ids=[row[0] for row in DING_ROWS])
def test_dingtalk_names_each_planted_misconfiguration(db, engine, clock, dingtalk, plant, expected):
    fake, tenant = dingtalk
    seed(db, "dingtalk-main", GROUP, DING_PEOPLE)
    if expected != [UNREGISTERED]:
        assert doctor(engine, clock, ding_bot(fake), fix=True).code == 0  # the route is registered first
    bot = ding_bot(fake)
    plant(fake, tenant)
    result = doctor(engine, clock, bot)
    assert result.code == 1
    assert result.failures == expected


def test_dingtalk_fix_registers_the_card_route_and_is_idempotent(db, engine, clock, dingtalk):
    fake, tenant = dingtalk
    seed(db, "dingtalk-main", GROUP, DING_PEOPLE)
    before = doctor(engine, clock, ding_bot(fake))
    assert (before.code, before.failures, tenant.registrations) == (1, [UNREGISTERED], {})

    fixed = doctor(engine, clock, ding_bot(fake), fix=True)
    assert fixed.code == 0
    assert f"✓ 卡片回调路由：已注册路由 planloop-cards → {ROUTE_URL}" in fixed.lines
    assert tenant.registrations == {"planloop-cards": {"url": ROUTE_URL, "secret": "card-callback-secret"}}

    again = doctor(engine, clock, ding_bot(fake), fix=True)
    assert again.code == 0
    assert tenant.register_calls == 2 and len(tenant.registrations) == 1

    after = doctor(engine, clock, ding_bot(fake))
    assert after.code == 0
    assert (
        f"✓ 卡片回调路由：路由 planloop-cards → {ROUTE_URL} 已于 2026-11-23 10:00 由 doctor --fix 注册"
        "（钉钉没有查询接口，这是本服务的记录）"
    ) in after.lines

    moved = doctor(engine, clock, ding_bot(fake), public_url="https://new.example.com")
    assert moved.failures == [
        "✗ 卡片回调路由：路由 planloop-cards 注册后回调地址或密钥变了 → 运行 planloop doctor --fix 注册（可以重复运行）"
    ]


def test_dingtalk_without_cards_skips_card_checks(db, engine, clock, dingtalk):
    fake, _tenant = dingtalk
    result = doctor(engine, clock, ding_bot(fake, card_template_id=""))
    assert result.code == 0
    assert "– 权限 Card.Instance.Write：没有配置 card_template_id，不发互动卡片" in result.lines
    assert "– 卡片回调路由：没有配置 card_template_id，不发互动卡片" in result.lines
    assert "– 成员 ID：团队文件里没有人用这个机器人的 ID" in result.lines


# ---------------------------------------------------------------- DingTalk long connection


class GatewayClient:
    """A stand-in for bot/platforms/dingtalk_stream.py (built in its own branch): it asks the fake
    gateway for an endpoint as dingtalk-stream does (``POST /v1.0/gateway/connections/open``)."""

    def __init__(self, bot: BotConfig, deps: Any, platform: Any):
        self.bot, self.deps = bot, deps
        self.bot_id, self.platform = bot.id, "dingtalk"

    def run(self, handle: Any, stop: threading.Event, on_connected: Callable[[], None]) -> None:
        from bot.platforms.stream import StreamAuthError, StreamError

        resp = self.deps.http.post(
            f"{self.bot.get('api_base')}/v1.0/gateway/connections/open",
            json={
                "clientId": self.bot.get("app_key"),
                "clientSecret": self.bot.secret("app_secret"),
                "subscriptions": [{"type": "CALLBACK", "topic": "/v1.0/im/bot/messages/get"}],
                "ua": "planloop-test",
            },
            timeout=5,
        )
        body = resp.json()
        if resp.status_code in (401, 403):
            raise StreamAuthError(body.get("message", ""), code=body.get("code", ""))
        if resp.status_code != 200:
            raise StreamError(body.get("message", ""), code=body.get("code", ""))
        on_connected()
        stop.wait(5)


@pytest.fixture
def stream_client(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("bot.platforms.dingtalk_stream")
    module.build = GatewayClient  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bot.platforms.dingtalk_stream", module)


STREAM_FIX = f"开发者后台 {DING} › 应用 › 机器人 › 消息接收模式 选 Stream 模式，并发布"


@pytest.mark.usefixtures("stream_client")
def test_dingtalk_stream_connects_and_closes(db, engine, clock, dingtalk):
    fake, _tenant = dingtalk
    result = doctor(engine, clock, ding_bot(fake, connection="stream"))
    assert result.code == 0
    stream = next(line for line in result.lines if line.startswith("✓ 长连接："))
    assert stream.endswith("秒内连上，已断开")
    assert "– 回调地址：长连接模式不需要公网回调地址" in result.lines
    assert "– 卡片回调路由：长连接模式下卡片回调走 Stream，不需要注册 HTTP 路由" in result.lines


@pytest.mark.usefixtures("stream_client")
def test_dingtalk_stream_refused_names_the_platform_error(db, engine, clock, dingtalk):
    fake, tenant = dingtalk
    tenant.gateway_refusal = (403, "Forbidden.StreamNotOpen", "应用未开启 Stream 模式")
    result = doctor(engine, clock, ding_bot(fake, connection="stream"))
    assert result.code == 1
    assert result.failures == [
        f"✗ 长连接：平台拒绝了凭证：应用未开启 Stream 模式 (Forbidden.StreamNotOpen) → {STREAM_FIX}"
    ]


@pytest.mark.usefixtures("stream_client")
def test_dingtalk_stream_that_never_opens_times_out(db, engine, clock, dingtalk):
    fake, tenant = dingtalk
    tenant.gateway_delay = 2.0
    result = doctor(engine, clock, ding_bot(fake, connection="stream"), stream_timeout=0.5)
    assert result.failures == [f"✗ 长连接：0.5 秒内没有连上 → {STREAM_FIX}"]


def test_a_missing_stream_client_is_reported_not_available(db, engine, clock, dingtalk, monkeypatch):
    fake, _tenant = dingtalk
    monkeypatch.setitem(sys.modules, "bot.platforms.dingtalk_stream", None)  # import fails as if absent
    result = doctor(engine, clock, ding_bot(fake, connection="stream"))
    assert result.code == 0
    assert "– 长连接：这个版本还没有钉钉长连接客户端，无法检查" in result.lines


# ---------------------------------------------------------------- WeCom

WECOM_PEOPLE = {"lilei": ("李雷", "LiLei"), "hanmeimei": ("韩梅梅", "HanMeimei")}
UNTRUSTED = "企业微信拒绝本机出口 IP 127.0.0.1（60020） → 管理后台 应用管理 › 应用 › 开发者接口 › 企业可信IP 加上这个 IP"


@pytest.fixture
def wecom() -> Iterator[tuple[FakeWeCom, WeComTenant]]:
    fake = FakeWeCom()
    tenant = WeComTenant(fake)
    fake.chats.add("wrTeam")
    fake.start()
    yield fake, tenant
    fake.stop()


def wecom_bot(fake: FakeWeCom, **values: Any) -> BotConfig:
    plain = {"corp_id": fake.corp_id, "agent_id": fake.agent_id, "api_base": fake.url, "timeout": 1, **values}
    secrets = {"secret": Secret(fake.secret), "token": Secret(fake.token), "aes_key": Secret(fake.aes_key)}
    return BotConfig("wecom-main", "wecom", plain, secrets)


WECOM_ROWS: list[tuple[str, Callable[[FakeWeCom, WeComTenant], None], list[str]]] = [
    (
        "bad secret",
        lambda f, t: setattr(f, "secret", "rotated"),
        [
            "✗ 凭证：企业微信拒绝：40001 invalid credential → 核对管理后台 我的企业 › 企业ID（corp_id）和 "
            "应用管理 › 应用 › Secret（secret）"
        ],
    ),
    (
        "untrusted IP",
        lambda f, t: setattr(t, "trusted", False),
        [f"✗ 可信 IP：{UNTRUSTED}", f"✗ 群 运营组（wrTeam）：{UNTRUSTED}", f"✗ 成员 ID：{UNTRUSTED}"],
    ),
    (
        "visible range excludes a person",
        lambda f, t: setattr(t, "visible", {"LiLei"}),
        [
            "✗ 成员 韩梅梅（HanMeimei）：不在应用的可见范围内（60011） → 管理后台 应用管理 › 应用 › 可见范围 加上此人或其部门"
        ],
    ),
    (
        "unknown group",
        lambda f, t: f.chats.clear(),
        [
            "✗ 群 运营组（wrTeam）：找不到这个群（86003） → 改团队文件 teams.chat.chat_id，再运行 planloop apply"
        ],
    ),
    (
        "group not the app's",
        lambda f, t: (f.chats.clear(), t.foreign_chats.add("wrTeam")),
        [
            "✗ 群 运营组（wrTeam）：群存在，但不是本应用创建的，应用不能在里面发消息（86008） → "
            "企业微信应用只能往自己创建的群聊发消息：用应用建群，或给团队配群机器人 webhook"
        ],
    ),
    (
        "unknown person id",
        lambda f, t: f.users.discard("HanMeimei"),
        [
            "✗ 成员 韩梅梅（HanMeimei）：找不到这个 ID（企业微信拒绝：60111 userid not found） → "
            "改团队文件 people.ids 里的 ID，再运行 planloop apply"
        ],
    ),
    (
        "rate limited",
        lambda f, t: f.fail_next("gettoken", errcode=45009),
        ["✗ 凭证：企业微信限流（45009），稍后再运行一次"],
    ),
    (
        "bad gateway",
        lambda f, t: f.fail_next("gettoken", status=502),
        ["✗ 凭证：企业微信服务端出错（HTTP 502），稍后再运行一次"],
    ),
]


@pytest.mark.parametrize(
    "plant, expected", [row[1:] for row in WECOM_ROWS], ids=[row[0] for row in WECOM_ROWS]
)
def test_wecom_names_each_planted_misconfiguration(db, engine, clock, wecom, plant, expected):
    fake, tenant = wecom
    seed(db, "wecom-main", "wrTeam", WECOM_PEOPLE)
    bot = wecom_bot(fake)
    plant(fake, tenant)
    result = doctor(engine, clock, bot)
    assert result.code == 1
    assert result.failures == expected


def test_wecom_all_pass_shows_the_visible_range(db, engine, clock, wecom):
    fake, tenant = wecom
    seed(db, "wecom-main", "wrTeam", WECOM_PEOPLE)
    tenant.visible = {"LiLei", "HanMeimei"}
    result = doctor(engine, clock, wecom_bot(fake))
    assert result.code == 0
    assert result.lines[:4] == [
        "wecom-main（企业微信，回调模式）",
        "✓ 凭证：access_token 获取成功",
        "✓ 可信 IP：接口调用被接受",
        "✓ 可见范围：2 人、0 个部门、0 个标签",
    ]
    assert "✓ 成员 ID：2 人的 ID 都能找到" in result.lines


def test_wecom_ai_bot_alone_says_what_cannot_be_checked(db, engine, clock, monkeypatch):
    monkeypatch.setitem(sys.modules, "bot.platforms.wecom_stream", None)
    secrets = {"bot_secret": Secret("s"), "token": Secret("t"), "aes_key": Secret("a" * 43)}
    bot = BotConfig("wecom-ai", "wecom", {"bot_id": "aib-1", "connection": "stream"}, secrets)
    result = doctor(engine, clock, bot)
    assert result.code == 0
    assert result.lines[1:6] == [
        "– 凭证：只配置了智能机器人（bot_id），凭证由长连接检查",
        "– 长连接：这个版本还没有企业微信长连接客户端，无法检查",
        "– 回调地址：长连接模式不需要公网回调地址",
        "? 群：智能机器人没有查询所在群的接口，无法检查 → 在企业微信群 设置 › 群机器人 › 添加 里确认加了这个智能机器人",
        "– 成员 ID：没有配置企业应用（corp_id / secret），无法查询通讯录",
    ]


# ---------------------------------------------------------------- catalogue and CLI


def test_both_catalogues_have_the_same_keys_and_placeholders():
    import string

    def fields(text: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}

    assert set(ZH) == set(EN)
    assert {k: fields(v) for k, v in ZH.items()} == {k: fields(v) for k, v in EN.items()}


def test_cli_doctor_exit_codes(tmp_path, feishu, capsys):
    from bot.cli.commands import main

    fake, _tenant = feishu
    config = tmp_path / "planloop.toml"
    config.write_text(
        f'[server]\ndatabase_url = "sqlite:///{tmp_path}/p.db"\npublic_url = "{PUBLIC}"\n\n'
        f'[[bots]]\nid = "feishu-main"\nplatform = "feishu"\napp_id = "cli_fake_app"\n'
        f'app_secret = "fake-app-secret"\napi_base = "{fake.base_url}"\ntimeout = 1\n',
        encoding="utf-8",
    )
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "doctor"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "4 项通过、0 项未通过、2 项不适用、1 项需自己确认"
    fake.app_secret = "rotated"
    assert main(["--config", str(config), "doctor", "--bot", "feishu-main"]) == 1
    assert main(["--config", str(config), "doctor", "--bot", "nope"]) == 2
    assert "planloop.toml 里没有 id 为 nope 的机器人（已配置：feishu-main）" in capsys.readouterr().out
