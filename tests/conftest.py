"""Shared fixtures: a database on SQLite and PostgreSQL, a frozen clock, the app, and no network.

Every test that uses ``db``/``services``/``client`` runs once per database named in
``PLANLOOP_TEST_DB`` (``sqlite``, ``postgresql`` or ``both``, the default). PostgreSQL is
never skipped silently: if it is asked for and does not answer, the tests fail.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, text, update

from bot.config import Secret, Settings
from storage.db import make_engine, make_sessionmaker, upgrade
from storage.models import Base, Person

# the browser tests' fixtures (live, browser) live beside their Chromium driver
pytest_plugins = ("tests.browser",)

PG_ADMIN_URL = os.environ.get("PLANLOOP_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TEST_KEY = "vExb5JuV_czKxZS0p-hDWNIgfPEeCPHkEzIkVmJknLA="  # a Fernet key for tests only


def _databases() -> list[str]:
    choice = os.environ.get("PLANLOOP_TEST_DB", "both")
    return ["sqlite", "postgresql"] if choice == "both" else [choice]


class Clock:
    """A frozen, settable clock (aware UTC); handlers and adapters take it as their time source."""

    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def set(self, at: datetime) -> None:
        self.at = at.astimezone(UTC)

    def advance(self, **kwargs: float) -> None:
        self.at += timedelta(**kwargs)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse any connection that is not to this machine: tests stay offline."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else None
        if isinstance(host, str):
            try:
                ip = ipaddress.ip_address(host)
            except ValueError:
                ip = None
            if host != "localhost" and (ip is None or not ip.is_loopback):
                raise ConnectionRefusedError(f"tests are offline: refused connection to {host}")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


def _pg_engine() -> Iterator[Engine]:
    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"planloop_t_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        pytest.fail(
            f"PostgreSQL was asked for (PLANLOOP_TEST_DB) but does not answer at {PG_ADMIN_URL}: {exc}"
        )
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session", params=_databases())
def migrated_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """One migrated database per kind per test session."""
    if request.param == "sqlite":
        path = Path(tmp_path_factory.mktemp("db")) / "planloop.db"
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        yield engine
        engine.dispose()
    else:
        gen = _pg_engine()
        engine = next(gen)
        upgrade(engine)
        yield engine
        try:
            next(gen)
        except StopIteration:
            pass


def _wipe(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # TRUNCATE costs per table, so only the tables the last test wrote (TRUNCATE, not
            # DELETE: a fresh table returns rows in insertion order, as tests written against a
            # fresh database expect); every sequence starts again at 1, in one statement
            probe = " UNION ALL ".join(
                f"SELECT '{t.name}' WHERE EXISTS (SELECT 1 FROM \"{t.name}\")"
                for t in Base.metadata.sorted_tables
            )
            written = [f'"{name}"' for (name,) in conn.execute(text(probe))]
            if written:
                conn.execute(text(f"TRUNCATE {', '.join(written)} CASCADE"))
            conn.execute(text("SELECT setval(c.oid, 1, false) FROM pg_class c WHERE c.relkind = 'S'"))
        else:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())


@pytest.fixture
def engine(migrated_engine: Engine) -> Iterator[Engine]:
    """A clean, migrated database for one test."""
    _wipe(migrated_engine)
    yield migrated_engine


@pytest.fixture
def db(engine: Engine):  # noqa: ANN201
    """A session factory on the clean database."""
    return make_sessionmaker(engine)


@pytest.fixture
def clock() -> Clock:
    # Monday 2026-11-23 10:00 Asia/Shanghai (ISO week 2026-W48), a workday.
    return Clock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))


@pytest.fixture
def settings() -> Settings:
    return Settings(
        database_url="sqlite://",
        simulator=True,
        secret_keys=(Secret(TEST_KEY),),
        public_url="http://planloop.test",
    )


@pytest.fixture
def services(settings: Settings, engine: Engine, clock: Clock):  # noqa: ANN201
    from bot.services import build_services

    return build_services(settings, clock=clock, engine=engine)


@pytest.fixture
def app(settings: Settings, services):  # noqa: ANN001, ANN201
    from bot.web.app import create_app

    flask_app = create_app(settings, services)
    flask_app.testing = True
    return flask_app


@pytest.fixture
def client(app):  # noqa: ANN001, ANN201
    return app.test_client()


@pytest.fixture
def team_spec() -> dict:
    import tomllib

    from handlers.setup import parse

    return parse(tomllib.loads((Path(__file__).parents[1] / "examples" / "team.toml").read_text("utf-8")))


@pytest.fixture
def demo_team(db, clock: Clock, team_spec: dict) -> dict:  # noqa: ANN001
    """examples/team.toml applied, plus four weeks of the demo's metric history before the clock's day."""
    from bot.demo.run import seed_metrics
    from handlers.setup import apply

    with db() as session, session.begin():
        apply(session, team_spec, now=clock())
        seed_metrics(session, clock().astimezone(ZoneInfo("Asia/Shanghai")).date(), clock())
        # Everyone has talked to the bot before: tests that count messages see no first-message
        # welcome (tests/test_welcome.py starts from people the bot has never greeted).
        session.execute(update(Person).values(welcomed_at=clock()))
    return team_spec


class Sim:
    """Drives the simulator's JSON face like a person in chat (tests read like transcripts)."""

    def __init__(self, client):  # noqa: ANN001
        self.client = client

    def say(self, who: str, text: str, chat: str = "dm", **extra: object) -> list[dict]:
        res = self.client.post("/sim/api/say", json={"as": who, "chat": chat, "text": text, **extra})
        assert res.status_code == 200, res.get_json()
        return res.get_json()["replies"]

    def act(
        self, who: str, action: str, values: dict | None = None, chat: str = "dm", **extra: object
    ) -> list[dict]:
        res = self.client.post(
            "/sim/api/act", json={"as": who, "chat": chat, "action": action, "values": values or {}, **extra}
        )
        assert res.status_code == 200, res.get_json()
        return res.get_json()["replies"]

    def messages(self, chat: str) -> list[dict]:
        res = self.client.get(f"/sim/api/messages?chat={chat}")
        assert res.status_code == 200
        return res.get_json()["messages"]


@pytest.fixture
def sim(client) -> Sim:  # noqa: ANN001
    return Sim(client)


@pytest.fixture
def config(tmp_path, engine: Engine) -> str:
    """A planloop.toml on the test's database (and the test key), for driving the CLI."""
    url = engine.url.render_as_string(hide_password=False)
    path = tmp_path / "planloop.toml"
    path.write_text(f'[server]\ndatabase_url = "{url}"\nsecret_key = "{TEST_KEY}"\n')
    return str(path)
