"""planloop.toml: defaults, secret references, and one clear line per problem."""

from __future__ import annotations

import pytest

from bot.config import ConfigError, Secret, find_config, load, parse

AES = "a" * 43


def test_defaults_are_asia_shanghai_and_chinese():
    s = parse({}, env={})
    assert (s.timezone, s.locale, s.simulator, s.database_url) == (
        "Asia/Shanghai",
        "zh-CN",
        False,
        "sqlite:///planloop.db",
    )


def test_secret_references_resolve_from_env_and_file(tmp_path):
    secret_file = tmp_path / "sec"
    secret_file.write_text("from-file\n")
    s = parse(
        {
            "server": {"secret_key": "env:KEY"},
            "bots": [
                {
                    "id": "fs",
                    "platform": "feishu",
                    "app_id": "cli_1",
                    "app_secret": f"file:{secret_file}",
                    "encrypt_key": "literal-ek",
                },
            ],
        },
        env={"KEY": "k1, k2"},
    )
    assert [k.get() for k in s.secret_keys] == ["k1", "k2"]
    bot = s.bot("fs")
    assert bot.secret("app_secret") == "from-file" and bot.secret("encrypt_key") == "literal-ek"
    assert bot.get("api_base") == "https://open.feishu.cn"
    assert "from-file" not in repr(bot) and "literal-ek" not in repr(s)


@pytest.mark.parametrize(
    "data, line",
    [
        ({"server": {"timezone": "Mars/Olympus"}}, "server.timezone: unknown time zone 'Mars/Olympus'"),
        ({"server": {"locale": "fr-FR"}}, "server.locale: 'fr-FR' is not one of zh-CN, en-US"),
        (
            {"server": {"secret_key": "env:MISSING"}},
            "server.secret_key: environment variable MISSING is not set",
        ),
        ({"bots": [{"platform": "feishu"}]}, "bots[1].id: required"),
        ({"bots": [{"id": "x", "platform": "slack"}]}, "bots[1] (x).platform: 'slack' is not one of"),
        (
            {"bots": [{"id": "x", "platform": "feishu", "app_id": "a"}]},
            "bots[1] (x).app_secret: required for a feishu bot",
        ),
        (
            {
                "bots": [
                    {
                        "id": "w",
                        "platform": "wecom",
                        "corp_id": "c",
                        "agent_id": 1,
                        "secret": "s",
                        "token": "t",
                        "aes_key": "short",
                    }
                ]
            },
            "bots[1] (w).aes_key: expected the 43-character EncodingAESKey",
        ),
        (
            {"bots": [{"id": "s", "platform": "simulator"}, {"id": "s", "platform": "simulator"}]},
            "bots[2] (s).id: duplicate bot id",
        ),
        ({"sources": [{"id": "x", "kind": "ftp"}]}, "sources[1] (x).kind: 'ftp' is not one of"),
        ({"serverr": {}}, "serverr: unknown section"),
    ],
)
def test_each_problem_is_one_clear_line(data, line):
    with pytest.raises(ConfigError) as info:
        parse(data, env={})
    assert any(p.startswith(line) for p in info.value.problems), info.value.problems


def test_a_wecom_bot_with_everything(tmp_path):
    s = parse(
        {
            "bots": [
                {
                    "id": "w",
                    "platform": "wecom",
                    "corp_id": "ww1",
                    "agent_id": 1000002,
                    "secret": "s",
                    "token": "t",
                    "aes_key": AES,
                }
            ]
        },
        env={},
    )
    assert s.bot("w").secret("aes_key") == AES and s.bot("w").get("agent_id") == 1000002


def test_config_file_lookup_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert find_config(None, env={}) is None
    (tmp_path / "planloop.toml").write_text("")
    assert find_config(None, env={}).name == "planloop.toml"
    assert str(find_config(None, env={"PLANLOOP_CONFIG": "/etc/p.toml"})) == "/etc/p.toml"
    assert str(find_config("/x.toml", env={"PLANLOOP_CONFIG": "/etc/p.toml"})) == "/x.toml"


def test_broken_toml_is_one_line(tmp_path):
    path = tmp_path / "planloop.toml"
    path.write_text("[server\n")
    with pytest.raises(ConfigError) as info:
        load(path, env={})
    assert len(info.value.problems) == 1 and "not valid TOML" in info.value.problems[0]


def test_secret_never_shows_itself():
    s = Secret("hunter2")
    assert "hunter2" not in f"{s} {s!r} {[s]}"


# connection = "stream": what each platform's long connection needs, and what it no longer needs
@pytest.mark.parametrize(
    "bot, problem",
    [
        ({"platform": "feishu", "connection": "stream", "app_id": "cli_1", "app_secret": "s"}, None),
        ({"platform": "dingtalk", "connection": "stream", "app_key": "k", "app_secret": "s"}, None),
        ({"platform": "wecom", "connection": "stream", "bot_id": "aib1", "bot_secret": "s"}, None),
        (
            {"platform": "wecom", "connection": "stream", "corp_id": "ww1", "agent_id": 1, "secret": "s"},
            "bots[1] (b).bot_id: required for a wecom bot",
        ),
        (
            {"platform": "feishu", "connection": "socket", "app_id": "cli_1", "app_secret": "s"},
            "bots[1] (b).connection: 'socket' is not one of webhook, stream",
        ),
        (
            {"platform": "simulator", "connection": "stream"},
            "bots[1] (b).connection: 'stream' is not one of webhook",
        ),
    ],
)
def test_stream_bots_need_their_own_keys(bot, problem):
    data = {"bots": [{"id": "b", **bot}]}
    if problem is None:
        (parsed,) = parse(data, env={}).bots
        assert parsed.get("connection") == "stream"
        return
    with pytest.raises(ConfigError) as err:
        parse(data, env={})
    assert problem in err.value.problems


def test_a_webhook_bot_is_the_default_and_wecom_streams_dial_the_public_gateway():
    wecom = {"id": "w", "platform": "wecom", "connection": "stream", "bot_id": "aib1", "bot_secret": "s"}
    feishu = {"id": "f", "platform": "feishu", "app_id": "cli_1", "app_secret": "s"}
    w, f = parse({"bots": [wecom, feishu]}, env={}).bots
    assert (w.get("ws_url"), w.secret("bot_secret"), f.get("connection")) == (
        "wss://openws.work.weixin.qq.com",
        "s",
        "webhook",
    )
