"""Settings from planloop.toml and the environment; secret references (literal, env:NAME, file:/path)."""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot import config_schema as schema
from sources.causes import AftersalesOptions
from sources.causes import parse_options as parse_aftersales
from sources.netguard import literal_refusal

PLATFORMS = schema.PLATFORMS
LOCALES = schema.LOCALES
SOURCE_KINDS = schema.SOURCE_KINDS
CONNECTIONS = schema.CONNECTIONS
# Which keys each bot and source needs, which are secrets, and every key known: bot/config_schema.py.


class ConfigError(Exception):
    """A bad configuration; ``problems`` has one line per problem (which key, what was expected)."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class Secret:
    """A secret value that never shows itself in a repr, a log line or an f-string."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def get(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def resolve_secret(raw: str, where: str, env: Mapping[str, str]) -> Secret:
    """Resolve a literal, ``env:NAME`` or ``file:/path`` reference; raise ConfigError naming ``where``."""
    if raw.startswith("env:"):
        name = raw[4:]
        if name not in env:
            raise ConfigError([f"{where}: environment variable {name} is not set"])
        return Secret(env[name])
    if raw.startswith("file:"):
        path = Path(raw[5:])
        try:
            return Secret(path.read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise ConfigError([f"{where}: cannot read {path}: {exc.strerror}"]) from None
    return Secret(raw)


class _Entry:
    """A [[bots]] or [[sources]] entry: plain ``values`` and resolved ``secrets``."""

    values: Mapping[str, Any]
    secrets: Mapping[str, Secret]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def secret(self, key: str) -> str:
        s = self.secrets.get(key)
        return s.get() if s else ""


@dataclass(frozen=True)
class BotConfig(_Entry):
    id: str
    platform: str
    values: Mapping[str, Any]  # plain settings (app_id, api_base, agent_id …)
    secrets: Mapping[str, Secret]  # app_secret, encrypt_key, token, aes_key …


@dataclass(frozen=True)
class SourceConfig(_Entry):
    id: str
    kind: str
    values: Mapping[str, Any]
    secrets: Mapping[str, Secret]


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///planloop.db"
    timezone: str = "Asia/Shanghai"
    locale: str = "zh-CN"
    public_url: str = "http://127.0.0.1:8000"
    # False when a config file leaves public_url out: the default reaches no colleague's browser,
    # so cards then carry no /p/ links and point to the chat-only paths instead
    public_url_set: bool = True
    secret_keys: tuple[Secret, ...] = ()
    simulator: bool = False
    bots: tuple[BotConfig, ...] = ()
    sources: tuple[SourceConfig, ...] = ()
    webhooks: tuple[WebhookConfig, ...] = ()
    path: Path | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    aftersales: AftersalesOptions = field(default_factory=AftersalesOptions)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def __repr__(self) -> str:
        # The database URL may carry a password; secrets already print as ***.
        from sqlalchemy.engine import make_url

        try:
            url = make_url(self.database_url).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - a repr must not fail
            url = "<unparsable>"
        return (
            f"Settings(database_url={url!r}, timezone={self.timezone!r}, locale={self.locale!r}, "
            f"public_url={self.public_url!r}, secret_keys={len(self.secret_keys)} key(s), "
            f"simulator={self.simulator}, bots={[b.id for b in self.bots]}, "
            f"sources={[s.id for s in self.sources]}, path={self.path!r})"
        )

    def bot(self, bot_id: str) -> BotConfig | None:
        return next((b for b in self.bots if b.id == bot_id), None)

    def source(self, source_id: str) -> SourceConfig | None:
        return next((s for s in self.sources if s.id == source_id), None)


@dataclass(frozen=True)
class WebhookConfig:
    """A [[webhooks]] entry: an outgoing webhook (bot/worker/webhooks_out.py sends to it)."""

    id: str  # "toml-" + a hash of the url: stable while the entry keeps its url
    url: str
    secret: Secret
    events: tuple[str, ...]
    allow_private: bool


def webhook_problems(where: str, url: Any, events: Any, allow_private: Any) -> list[str]:
    """What is wrong with an outgoing webhook's fields (the config file and the API say the same)."""
    problems: list[str] = []
    if not isinstance(url, str) or not url:
        problems.append(f"{where}.url: required (an http(s) URL)")
    if not isinstance(allow_private, bool):
        problems.append(f"{where}.allow_private: expected true or false")
    elif isinstance(url, str) and url and not allow_private:
        refusal = literal_refusal(url)  # a name only DNS can judge is checked at send time
        if refusal:
            problems.append(f"{where}.url: {refusal}")
    elif isinstance(url, str) and url and not url.startswith(("http://", "https://")):
        problems.append(f"{where}.url: 只支持 http(s) 地址")
    if not isinstance(events, list | tuple) or not all(isinstance(e, str) for e in events):
        problems.append(f"{where}.events: expected a list of event names")
    else:
        for event in events:
            if event not in schema.WEBHOOK_EVENTS:
                problems.append(
                    f"{where}.events: unknown event {event!r} (expected {', '.join(schema.WEBHOOK_EVENTS)})"
                )
    return problems


def webhook_id(url: str) -> str:
    return "toml-" + hashlib.sha256(url.encode("utf-8")).hexdigest()[:10]


# Secret-bearing [server] keys kept in Settings.extra (resolved, wrapped); secret_key and
# database_url have their own fields.
SERVER_SECRET_KEYS = tuple(
    k for k in schema.secrets(schema.SERVER) if k not in ("secret_key", "database_url")
)


def parse(
    data: Mapping[str, Any], env: Mapping[str, str] | None = None, path: Path | None = None
) -> Settings:
    """Validate a parsed planloop.toml; collect every problem before raising ConfigError."""
    env = os.environ if env is None else env
    problems: list[str] = []

    def secret(raw: Any, where: str) -> Secret:
        if not isinstance(raw, str):
            problems.append(f"{where}: expected a string (a literal, env:NAME or file:/path)")
            return Secret("")
        try:
            return resolve_secret(raw, where, env)
        except ConfigError as exc:
            problems.extend(exc.problems)
            return Secret("")

    known_top = set(schema.SECTIONS)
    for key in data:
        if key not in known_top:
            problems.append(f"{key}: unknown section (expected one of {', '.join(sorted(known_top))})")

    server = data.get("server", {})
    if not isinstance(server, Mapping):
        problems.append("server: expected a table [server]")
        server = {}
    problems.extend(schema.unknown_keys("server", server, schema.SERVER))
    tz = str(server.get("timezone", "Asia/Shanghai"))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"server.timezone: unknown time zone {tz!r} (expected e.g. Asia/Shanghai)")
    locale = str(server.get("locale", "zh-CN"))
    if locale not in LOCALES:
        problems.append(f"server.locale: {locale!r} is not one of {', '.join(LOCALES)}")
    db_url = server.get("database_url", "sqlite:///planloop.db")
    if isinstance(db_url, str) and db_url.startswith(("env:", "file:")):
        # A URL with a password is a secret: containers pass it as env:PLANLOOP_DATABASE_URL.
        db_url = secret(db_url, "server.database_url").get() or "sqlite:///planloop.db"
    if not isinstance(db_url, str) or "://" not in db_url:
        problems.append(
            "server.database_url: expected a URL such as sqlite:///planloop.db or postgresql+psycopg://…"
        )
        db_url = "sqlite:///planloop.db"
    keys: tuple[Secret, ...] = ()
    if "secret_key" in server:
        raw_keys = secret(server["secret_key"], "server.secret_key").get()
        keys = tuple(Secret(k.strip()) for k in raw_keys.split(",") if k.strip())

    sim = data.get("simulator", {})
    sim_enabled = bool(sim.get("enabled", False)) if isinstance(sim, Mapping) else False
    if isinstance(sim, Mapping):
        problems.extend(schema.unknown_keys("simulator", sim, schema.SIMULATOR))

    bots: list[BotConfig] = []
    seen: set[str] = set()
    for n, raw in enumerate(data.get("bots", []), start=1):
        where = f"bots[{n}]"
        if not isinstance(raw, Mapping):
            problems.append(f"{where}: expected a table [[bots]]")
            continue
        bot_id = raw.get("id")
        if not isinstance(bot_id, str) or not bot_id:
            problems.append(f"{where}.id: required (a short name such as feishu-main)")
            continue
        where = f"bots[{n}] ({bot_id})"
        if bot_id in seen:
            problems.append(f"{where}.id: duplicate bot id")
        seen.add(bot_id)
        platform = raw.get("platform")
        if platform not in PLATFORMS:
            problems.append(f"{where}.platform: {platform!r} is not one of {', '.join(PLATFORMS)}")
            continue
        connection = raw.get("connection", "webhook")
        allowed = schema.connections(platform)
        if connection not in allowed:
            problems.append(f"{where}.connection: {connection!r} is not one of {', '.join(allowed)}")
            continue
        known = schema.bot_keys(platform, connection)
        for key in schema.required(known):
            if key not in raw:
                problems.append(f"{where}.{key}: required for a {platform} bot")
        others = {f'connection = "{c}"': schema.bot_keys(platform, c) for c in allowed if c != connection}
        problems.extend(schema.unknown_keys(where, raw, known, schema.elsewhere_notes(raw, others)))
        secret_keys = schema.secrets(known)
        values = {
            **schema.filled(known),
            "connection": connection,
            **{k: v for k, v in raw.items() if k not in secret_keys},
        }
        secrets = {k: secret(raw[k], f"{where}.{k}") for k in secret_keys if k in raw}
        if (
            platform in ("wecom", "dingtalk")
            and secrets.get("aes_key")
            and len(secrets["aes_key"].get()) != 43
        ):
            problems.append(f"{where}.aes_key: expected the 43-character EncodingAESKey")
        bots.append(BotConfig(bot_id, platform, values, secrets))

    sources: list[SourceConfig] = []
    for n, raw in enumerate(data.get("sources", []), start=1):
        if not isinstance(raw, Mapping):
            problems.append(f"sources[{n}]: expected a table [[sources]]")
            continue
        source_id = raw.get("id")
        where = f"sources[{n}]" + (f" ({source_id})" if source_id else "")
        if not isinstance(source_id, str) or not source_id:
            problems.append(f"{where}.id: required")
            continue
        kind = raw.get("kind")
        if kind not in SOURCE_KINDS:
            problems.append(f"{where}.kind: {kind!r} is not one of {', '.join(SOURCE_KINDS)}")
            continue
        known = schema.source_keys(kind)
        others = {f"{k} sources": schema.SOURCES[k] for k in SOURCE_KINDS if k != kind}
        problems.extend(schema.unknown_keys(where, raw, known, schema.elsewhere_notes(raw, others)))
        secret_keys = schema.secrets(known)
        values = {k: v for k, v in raw.items() if k not in secret_keys}
        secrets = {k: secret(raw[k], f"{where}.{k}") for k in secret_keys if k in raw}
        sources.append(SourceConfig(source_id, kind, values, secrets))

    webhooks: list[WebhookConfig] = []
    for n, raw in enumerate(data.get("webhooks", []), start=1):
        where = f"webhooks[{n}]"
        if not isinstance(raw, Mapping):
            problems.append(f"{where}: expected a table [[webhooks]]")
            continue
        problems.extend(schema.unknown_keys(where, raw, schema.WEBHOOKS))
        for key in schema.required(schema.WEBHOOKS):
            if key not in raw:
                problems.append(f"{where}.{key}: required for an outgoing webhook")
        url, events = raw.get("url"), raw.get("events", [])
        allow_private = raw.get("allow_private", False)
        problems.extend(webhook_problems(where, url, events, allow_private))
        if isinstance(url, str) and "secret" in raw:
            webhooks.append(
                WebhookConfig(
                    webhook_id(url),
                    url,
                    secret(raw["secret"], f"{where}.secret"),
                    tuple(events) if isinstance(events, list) else (),
                    allow_private is True,
                )
            )

    raw_aftersales = data.get("aftersales")
    if isinstance(raw_aftersales, Mapping):
        problems.extend(schema.unknown_keys("aftersales", raw_aftersales, schema.AFTERSALES))
        raw_aftersales = {k: v for k, v in raw_aftersales.items() if k in schema.AFTERSALES}
    aftersales, aftersales_problems = parse_aftersales(raw_aftersales)
    problems.extend(aftersales_problems)

    if problems:
        raise ConfigError(problems)
    return Settings(
        database_url=db_url,
        timezone=tz,
        locale=locale,
        public_url=str(server.get("public_url", "http://127.0.0.1:8000")).rstrip("/"),
        public_url_set="public_url" in server,
        secret_keys=keys,
        simulator=sim_enabled,
        bots=tuple(bots),
        sources=tuple(sources),
        webhooks=tuple(webhooks),
        path=path,
        # Secret-bearing server keys are kept resolved and wrapped, never as the raw literal.
        extra={
            k: (secret(v, f"server.{k}") if k in SERVER_SECRET_KEYS else v)
            for k, v in server.items()
            if k not in ("secret_key", "database_url")
        },
        aftersales=aftersales,
    )


def find_config(explicit: str | None, env: Mapping[str, str] | None = None) -> Path | None:
    """``--config PATH``, else ``$PLANLOOP_CONFIG``, else ``./planloop.toml`` if it exists."""
    env = os.environ if env is None else env
    if explicit:
        return Path(explicit)
    if env.get("PLANLOOP_CONFIG"):
        return Path(env["PLANLOOP_CONFIG"])
    local = Path("planloop.toml")
    return local if local.exists() else None


def load(path: Path | None, env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate a config file; no file means defaults (SQLite in the working directory)."""
    if path is None:
        return parse({}, env)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror})"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML ({exc})"]) from None
    return parse(data, env, path)
