"""bot/config_schema.py is the one list of planloop.toml keys: unknown keys are named with a close
match, every key the code reads is declared, and every example config in the repository is clean."""

from __future__ import annotations

import ast
import re
import textwrap
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from bot import config_schema as schema
from bot.config import ConfigError, Settings, load, parse

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers", "cards", "storage", "appraisal", "sources")
FEISHU = {"id": "f", "platform": "feishu", "app_id": "cli_1", "app_secret": "s"}
WECOM_STREAM = {"id": "w", "platform": "wecom", "connection": "stream", "bot_id": "b", "bot_secret": "s"}


class AnyEnv(Mapping[str, str]):
    """Every env:NAME is set, to a value that also passes as a 43-character EncodingAESKey."""

    def __getitem__(self, name: str) -> str:
        return "postgresql+psycopg://planloop:pw@db/planloop" if name.endswith("DATABASE_URL") else "k" * 43

    def __contains__(self, name: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _problems(data: dict) -> list[str]:
    try:
        parse(data, env=AnyEnv())
    except ConfigError as exc:
        return exc.problems
    return []


# ---------------------------------------------------------------- unknown and misspelled keys


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"server": {"wokers": 3}}, 'server.wokers: unknown key — did you mean "workers"?'),
        (
            {"server": {"Timezone": "Asia/Shanghai"}},
            'server.Timezone: unknown key — did you mean "timezone"?',
        ),
        ({"server": {"admin": ["zw"]}}, 'server.admin: unknown key — did you mean "admins"?'),
        (
            {"server": {"colour": "red"}},
            "server.colour: unknown key; known keys: admins, console_upload_dir, database_url,",
        ),
        ({"simulator": {"enable": True}}, 'simulator.enable: unknown key — did you mean "enabled"?'),
        (
            {"aftersales": {"resolution_hour": 24}},
            'aftersales.resolution_hour: unknown key — did you mean "resolution_hours"?',
        ),
        ({"aftersales": {"cause": {}}}, 'aftersales.cause: unknown key — did you mean "causes"?'),
        (
            {"bots": [{**FEISHU, "app_secrte": "x"}]},
            'bots[1] (f).app_secrte: unknown key — did you mean "app_secret"?',
        ),
        ({"bots": [{**FEISHU, "encrypt": "x"}]}, "bots[1] (f).encrypt: unknown key"),
        (
            {"bots": [{**FEISHU, "corp_id": "ww1"}]},
            "bots[1] (f).corp_id: unknown key; known keys: api_base, app_id, app_secret, bot_open_id, connection,",
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
                        "aes_key": "a" * 43,
                        "bot_id": "b",
                    }
                ]
            },
            'bots[1] (w).bot_id: unknown key (a key of connection = "stream")',
        ),
        (
            {"bots": [{**WECOM_STREAM, "heartbeat": 10}]},
            'bots[1] (w).heartbeat: unknown key — did you mean "heartbeat_seconds"?',
        ),
        (
            {"bots": [{"id": "s", "platform": "simulator", "api_base": "x"}]},
            "bots[1] (s).api_base: unknown key; known keys: connection, id, platform",
        ),
        (
            {"sources": [{"id": "r", "kind": "file", "path": "/d", "presett": "sycm"}]},
            'sources[1] (r).presett: unknown key — did you mean "preset"?',
        ),
        (
            {"sources": [{"id": "r", "kind": "file", "intervall": "1h"}]},
            'sources[1] (r).intervall: unknown key — did you mean "interval"?',
        ),
        (
            {"sources": [{"id": "t", "kind": "jd", "session": "x"}]},
            "sources[1] (t).session: unknown key (a key of taobao sources)",
        ),
        (
            {"sources": [{"id": "q", "kind": "sql", "password": "x"}]},
            "sources[1] (q).password: unknown key; known keys:",
        ),
        (
            {"sources": [{"id": "h", "kind": "http_json", "url": "https://x", "max_row": 5}]},
            "sources[1] (h).max_row: unknown key",
        ),
    ],
)
def test_an_unknown_key_is_named_with_a_close_match(data, expected):
    problems = _problems(data)
    assert any(p.startswith(expected) for p in problems), problems
    assert len(problems) == 1, problems


def test_the_known_keys_listed_are_those_of_the_entry():
    (problem,) = _problems({"bots": [{**WECOM_STREAM, "x": 1}]})
    listed = problem.split("known keys: ")[1].split(", ")
    assert listed == sorted(schema.bot_keys("wecom", "stream"))
    assert "bot_secret" in listed and "corp_id" in listed and "encrypt_key" not in listed


def test_a_key_of_another_kind_is_not_resolved_as_a_secret():
    # before the schema any source's "token" was resolved: a missing env var failed a file source
    problems = _problems({"sources": [{"id": "r", "kind": "file", "token": "env:NOPE"}]})
    assert problems == [problems[0]] and problems[0].startswith("sources[1] (r).token: unknown key")


@pytest.mark.parametrize(
    "data",
    [
        {"bots": ["feishu"]},
        {"sources": [3]},
    ],
)
def test_an_entry_that_is_not_a_table_is_a_problem_not_a_crash(data):
    (problem,) = _problems(data)
    assert problem.endswith("expected a table [[bots]]") or problem.endswith("expected a table [[sources]]")


def test_required_and_secret_keys_come_from_the_schema():
    assert schema.required(schema.bot_keys("wecom", "webhook")) == (
        "id",
        "platform",
        "corp_id",
        "agent_id",
        "secret",
        "token",
        "aes_key",
    )
    assert schema.required(schema.bot_keys("wecom", "stream")) == ("id", "platform", "bot_id", "bot_secret")
    assert schema.secrets(schema.source_keys("taobao")) == (
        "app_secret",
        "access_token",
        "refresh_token",
        "session",
    )
    s = parse(
        {
            "bots": [{**FEISHU, "verification_token": "env:VT"}],
            "sources": [{"id": "h", "kind": "http_json", "token": "env:T"}],
        },
        env={"VT": "vt", "T": "tok"},
    )
    assert s.bot("f").secret("verification_token") == "vt" and "verification_token" not in s.bot("f").values
    assert s.source("h").secret("token") == "tok" and "token" not in s.source("h").values


# ---------------------------------------------------------------- every key the code reads is declared

BOT_MODULES = {"feishu": "feishu", "dingtalk": "dingtalk", "wecom": "wecom"}
CONFIG_TYPES = ("BotConfig", "SourceConfig", "SourceConfigLike")


def _scope_of(path: Path) -> tuple[str, tuple[str, ...]]:
    """Which entries a module's reads belong to: ("bot", platforms) or ("source", kinds); () = any."""
    rel = path.relative_to(ROOT).as_posix()
    name = path.stem
    if rel.startswith(("bot/platforms/", "bot/doctor/")):
        return "bot", tuple(p for p in BOT_MODULES if name.startswith(p))
    if rel.startswith("sources/"):
        if name in schema.SOURCES:
            return "source", (name,)
        if name in ("platform", "aftersales_api"):
            return "source", schema.SHOP_KINDS
        if name in ("files", "aftersales_files"):
            return "source", ("file",)
    return "", ()


def _literal_calls(node: ast.AST, methods: tuple[str, ...]) -> Iterator[tuple[ast.expr, str, str]]:
    for call in ast.walk(node):
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr in methods
            and call.args
            and isinstance(call.args[0], ast.Constant)
            and isinstance(call.args[0].value, str)
        ):
            yield call.func.value, call.func.attr, call.args[0].value


def _config_names(func: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, str]:
    """Names in ``func`` that hold a bot or source entry: annotated parameters, loop variables."""
    names: dict[str, str] = {}
    for arg in [*func.args.args, *func.args.kwonlyargs]:
        ann = ast.unparse(arg.annotation) if arg.annotation else ""
        if any(t in ann for t in CONFIG_TYPES):
            names[arg.arg] = "bot" if "Bot" in ann else "source"
    for node in ast.walk(func):
        if isinstance(node, ast.comprehension | ast.For) and isinstance(node.target, ast.Name):
            over = ast.unparse(node.iter)
            found = re.search(r"(?:^|\.)(bots|sources)$", over)
            if found:
                names[node.target.id] = "bot" if found.group(1) == "bots" else "source"
    return names


def _code_reads() -> list[tuple[str, str, tuple[str, ...], str]]:
    """(section, key, platforms or kinds, where) for every literal key the code reads."""
    reads: list[tuple[str, str, tuple[str, ...], str]] = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            where = path.relative_to(ROOT).as_posix()
            scope_kind, scope = _scope_of(path)
            for func in ast.walk(tree):
                if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                doc = ast.get_docstring(func) or ""
                extra_names = {
                    t.id
                    for a in ast.walk(func)
                    if isinstance(a, ast.Assign) and ast.unparse(a.value).endswith("settings.extra")
                    for t in a.targets
                    if isinstance(t, ast.Name)
                }
                if "[server]" in doc:
                    extra_names |= {a.arg for a in func.args.args if a.arg == "extra"}
                entries = _config_names(func)
                for receiver, method, key in _literal_calls(func, ("get", "secret")):
                    text = ast.unparse(receiver)
                    if method == "get" and (text.endswith("settings.extra") or text in extra_names):
                        reads.append(("server", key, (), where))
                    elif text in entries or text.endswith(".bot"):
                        section = entries.get(text, "bot")
                        reads.append((section, key, scope if scope_kind == section else (), where))
    return sorted(set(reads))


def _declared(section: str, key: str, scope: tuple[str, ...]) -> bool:
    if section == "server":
        return key in schema.SERVER
    if section == "bot":
        platforms = scope or tuple(p for p, _ in schema.BOTS)
        found = [any(key in schema.bot_keys(p, c) for c in schema.connections(p)) for p in platforms]
        return all(found) if scope else any(found)
    kinds = scope or schema.SOURCE_KINDS
    found = [key in schema.source_keys(k) for k in kinds]
    return all(found) if scope else any(found)


def test_the_scan_finds_the_reads_it_is_meant_to_find():
    reads = {(section, key) for section, key, _, _ in _code_reads()}
    expected = {
        ("server", "admins"),
        ("server", "guide_url"),
        ("server", "workers"),
        ("server", "threads"),
        ("server", "timeout"),
        ("server", "forwarded_allow_ips"),
        ("server", "metrics_token"),
        ("server", "worker_port"),
        ("server", "scheduler_tick_seconds"),
        ("bot", "encrypt_key"),
        ("bot", "card_callback_route_key"),
        ("bot", "heartbeat_seconds"),
        ("bot", "timeout"),
        ("source", "interval"),
        ("source", "days"),
        ("source", "url_secret"),
        ("source", "span_hours"),
        ("source", "token_expires_at"),
        ("source", "columns"),
    }
    assert expected <= reads, sorted(expected - reads)
    assert len(reads) >= 70


def test_every_key_the_code_reads_is_declared():
    missing = [r for r in _code_reads() if not _declared(*r[:3])]
    assert missing == []


def test_keys_read_by_name_at_run_time_are_declared():
    from sources.import_limits import ImportLimits
    from sources.jd import JdSource
    from sources.pdd import PddSource
    from sources.taobao import TaobaoSource

    for name, default in ImportLimits().__dict__.items():  # read with config.get(name)
        assert schema.SOURCES["file"][name].default == default
    for source in (TaobaoSource, JdSource, PddSource):  # configured_token(config, access_config_key)
        assert source.access_config_key in schema.secrets(schema.source_keys(source.kind))


@pytest.mark.parametrize(
    "keys, name, value",
    [
        (schema.SERVER, "threads", ("bot.ops.serve", "THREADS")),
        (schema.SERVER, "timeout", ("bot.ops.serve", "TIMEOUT")),
        (schema.SERVER, "worker_port", ("bot.ops.metrics", "WORKER_PORT")),
        (schema.SERVER, "scheduler_tick_seconds", ("bot.worker.scheduler", "TICK_SECONDS")),
        (schema.AFTERSALES, "resolution_hours", ("sources.causes", "DEFAULT_RESOLUTION_HOURS")),
        (schema.SOURCE_COMMON, "interval", ("bot.worker.scheduler", "DEFAULT_POLL")),
        (schema.SOURCE_COMMON, "days", ("bot.worker.polling", "DEFAULT_DAYS")),
        (schema.SOURCES["http_json"], "max_bytes", ("sources.http_json", "MAX_BYTES")),
        (schema.SOURCES["sql"], "max_rows", ("sources.sql", "MAX_ROWS")),
        (schema.BOTS[("wecom", "stream")], "ws_url", ("bot.platforms.wecom_stream", "DEFAULT_URL")),
        (
            schema.BOTS[("wecom", "stream")],
            "heartbeat_seconds",
            ("bot.platforms.wecom_stream", "HEARTBEAT_SECONDS"),
        ),
        (
            schema.BOTS[("wecom", "stream")],
            "answer_seconds",
            ("bot.platforms.wecom_stream", "ANSWER_SECONDS"),
        ),
        (schema.SOURCES["taobao"], "api_base", ("sources.taobao", "TaobaoSource.default_api_base")),
        (schema.SOURCES["jd"], "api_base", ("sources.jd", "JdSource.default_api_base")),
        (schema.SOURCES["pdd"], "api_base", ("sources.pdd", "PddSource.default_api_base")),
        (schema.SOURCES["doudian"], "api_base", ("sources.doudian", "DoudianSource.default_api_base")),
        (schema.SOURCES["taobao"], "sign_method", ("sources.taobao", "SIGN_METHODS")),
        (schema.SOURCES["doudian"], "sign_method", ("sources.doudian", "SIGN_METHODS")),
    ],
)
def test_defaults_and_choices_match_the_code(keys, name, value):
    import importlib

    module, attr = value
    found: object = importlib.import_module(module)
    for part in attr.split("."):
        found = getattr(found, part)
    key = keys[name]
    if isinstance(found, tuple):
        assert key.choices == found
    else:
        assert key.default == found


def test_file_presets_are_the_code_s():
    from sources.presets import PRESETS

    assert set(schema.FILE_PRESETS) == {*PRESETS, "aftersales"}


# ---------------------------------------------------------------- example configs are clean


def _uncommented(text: str) -> str:
    """The example with its commented-out settings and entries switched on."""
    return re.sub(r"^# (?=\[\[|[a-z_]+ = )", "", text, flags=re.M)


@pytest.mark.parametrize("switched_on", [False, True])
def test_the_deploy_example_loads_without_a_problem(tmp_path, switched_on):
    text = (ROOT / "deploy" / "planloop.toml.example").read_text(encoding="utf-8")
    path = tmp_path / "planloop.toml"
    path.write_text(_uncommented(text) if switched_on else text, encoding="utf-8")
    settings = load(path, env=AnyEnv())
    assert [b.id for b in settings.bots] == (
        ["feishu-main", "dingtalk-main", "wecom-main"] if switched_on else ["feishu-main"]
    )
    assert ("workers" in settings.extra) is switched_on


def _toml_blocks() -> list[tuple[str, str]]:
    blocks = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        text = page.read_text(encoding="utf-8")
        for n, m in enumerate(re.finditer(r"^( *)```toml\n(.*?)^\1```", text, flags=re.S | re.M), 1):
            blocks.append((f"{page.relative_to(ROOT)}#{n}", textwrap.dedent(m.group(2))))
    return blocks


@pytest.mark.parametrize("where, block", _toml_blocks(), ids=[w for w, _ in _toml_blocks()])
def test_every_toml_block_of_the_docs_has_only_known_keys(where, block):
    data = tomllib.loads(block)
    if not set(data) <= set(schema.SECTIONS):
        pytest.skip("a team file, not planloop.toml")
    assert [p for p in _problems(data) if "unknown" in p] == []


def test_the_docs_have_planloop_toml_blocks_to_check():
    checked = [w for w, b in _toml_blocks() if set(tomllib.loads(b)) <= set(schema.SECTIONS)]
    assert len(checked) >= 8, checked


def test_the_demo_s_written_config_loads_without_a_problem(tmp_path):
    from bot.demo.run import _write_config

    (tmp_path / "secret.key").write_text("k" * 44)
    _write_config(tmp_path, Settings(database_url=f"sqlite:///{tmp_path}/demo.db"))
    settings = load(tmp_path / "planloop.toml", env={})
    assert settings.simulator and settings.database_url.endswith("demo.db")
    assert [k.get() for k in settings.secret_keys] == ["k" * 44]


def _from_examples(keys: dict[str, schema.Key], **fixed: str) -> dict:
    text = "\n".join(f"{k.name} = {k.example}" for k in keys.values() if k.name not in fixed)
    return {**tomllib.loads(text), **fixed}


def test_a_file_written_from_every_example_loads_without_a_problem():
    bots = [
        _from_examples(schema.bot_keys(p, c), id=f"{p}-{c}", platform=p, connection=c) for p, c in schema.BOTS
    ]
    sources = [_from_examples(schema.source_keys(k), id=k, kind=k) for k in schema.SOURCES]
    data = {
        "server": _from_examples(schema.SERVER),
        "simulator": _from_examples(schema.SIMULATOR),
        "aftersales": _from_examples(schema.AFTERSALES),
        "bots": bots,
        "sources": sources,
        "webhooks": [_from_examples(schema.WEBHOOKS)],
    }
    settings = parse(data, env=AnyEnv())
    assert [h.events for h in settings.webhooks] == [("plan.submitted", "appraisal.published")]
    assert len(settings.bots) == len(schema.BOTS) and len(settings.sources) == len(schema.SOURCES)
    taobao = settings.source("taobao")
    assert taobao is not None and taobao.secret("session") == "k" * 43 and "session" not in taobao.values
    assert settings.extra["admins"] == ["zhangwei"] and settings.extra["metrics_token"].get() == "k" * 43
