"""The web edge: health, readiness, and clear 4xx answers for bad requests (never a 500)."""

from __future__ import annotations

import pytest

from bot.config import Settings
from bot.services import build_services
from bot.web.app import create_app
from storage.db import make_engine


def test_healthz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_is_ready_on_a_migrated_database(client):
    res = client.get("/readyz")
    assert (res.status_code, res.get_json()) == (200, {"status": "ready"})


def test_readyz_names_the_command_on_an_unmigrated_database(tmp_path, settings):
    engine = make_engine(f"sqlite:///{tmp_path / 'blank.db'}")
    app = create_app(settings, build_services(settings, engine=engine))
    res = app.test_client().get("/readyz")
    assert res.status_code == 503
    assert "planloop db upgrade" in res.get_json()["error"]


def test_readyz_when_the_database_does_not_answer(settings):
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 1})
    app = create_app(settings, build_services(settings, engine=engine))
    res = app.test_client().get("/readyz")
    assert res.status_code == 503 and res.get_json()["error"].startswith("database unavailable")


@pytest.mark.parametrize(
    "method, path, body, status, error",
    [
        ("post", "/webhooks/feishu/nope", b"{}", 404, "no feishu bot named 'nope'"),
        ("post", "/webhooks/sim/sim", b"{}", 404, None),
        ("post", "/sim/api/say", b"{not json", 400, "body is not valid JSON"),
        ("post", "/sim/api/say", b"[1, 2]", 400, "expected a JSON object"),
        ("post", "/sim/api/say", b'{"chat": "dm", "text": "hi"}', 400, '"as" (a person id) is required'),
        ("post", "/sim/api/say", b'{"as": "lilei", "text": "  "}', 400, '"text" is required'),
        (
            "post",
            "/sim/api/act",
            b'{"as": "lilei", "action": "plan.submit", "values": [1]}',
            400,
            '"values" must be an object',
        ),
        ("get", "/sim/api/messages", None, 400, "chat is required (a team id or a person id)"),
        ("get", "/nowhere", None, 404, "not found"),
        ("delete", "/healthz", None, 405, "method not allowed"),
    ],
)
def test_bad_requests_get_a_json_reason(client, method, path, body, status, error):
    res = getattr(client, method)(path, data=body, content_type="application/json")
    assert res.status_code == status
    if error:
        assert res.get_json() == {"error": error}


def test_oversize_text_and_bodies_are_refused(client):
    res = client.post("/sim/api/say", json={"as": "lilei", "text": "字" * 4001})
    assert res.get_json() == {"error": "消息太长：最多 4000 字，这条 4001 字。请分几条发送。"}
    assert res.status_code == 400
    res = client.post("/sim/api/say", data=b"x" * (1024 * 1024 + 1), content_type="application/json")
    assert res.status_code == 413


def test_a_crashing_handler_is_a_503_without_a_stack_trace_and_nothing_is_kept(
    client, demo_team, db, monkeypatch
):
    from handlers import plans
    from storage.models import InboundEvent

    def boom(event, ctx):
        raise RuntimeError("secret internals")

    monkeypatch.setitem(plans.router._commands, "写计划", (boom, False))
    res = client.post("/sim/api/say", json={"as": "lilei", "text": "写计划", "id": "e1"})
    assert res.status_code == 503
    assert "secret internals" not in res.get_data(as_text=True)
    with db() as s:
        assert s.get(InboundEvent, "sim:e1") is None  # the platform's retry will be processed


def test_create_app_does_no_io(tmp_path):
    # An unreachable database must not stop the app from being created (engines connect lazily).
    settings = Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert create_app(settings) is not None
