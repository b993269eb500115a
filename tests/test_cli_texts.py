"""The `planloop` command speaks its config's ``[server] locale``: zh-CN by default, en-US when set
(bot/cli/texts.py). A table of commands × locale, each asserting the sentence a person reads."""

from __future__ import annotations

import re
import socket
import string
from pathlib import Path

import pytest

from bot.cli.commands import main
from bot.cli.texts import CATALOGUES, EN, ZH, config_locale
from storage.db import head_revision

EXAMPLE = str(Path(__file__).parents[1] / "examples" / "team.toml")


def fields(sentence: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(sentence) if name}


def test_both_catalogues_have_the_same_keys_and_placeholders():
    assert ZH.keys() == EN.keys()
    assert {k: fields(v) for k, v in ZH.items()} == {k: fields(v) for k, v in EN.items()}


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ('[server]\nlocale = "en-US"\n', "en-US"),
        ('[server]\nlocale = "zh-CN"\n', "zh-CN"),
        ("[server]\n", "zh-CN"),
        ('[server]\nlocale = "fr-FR"\n', "zh-CN"),  # refused by the config check, in zh-CN
        ('[server]\nlocale = "en-US"\ntimezone = "Nowhere"\n', "en-US"),  # a bad config still has its locale
        ("not toml = = =", "zh-CN"),
    ],
)
def test_the_locale_is_read_before_the_config_is_validated(tmp_path, text, locale):
    path = tmp_path / "planloop.toml"
    path.write_text(text)
    assert config_locale(path) == locale
    assert config_locale(None) == config_locale(tmp_path / "missing.toml") == "zh-CN"


@pytest.fixture(params=sorted(CATALOGUES))
def locale(request):  # noqa: ANN001, ANN201
    return request.param


@pytest.fixture
def conf(tmp_path, locale):  # noqa: ANN001, ANN201
    path = tmp_path / "planloop.toml"
    path.write_text(f'[server]\ndatabase_url = "sqlite:///{tmp_path / "x.db"}"\nlocale = "{locale}"\n')
    return str(path)


def upgraded(conf: str) -> str:
    assert main(["--config", conf, "db", "upgrade"]) == 0
    return conf


# (argv after --config, needs `db upgrade` first, exit code, {locale: the line printed (a regex)})
COMMANDS = {
    "db upgrade": (
        ["db", "upgrade"],
        False,
        0,
        {"zh-CN": f"数据库已在版本 {head_revision()}", "en-US": f"database is at revision {head_revision()}"},
    ),
    "a command before db upgrade": (
        ["apply", EXAMPLE],
        False,
        1,
        {
            "zh-CN": r"planloop: 没有数据库 .*x\.db：先运行 `planloop db upgrade`，或用 --config PATH 指向团队的 planloop\.toml",
            "en-US": r"planloop: no database at .*x\.db: run `planloop db upgrade` first, or pass --config PATH to the team's planloop\.toml",
        },
    ),
    "apply --dry-run": (
        ["apply", "--dry-run", EXAMPLE],
        True,
        0,
        {
            "zh-CN": r"将更改 \d+ 项（--dry-run，没有写入）",
            "en-US": r"\d+ would change \(--dry-run, nothing written\)",
        },
    ),
    "export with a bad week": (
        ["export", "plans", "--week", "2026-48"],
        False,
        2,
        {"zh-CN": r"--week：not an ISO week: .*", "en-US": r"--week: not an ISO week: .*"},
    ),
    "restore a missing backup": (
        ["db", "restore", "nope.backup"],
        False,
        1,
        {"zh-CN": r"planloop: 没有备份文件 nope\.backup", "en-US": r"planloop: no backup at nope\.backup"},
    ),
    "import a missing file": (
        ["import", "nope.csv"],
        False,
        1,
        {"zh-CN": r"planloop: nope\.csv：文件不存在", "en-US": r"planloop: nope\.csv: no such file"},
    ),
    "sources check without sources": (
        ["sources", "check"],
        True,
        0,
        {
            "zh-CN": r"没有配置任何数据源（\[\[sources\]\]）",
            "en-US": r"no data sources are configured \(\[\[sources\]\]\)",
        },
    ),
    "outbox list, nothing left": (
        ["outbox", "list"],
        True,
        0,
        {
            "zh-CN": "没有等管理员处理的消息：没有状态未知或已放弃的消息",
            "en-US": "nothing waits for an admin: no unknown or dead messages",
        },
    ),
    "outbox resend of an unknown id": (
        ["outbox", "resend", "abc"],
        True,
        2,
        {"zh-CN": "planloop outbox resend：没有消息 abc", "en-US": "planloop outbox resend: no message abc"},
    ),
    "run at a moment that is not one": (
        ["run", "lag-alerts", "--at", "next monday"],
        True,
        1,
        {
            "zh-CN": r"planloop: --at：不是 ISO 日期时间：'next monday'（例如 2026-11-30T09:00）",
            "en-US": r"planloop: --at: not an ISO date-time: 'next monday' \(e\.g\. 2026-11-30T09:00\)",
        },
    ),
    "run with --week and --at": (
        ["run", "appraisal", "--week", "2026-W48", "--at", "2026-11-27T20:00"],
        True,
        2,
        {
            "zh-CN": "planloop run：--week 和 --at 只能给一个",
            "en-US": "planloop run: give --week or --at, not both",
        },
    ),
    "template switch of an unknown team": (
        ["template", "switch", "--team", "nope", "--to", "x"],
        True,
        1,
        {"zh-CN": "planloop: 没有 id 为 'nope' 的团队", "en-US": "planloop: no team with id 'nope'"},
    ),
    "token list, none yet": (
        ["token", "list"],
        True,
        0,
        {
            "zh-CN": "没有 API 令牌：planloop token create --name 名称 --scopes …",
            "en-US": "no API tokens: planloop token create --name NAME --scopes …",
        },
    ),
    "token create with an unknown scope": (
        ["token", "create", "--name", "erp", "--scopes", "everything"],
        True,
        2,
        {
            "zh-CN": r"planloop token create：unknown scope.*",
            "en-US": r"planloop token create: unknown scope.*",
        },
    ),
    "token revoke of an unknown id": (
        ["token", "revoke", "7"],
        True,
        1,
        {"zh-CN": "planloop token revoke：没有令牌 7", "en-US": "planloop token revoke: no token 7"},
    ),
    "console link for too long": (
        ["console", "link", "--person", "lilei", "--minutes", "0"],
        False,
        2,
        {
            "zh-CN": "planloop console link：--minutes 必须在 1–1440 之间",
            "en-US": "planloop console link: --minutes must be 1–1440",
        },
    ),
    "console link for nobody": (
        ["console", "link", "--person", "nobody"],
        True,
        1,
        {
            "zh-CN": r"planloop console link：没有在职的人员 'nobody'（见团队文件的 \[\[people\]\]）",
            "en-US": r"planloop console link: no active person 'nobody' \(see the team file's \[\[people\]\]\)",
        },
    ),
    "console logout of everyone": (
        ["console", "logout", "--all"],
        True,
        0,
        {
            "zh-CN": "已让所有人退出：吊销了 0 个会话和未用的登录链接",
            "en-US": r"signed out everyone: 0 session\(s\) and unused link\(s\) revoked",
        },
    ),
    "serve without a secret key": (
        ["serve"],
        False,
        2,
        {
            "zh-CN": r"planloop serve：没有设置 server\.secret_key（它签名页面链接并加密保存的密钥）；生成一个：planloop keys generate",
            "en-US": r"planloop serve: server\.secret_key is not set \(it signs page links .*planloop keys generate",
        },
    ),
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_commands_speak_the_configured_locale(name, conf, locale, tmp_path, monkeypatch, capsys):
    argv, needs_db, code, lines = COMMANDS[name]
    monkeypatch.chdir(tmp_path)
    if needs_db:
        upgraded(conf)
        capsys.readouterr()
    try:
        got = main(["--config", conf, *argv])
    except SystemExit as exc:  # serve refuses before it starts
        got = exc.code
    out = capsys.readouterr()
    assert got == code
    printed = (out.out + out.err).splitlines()
    assert any(re.fullmatch(lines[locale], line) for line in printed), printed
    other = "en-US" if locale == "zh-CN" else "zh-CN"
    assert not any(re.fullmatch(lines[other], line) for line in printed)


@pytest.mark.parametrize(
    ("config", "line"),
    [
        (None, r"端口 {port} 无法使用（.+）：换一个端口，例如 planloop demo --port {next}"),
        (
            '[server]\nlocale = "en-US"\n',
            r"port {port} cannot be used \(.+\): choose another, e\.g\. planloop demo --port {next}",
        ),
    ],
)
def test_the_demo_says_a_busy_port_in_its_locale(tmp_path, capsys, config, line):
    data = tmp_path / "demo"
    data.mkdir()
    if config:
        (data / "planloop.toml").write_text(config)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["demo", "--port", str(port), "--data-dir", str(data)]) == 2
    printed = capsys.readouterr().out.splitlines()
    assert any(re.fullmatch(line.format(port=port, next=port + 1), p) for p in printed), printed
