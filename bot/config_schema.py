"""Every key of planloop.toml, declared once: type, default, required, secret, example, meaning.

``bot.config`` takes required keys, secret keys, filled-in defaults and the known-key lists from
here; ``docs/gen_reference.py`` writes docs/reference/configuration.md from it; and
tests/test_config_schema.py checks that every key the code reads is declared. A key the code
starts to read goes here first.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

NO_DEFAULT: Any = object()  # the key has no default value (absent means "not set")


@dataclass(frozen=True)
class Key:
    name: str
    type: str  # string | integer | number | boolean | list of strings | table
    description: str
    example: str  # as written in TOML
    default: Any = NO_DEFAULT
    default_text: str = ""  # shown instead of ``default`` when the default is computed
    required: bool = False  # checked when the file is loaded
    secret: bool = False  # a literal, env:NAME or file:/path; resolved and hidden
    choices: tuple[str, ...] = ()
    filled: bool = False  # the default is put into the entry's values when the key is absent


def _keys(*keys: Key) -> dict[str, Key]:
    return {k.name: k for k in keys}


PLATFORMS = ("feishu", "dingtalk", "wecom", "simulator")
LOCALES = ("zh-CN", "en-US")
CONNECTIONS = ("webhook", "stream")
SOURCE_KINDS = ("file", "http_json", "sql", "taobao", "jd", "pdd", "doudian")
SHOP_KINDS = ("taobao", "jd", "pdd", "doudian")
FILE_PRESETS = ("generic", "sycm", "jd", "pdd", "cs", "qianniu", "custom", "aftersales")

SECTIONS = ("server", "simulator", "bots", "sources", "aftersales", "webhooks")

SERVER = _keys(
    Key(
        "database_url",
        "string",
        "SQLAlchemy URL of the database (SQLite or PostgreSQL); env:/file: for one with a password.",
        '"env:PLANLOOP_DATABASE_URL"',
        default="sqlite:///planloop.db",
        secret=True,
    ),
    Key(
        "timezone",
        "string",
        "IANA time zone of weeks, schedules and card times.",
        '"Asia/Shanghai"',
        "Asia/Shanghai",
    ),
    Key(
        "locale",
        "string",
        "Language of cards, replies and the planloop command's messages.",
        '"zh-CN"',
        "zh-CN",
        choices=LOCALES,
    ),
    Key(
        "public_url",
        "string",
        "Base URL of links in cards and of webhooks; unset, cards carry no /p/ page links.",
        '"https://plan.example.com"',
        "http://127.0.0.1:8000",
    ),
    Key(
        "secret_key",
        "string",
        "Fernet key(s), comma-separated, newest first: signs page links, encrypts stored secrets; "
        "serve and worker refuse to start without it.",
        '"env:PLANLOOP_SECRET_KEY"',
        secret=True,
    ),
    Key(
        "admins",
        "list of strings",
        "Person ids told about dead messages and failing sources; the console's admin role.",
        '["zhangwei"]',
        [],
    ),
    Key(
        "console_upload_dir",
        "string",
        "Where report files uploaded in the console wait between preview and confirm (one hour at most).",
        '"/var/lib/planloop/uploads"',
        "",
        default_text="planloop-console-uploads in the system temp folder",
    ),
    Key(
        "guide_url",
        "string",
        "User guide linked from the welcome card.",
        '"https://wiki.example.com/planloop"',
        "",
    ),
    Key(
        "workers",
        "integer",
        "Web worker processes of planloop serve (--workers wins).",
        "3",
        0,
        default_text="2 × cores + 1, at most 8",
    ),
    Key(
        "threads",
        "integer",
        "Threads per web worker process: 1 runs gunicorn's sync worker, more runs gthread.",
        "1",
        1,
    ),
    Key("timeout", "integer", "Seconds before a silent web worker is replaced.", "30", 30),
    Key(
        "forwarded_allow_ips",
        "string",
        "Proxy addresses whose X-Forwarded-* headers are trusted (comma-separated).",
        '"10.0.0.2"',
        "127.0.0.1",
    ),
    Key(
        "metrics_token",
        "string",
        "Bearer token /metrics asks for (web and worker); unset, /metrics is open.",
        '"env:PLANLOOP_METRICS_TOKEN"',
        secret=True,
    ),
    Key(
        "worker_port", "integer", "Port of the worker's /healthz and /metrics; 0 turns it off.", "9100", 9100
    ),
    Key(
        "scheduler_tick_seconds",
        "number",
        "How often the leading worker checks for due jobs, in seconds (at least 0.1).",
        "30",
        30,
    ),
)

SIMULATOR = _keys(
    Key(
        "enabled",
        "boolean",
        "Serve the simulator at /sim/ and /sim/api/* (always on in planloop demo).",
        "true",
        False,
    ),
)

AFTERSALES = _keys(
    Key(
        "resolution_hours",
        "integer",
        "A case counts as resolved if closed within this many hours (1–1440).",
        "48",
        48,
    ),
    Key(
        "causes",
        "table",
        "Extra rules, a whole reason or a keyword → cause (物流, 产品, 描述不符, 服务, 其他); tried first.",
        '{ "缺货" = "物流" }',
        {},
    ),
)

# ---------------------------------------------------------------- [[webhooks]]

# The events an outgoing webhook may subscribe to (handlers/events_out.py raises them).
WEBHOOK_EVENTS = (
    "plan.submitted",
    "plan.late",
    "item.lagging",
    "appraisal.published",
    "appraisal.held",
    "appeal.created",
    "appeal.decided",
    "template.switched",
)

WEBHOOKS = _keys(
    Key(
        "url",
        "string",
        "Where each event is POSTed (JSON, signed Planloop-Signature).",
        '"https://erp.example.com/planloop"',
        required=True,
    ),
    Key(
        "secret",
        "string",
        'Signs each delivery: HMAC-SHA256 over "<t>.<body>" (docs/reference/api.md).',
        '"env:ERP_WEBHOOK_SECRET"',
        required=True,
        secret=True,
    ),
    Key(
        "events",
        "list of strings",
        "The events sent; empty or absent: all of them.",
        '["plan.submitted", "appraisal.published"]',
        [],
        choices=WEBHOOK_EVENTS,
    ),
    Key(
        "allow_private", "boolean", "Allow a receiver inside the network (loopback, private).", "true", False
    ),
)

# ---------------------------------------------------------------- [[bots]]

BOT_COMMON = _keys(
    Key(
        "id",
        "string",
        "Short unique name; callbacks arrive at /webhooks/<platform>/<id>.",
        '"feishu-main"',
        required=True,
    ),
    Key("platform", "string", "The chat platform.", '"feishu"', required=True, choices=PLATFORMS),
    Key(
        "connection",
        "string",
        "webhook: the platform calls public_url; stream: planloop dials out (no public URL).",
        '"stream"',
        "webhook",
        choices=CONNECTIONS,
    ),
)

_TIMEOUT = Key("timeout", "number", "Seconds per platform API call.", "10", 10)

_FEISHU = (
    Key("app_id", "string", "The app's App ID.", '"cli_a1b2c3d4"', required=True),
    Key(
        "app_secret", "string", "The app's App Secret.", '"env:FEISHU_APP_SECRET"', required=True, secret=True
    ),
    Key("encrypt_key", "string", "Event subscription Encrypt Key.", '"env:FEISHU_ENCRYPT_KEY"', secret=True),
    Key(
        "verification_token",
        "string",
        "Event subscription Verification Token.",
        '"env:FEISHU_VERIFICATION_TOKEN"',
        secret=True,
    ),
    Key(
        "api_base",
        "string",
        "Open API base; https://open.larksuite.com for Lark.",
        '"https://open.feishu.cn"',
        "https://open.feishu.cn",
        filled=True,
    ),
    Key(
        "bot_open_id",
        "string",
        "The bot's open_id; in groups only @-mentions of it are answered.",
        '"ou_1a2b"',
    ),
    Key(
        "oauth_base",
        "string",
        "Sign-in host of the web console (OAuth); tests point it at a fake.",
        '"https://accounts.feishu.cn"',
        "https://accounts.feishu.cn",
    ),
    _TIMEOUT,
)

_DINGTALK = (
    Key("app_key", "string", "AppKey (Client ID).", '"ding123"', required=True),
    Key(
        "app_secret",
        "string",
        "AppSecret (Client Secret).",
        '"env:DINGTALK_APP_SECRET"',
        required=True,
        secret=True,
    ),
    Key(
        "token",
        "string",
        "Event subscription 签名 Token (HTTP callbacks).",
        '"env:DINGTALK_TOKEN"',
        secret=True,
    ),
    Key(
        "aes_key",
        "string",
        "Event subscription aes_key, 43 characters.",
        '"env:DINGTALK_AES_KEY"',
        secret=True,
    ),
    Key("robot_code", "string", "The robot's RobotCode.", '"ding123"', default_text="app_key"),
    Key(
        "api_base",
        "string",
        "New API base.",
        '"https://api.dingtalk.com"',
        "https://api.dingtalk.com",
        filled=True,
    ),
    Key(
        "oapi_base",
        "string",
        "Old API base (oapi).",
        '"https://oapi.dingtalk.com"',
        "https://oapi.dingtalk.com",
        filled=True,
    ),
    Key(
        "oauth_base",
        "string",
        "Sign-in host of the web console (OAuth); tests point it at a fake.",
        '"https://login.dingtalk.com"',
        "https://login.dingtalk.com",
    ),
    Key("card_template_id", "string", "Card template for cards with buttons.", '"xxxx.schema"'),
    Key(
        "card_callback_route_key",
        "string",
        "Route key of HTTP card callbacks (doctor --fix registers it).",
        '"planloop"',
    ),
    Key(
        "card_callback_secret",
        "string",
        "apiSecret that signs card clicks.",
        '"env:DINGTALK_CARD_SECRET"',
        secret=True,
    ),
    _TIMEOUT,
)

_WECOM_API = Key(
    "api_base",
    "string",
    "API base.",
    '"https://qyapi.weixin.qq.com"',
    "https://qyapi.weixin.qq.com",
    filled=True,
)
_WECOM_OAUTH = Key(
    "oauth_base",
    "string",
    "Sign-in host of the web console (OAuth, silent inside the WeCom client); tests point it at a fake.",
    '"https://open.weixin.qq.com"',
    "https://open.weixin.qq.com",
)
_WECOM_WEB_LOGIN = Key(
    "web_login_base",
    "string",
    "Host of WeCom's web login (a QR code, outside the WeCom client); tests point it at a fake.",
    '"https://login.work.weixin.qq.com"',
    "https://login.work.weixin.qq.com",
)
_WECOM_WS = Key(
    "ws_url",
    "string",
    "Long-connection gateway of the AI bot.",
    '"wss://openws.work.weixin.qq.com"',
    "wss://openws.work.weixin.qq.com",
    filled=True,
)


def _wecom_app(required: bool) -> tuple[Key, ...]:
    return (
        Key("corp_id", "string", "CorpID of the company.", '"ww0123456789abcdef"', required=required),
        Key("agent_id", "integer", "AgentId of the app.", "1000002", required=required),
        Key("secret", "string", "The app's Secret.", '"env:WECOM_SECRET"', required=required, secret=True),
        Key("token", "string", "Callback Token.", '"env:WECOM_TOKEN"', required=required, secret=True),
        Key(
            "aes_key",
            "string",
            "Callback EncodingAESKey, 43 characters.",
            '"env:WECOM_AES_KEY"',
            required=required,
            secret=True,
        ),
    )


# Per (platform, connection): the keys beyond BOT_COMMON. A WeCom bot on a long connection is the
# 智能机器人 (bot_id / bot_secret); the corp app's keys stay optional there (pushes, directory, sign-in).
BOTS: dict[tuple[str, str], dict[str, Key]] = {
    ("feishu", "webhook"): _keys(*_FEISHU),
    ("feishu", "stream"): _keys(*_FEISHU),
    ("dingtalk", "webhook"): _keys(*_DINGTALK),
    ("dingtalk", "stream"): _keys(*_DINGTALK),
    ("wecom", "webhook"): _keys(*_wecom_app(True), _WECOM_API, _WECOM_OAUTH, _WECOM_WEB_LOGIN, _TIMEOUT),
    ("wecom", "stream"): _keys(
        Key("bot_id", "string", "The AI bot's BotID.", '"aib1a2b3"', required=True),
        Key(
            "bot_secret",
            "string",
            "The AI bot's Secret.",
            '"env:WECOM_BOT_SECRET"',
            required=True,
            secret=True,
        ),
        *_wecom_app(False),
        _WECOM_API,
        _WECOM_OAUTH,
        _WECOM_WEB_LOGIN,
        _WECOM_WS,
        Key("heartbeat_seconds", "number", "Seconds between pings on the connection.", "30", 30.0),
        Key("answer_seconds", "number", "Seconds a reply or push waits for WeCom's answer.", "5", 5.0),
        _TIMEOUT,
    ),
    ("simulator", "webhook"): {},
}

# ---------------------------------------------------------------- [[sources]]

SOURCE_COMMON = _keys(
    Key(
        "id",
        "string",
        "Short unique name (scopes, planloop sources, import --source).",
        '"taobao-shop"',
        required=True,
    ),
    Key("kind", "string", "Where the numbers come from.", '"file"', required=True, choices=SOURCE_KINDS),
    Key("interval", "string", "How often the worker polls it: 30s … 1d.", '"30m"', "1h"),
    Key("days", "integer", "Days re-read on each poll (late payments, refunds).", "3", 3),
    Key("scope", "string", "Scope of values that name none.", '"shop"', "shop"),
)

_LIMITS = (
    Key("max_file_mb", "number", "Largest report file, MB.", "100", 50),
    Key("max_unzipped_mb", "number", "Largest unpacked XLSX, all members together, MB.", "512", 256),
    Key("max_shared_strings_mb", "number", "Largest XLSX shared-strings part, MB.", "64", 32),
    Key(
        "max_zip_ratio", "number", "Largest compression ratio of an XLSX member of 1 MB or more.", "200", 100
    ),
    Key("max_zip_members", "integer", "Most members in an XLSX.", "20000", 10_000),
    Key("max_rows", "integer", "Most rows read from one file.", "500000", 200_000),
    Key("max_columns", "integer", "Most columns in a row.", "2000", 1_000),
    Key("max_cell_chars", "integer", "Longest cell, characters.", "32767", 32_767),
)

_URL_SECRET = Key(
    "url_secret", "string", "The url, when it holds a password or key.", '"env:REPORT_URL"', secret=True
)

_FILE = (
    Key(
        "path",
        "string",
        "A report file, or a folder watched for new ones (needed to poll).",
        '"/data/exports"',
    ),
    Key("preset", "string", "Header mapping of the report.", '"sycm"', "generic", choices=FILE_PRESETS),
    Key(
        "columns",
        "table",
        "Extra or custom header → metric key mapping.",
        '{ "支付转化率" = "pay_conversion_rate" }',
        {},
    ),
    Key(
        "date_column", "string", "Header of the date column, when the preset's are not it.", '"统计日期"', ""
    ),
    Key("scope_column", "string", "Header of the scope column.", '"店铺"', ""),
    Key(
        "shop",
        "string",
        'Shop name of after-sales rows without a shop column (preset = "aftersales").',
        '"pdd-shop"',
        default_text="the id",
    ),
    *_LIMITS,
)

_HTTP_JSON = (
    Key("url", "string", "The JSON endpoint (needed to poll).", '"https://bi.example.com/api/daily"'),
    _URL_SECRET,
    Key("token", "string", "Sent as Authorization: Bearer <token>.", '"env:BI_TOKEN"', secret=True),
    Key("headers", "table", "Extra request headers.", '{ "X-Shop" = "main" }', {}),
    Key("params", "table", "Query parameters.", '{ "shop" = "main" }', {}),
    Key("timeout", "number", "Seconds per request.", "10", 10),
    Key("retries", "integer", "Retries of a failed request.", "3", 3),
    Key("max_bytes", "integer", "Largest answer, bytes.", "5000000", 5_000_000),
    Key(
        "allow_private", "boolean", "Allow an address inside the network (loopback, private).", "true", False
    ),
    Key("records", "string", "JSONPath of the records.", '"$.data[*]"', "$[*]"),
    Key("date", "string", "Path of the date within a record.", '"day"', "date"),
    Key("scope_field", "string", "Path of the scope within a record.", '"shop"', ""),
    Key("metric_field", "string", "Path of the metric key (long form).", '"metric"', ""),
    Key("value_field", "string", "Path of the value (long form).", '"value"', "value"),
    Key("metrics", "table", "Wide form: metric key → path of its value.", '{ visitors = "uv" }', {}),
)

_SQL = (
    Key("url", "string", "SQLAlchemy URL of the database (needed to poll).", '"sqlite:////data/bi.db"'),
    _URL_SECRET,
    Key("query", "string", "One read-only SELECT.", '"SELECT day, visitors FROM daily"'),
    Key("timeout", "number", "Seconds per query.", "30", 30),
    Key("max_rows", "integer", "Most rows read.", "100000", 100_000),
    Key("date_column", "string", "Column of the date.", '"day"', "day"),
    Key("scope_column", "string", "Column of the scope.", '"shop"', ""),
    Key("metric_column", "string", "Column of the metric key (long form).", '"metric"', ""),
    Key("value_column", "string", "Column of the value (long form).", '"value"', "value"),
    Key("columns", "table", "Wide form: column → metric key.", '{ uv = "visitors" }', {}),
)


def _shop(kind: str, api_base: str, *extra: Key) -> dict[str, Key]:
    return _keys(
        Key("app_key", "string", "The open-platform app's key.", '"12345678"'),
        Key("app_secret", "string", "The app's secret.", f'"env:{kind.upper()}_APP_SECRET"', secret=True),
        Key("access_token", "string", "The shop's access token.", f'"env:{kind.upper()}_TOKEN"', secret=True),
        Key(
            "refresh_token",
            "string",
            "Refreshes the access token when it expires.",
            f'"env:{kind.upper()}_REFRESH"',
            secret=True,
        ),
        Key(
            "token_expires_at",
            "string",
            "When the configured access token expires (ISO 8601).",
            '"2026-12-31T00:00:00+08:00"',
        ),
        Key("api_base", "string", "Gateway URL.", f'"{api_base}"', api_base),
        Key("timeout", "number", "Seconds per call.", "20", 20),
        Key("retries", "integer", "Retries of a failed call.", "3", 3),
        Key("max_wait", "number", "Seconds of waiting (rate limits) in one poll, in total.", "120", 120),
        Key("page_size", "integer", "Orders per page.", "100", 100),
        Key("aftersales", "boolean", "Also list after-sales cases.", "true", False),
        Key(
            "preset",
            "string",
            '"aftersales": same as aftersales = true.',
            '"aftersales"',
            choices=("aftersales",),
        ),
        Key("orders", "boolean", "Read orders; false with aftersales = true: cases only.", "false", True),
        *extra,
    )


SOURCES: dict[str, dict[str, Key]] = {
    "file": _keys(*_FILE),
    "http_json": _keys(*_HTTP_JSON),
    "sql": _keys(*_SQL),
    "taobao": _shop(
        "taobao",
        "https://eco.taobao.com/router/rest",
        Key(
            "session",
            "string",
            "The shop's access token (TOP calls it session).",
            '"env:TOP_SESSION"',
            secret=True,
        ),
        Key(
            "sign_method",
            "string",
            "Signature of requests.",
            '"hmac-sha256"',
            "md5",
            choices=("md5", "hmac", "hmac-sha256"),
        ),
        Key("refunds", "boolean", "Also read refunds.", "false", True),
    ),
    "jd": _shop(
        "jd",
        "https://api.jd.com/routerjson",
        Key(
            "oauth_base",
            "string",
            "OAuth server (token refresh).",
            '"https://open-oauth.jd.com"',
            "https://open-oauth.jd.com",
        ),
    ),
    "pdd": _shop(
        "pdd",
        "https://gw-api.pinduoduo.com/api/router",
        Key("span_hours", "number", "Hours per order-list call.", "24", 24),
    ),
    "doudian": _shop(
        "doudian",
        "https://openapi-fxg.jinritemai.com",
        Key(
            "sign_method",
            "string",
            "Signature of requests.",
            '"md5"',
            "hmac-sha256",
            choices=("md5", "hmac-sha256"),
        ),
        Key("shop_id", "string", "Shop id: a 自用型 app makes its own token from it.", '"123456"'),
    ),
}

# ---------------------------------------------------------------- lookups


def connections(platform: str) -> tuple[str, ...]:
    """The connections a platform's bot may use."""
    return tuple(c for c in CONNECTIONS if (platform, c) in BOTS)


def bot_keys(platform: str, connection: str) -> dict[str, Key]:
    """Every key of a [[bots]] entry on ``platform`` over ``connection``."""
    return {**BOT_COMMON, **BOTS[(platform, connection)]}


def source_keys(kind: str) -> dict[str, Key]:
    """Every key of a [[sources]] entry of ``kind``."""
    return {**SOURCE_COMMON, **SOURCES[kind]}


def required(keys: Mapping[str, Key]) -> tuple[str, ...]:
    return tuple(k for k, key in keys.items() if key.required)


def secrets(keys: Mapping[str, Key]) -> tuple[str, ...]:
    return tuple(k for k, key in keys.items() if key.secret)


def filled(keys: Mapping[str, Key]) -> dict[str, Any]:
    """Defaults put into an entry's values when absent (API bases the adapters and doctor share)."""
    return {k: key.default for k, key in keys.items() if key.filled}


def unknown_keys(
    where: str, given: Iterable[str], known: Iterable[str], notes: Mapping[str, str] | None = None
) -> list[str]:
    """One problem line per key not in ``known``, with a close match when there is one;
    ``notes`` may say where an unknown key would be valid (another connection or kind)."""
    names = sorted(known)
    problems: list[str] = []
    for key in given:
        if key in names:
            continue
        lower = str(key).lower()
        close = (
            difflib.get_close_matches(lower, names, n=1, cutoff=0.7)
            or [n for n in names if n.startswith(f"{lower}_")][:1]
        )
        hint = f' — did you mean "{close[0]}"?' if close else ""
        note = (notes or {}).get(key, "")
        hint += f" ({note})" if note else ""
        problems.append(f"{where}.{key}: unknown key{hint}; known keys: {', '.join(names)}")
    return problems


def elsewhere_notes(keys: Iterable[str], where_valid: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """For each of ``keys`` declared under other names (``where_valid``: label → keys), say where."""
    notes: dict[str, str] = {}
    for key in keys:
        labels = [label for label, names in where_valid.items() if key in names]
        if labels:
            notes[key] = f"a key of {', '.join(labels)}"
    return notes
