"""The directory fakes read by the platforms' official SDKs, not by our code: lark-oapi (Feishu
contact v3) and wechatpy (WeCom department/user list) get the same members from them that
bot/platforms/directory.py does. A fake that only mirrored our own reading would fail here."""

from __future__ import annotations

from datetime import UTC, datetime

import requests

from bot.config import BotConfig, Secret
from bot.platforms import build
from bot.platforms.base import Deps
from bot.platforms.directory import read_directory
from tests.fakes.directory import serve_directory
from tests.fakes.feishu import FakeFeishu
from tests.fakes.feishu import bot_config as feishu_bot
from tests.fakes.wecom import FakeWeCom
from tests.test_directory_read import _org


def _ours(bot: BotConfig) -> dict[str, tuple[str, bool]]:
    deps = Deps(http=requests.Session(), clock=lambda: datetime.now(UTC), sessions=None)  # type: ignore[arg-type]
    return {m.external_id: (m.name, m.active) for m in read_directory(bot, deps.http, build(bot, deps))}


def test_lark_oapi_reads_the_feishu_fake_as_we_do():
    import lark_oapi as lark
    from lark_oapi.api.contact.v3 import ChildrenDepartmentRequest, FindByDepartmentUserRequest

    fake = FakeFeishu()
    serve_directory(fake, _org(size=60))  # past one 50-row page
    with fake.running():
        client = (
            lark.Client.builder().app_id(fake.app_id).app_secret(fake.app_secret).domain(fake.base_url)
            .log_level(lark.LogLevel.ERROR).build()
        )  # fmt: skip
        depts = client.contact.v3.department.children(
            ChildrenDepartmentRequest.builder().department_id(0).fetch_child(True).page_size(50).build()
        )
        assert depts.code == 0, depts.msg
        sdk: dict[str, tuple[str, bool]] = {}
        for dept in ["0", *(d.open_department_id for d in depts.data.items)]:
            token = None
            while True:
                ask = (
                    FindByDepartmentUserRequest.builder()
                    .department_id(dept)
                    .user_id_type("open_id")
                    .page_size(50)
                )
                answer = client.contact.v3.user.find_by_department(
                    (ask.page_token(token) if token else ask).build()
                )
                assert answer.code == 0, answer.msg
                for user in answer.data.items or []:
                    gone = user.status.is_resigned or user.status.is_frozen or user.status.is_exited
                    sdk[user.open_id] = (user.name, not gone)
                if not answer.data.has_more:
                    break
                token = answer.data.page_token
        ours = _ours(feishu_bot(fake.base_url))
    assert len(sdk) == 66 and sdk == ours


def test_wechatpy_reads_the_wecom_fake_as_we_do():
    from wechatpy.enterprise import WeChatClient

    fake = FakeWeCom()
    serve_directory(fake, _org())
    fake.start()
    try:
        token = requests.get(
            f"{fake.url}/cgi-bin/gettoken",
            params={"corpid": fake.corp_id, "corpsecret": fake.secret},
            timeout=5,
        ).json()["access_token"]
        client = WeChatClient(fake.corp_id, fake.secret, access_token=token)
        client.API_BASE_URL = f"{fake.url}/cgi-bin/"
        sdk = {
            user["userid"]: (user["name"], user["status"] not in (2, 5))  # 1 active, 4 not yet activated
            for dept in client.department.get()
            for user in client.user.list(dept["id"])
        }
        plain = {"corp_id": fake.corp_id, "agent_id": fake.agent_id, "api_base": fake.url}
        ours = _ours(BotConfig("wecom-main", "wecom", plain, {"secret": Secret(fake.secret)}))
    finally:
        fake.stop()
    assert len(sdk) == 6 and sdk == ours
