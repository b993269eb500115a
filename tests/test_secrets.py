"""Secrets at rest: sealed in the database, rotated by `planloop keys rotate`, and never shown in a
database dump, an export, an error page or a log line."""

from __future__ import annotations

import copy
import io
import json
import logging
import tomllib
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text

from bot.cli.commands import main
from bot.ops import logs
from handlers.exports import encode, export
from handlers.setup import apply, parse
from storage.models import Base, Setting, SourceState, Team
from storage.secrets import (
    PREFIX,
    Sealer,
    SecretsUnavailable,
    is_sealed,
    open_state,
    rotate_all,
    seal_state,
)

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
KEY_C = Fernet.generate_key().decode()
WEBHOOK = "https://oapi.dingtalk.com/robot/send?access_token=WEBHOOK-TOKEN-0042"
SIGNING = "SECabcdef-signing-secret-0042"
OAUTH = "OAUTH-ACCESS-TOKEN-0042"


def team_spec_with_webhook() -> dict:
    raw = tomllib.loads((Path(__file__).parents[1] / "examples" / "team.toml").read_text("utf-8"))
    raw = copy.deepcopy(raw)
    raw["teams"][0]["chat"] = {"bot": "dingtalk-main", "chat_id": "", "webhook": WEBHOOK, "secret": SIGNING}
    return parse(raw, lambda value, _where: value)


def store_secrets(db, clock, key: str) -> None:
    sealer = Sealer([key])
    with db() as s, s.begin():
        apply(s, team_spec_with_webhook(), now=clock(), seal=sealer.seal, open_sealed=sealer.open)
        seal_state(s, sealer, "taobao-shop", "access_token", OAUTH, clock())
        s.add(SourceState(source_id="shop-reports", key="seen:a.csv", value="sha256:00", updated_at=clock()))
        s.add(
            Setting(
                key="tokens:feishu-main",
                value={"tenant": sealer.seal("TENANT-TOKEN-0042"), "n": 1},
                updated_at=clock(),
            )
        )


def dump(engine) -> str:
    """Every row of every table as text: what a stolen backup would show."""
    out = []
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                out.append(repr(tuple(row)))
    return "\n".join(out)


def test_seal_and_open_round_trip_with_several_keys():
    old, new = Sealer([KEY_A]), Sealer([KEY_B, KEY_A])
    sealed = old.seal("平台密钥 v1")
    assert sealed.startswith(PREFIX) and "平台密钥" not in sealed
    assert new.open(sealed) == "平台密钥 v1"  # an older key still opens
    assert not new.is_current(sealed) and old.is_current(sealed)
    rotated = new.rotate(sealed)
    assert new.is_current(rotated) and Sealer([KEY_B]).open(rotated) == "平台密钥 v1"
    with pytest.raises(SecretsUnavailable, match="not configured"):
        Sealer([KEY_C]).open(sealed)
    with pytest.raises(SecretsUnavailable, match="not sealed"):
        new.open("plain text")
    with pytest.raises(SecretsUnavailable, match="Fernet keys"):
        Sealer(["not-a-key"])
    with pytest.raises(SecretsUnavailable, match="not set"):
        Sealer([])


def test_nothing_secret_is_stored_in_plaintext(db, clock, engine):
    store_secrets(db, clock, KEY_A)
    everything = dump(engine)
    for plain in (WEBHOOK, "WEBHOOK-TOKEN-0042", SIGNING, OAUTH, "TENANT-TOKEN-0042"):
        assert plain not in everything
    with db() as s:
        team = s.get(Team, "ops")
        assert is_sealed(team.webhook_enc) and is_sealed(team.webhook_secret_enc)
        assert Sealer([KEY_A]).open(team.webhook_enc) == WEBHOOK
        assert open_state(s, Sealer([KEY_A]), "taobao-shop", "access_token") == OAUTH
        assert open_state(s, Sealer([KEY_A]), "taobao-shop", "refresh_token") is None


def test_seal_state_overwrites(db, clock):
    sealer = Sealer([KEY_A])
    with db() as s, s.begin():
        seal_state(s, sealer, "jd", "refresh_token", "one", clock())
    clock.advance(hours=1)
    with db() as s, s.begin():
        seal_state(s, sealer, "jd", "refresh_token", "two", clock())
    with db() as s:
        assert open_state(s, sealer, "jd", "refresh_token") == "two"
        assert s.get(SourceState, ("jd", "refresh_token")).updated_at == clock()


def test_rotate_all_reseals_everything_once(db, clock):
    store_secrets(db, clock, KEY_A)
    both = Sealer([KEY_B, KEY_A])
    with db() as s, s.begin():
        report = rotate_all(s, both)
    assert report.resealed == {
        "teams.webhook_enc": 1,
        "teams.webhook_secret_enc": 1,
        "source_state": 1,
        "settings": 1,
    }
    assert report.total_resealed == 4
    only_new = Sealer([KEY_B])  # the old key can now be dropped
    with db() as s:
        team = s.get(Team, "ops")
        assert only_new.open(team.webhook_enc) == WEBHOOK
        assert only_new.open(team.webhook_secret_enc) == SIGNING
        assert open_state(s, only_new, "taobao-shop", "access_token") == OAUTH
        assert s.get(SourceState, ("shop-reports", "seen:a.csv")).value == "sha256:00"  # not a secret
        setting = s.get(Setting, "tokens:feishu-main")
        assert only_new.open(setting.value["tenant"]) == "TENANT-TOKEN-0042" and setting.value["n"] == 1
    with db() as s, s.begin():
        again = rotate_all(s, both)
    assert again.total_resealed == 0
    assert sum(again.current.values()) == 4


def test_rotate_all_with_a_missing_key_changes_nothing(db, clock, engine):
    store_secrets(db, clock, KEY_A)
    before = dump(engine)
    with pytest.raises(SecretsUnavailable, match="not configured"):
        with db() as s, s.begin():
            rotate_all(s, Sealer([KEY_C]))
    assert dump(engine) == before


def _config(tmp_path: Path, engine, keys: str) -> Path:
    url = engine.url.render_as_string(hide_password=False)
    path = tmp_path / "planloop.toml"
    path.write_text(f'[server]\ndatabase_url = "{url}"\nsecret_key = "{keys}"\n', encoding="utf-8")
    return path


def test_keys_rotate_command(db, clock, engine, tmp_path, capsys):
    store_secrets(db, clock, KEY_A)
    config = _config(tmp_path, engine, f"{KEY_B},{KEY_A}")
    assert main(["--config", str(config), "keys", "rotate"]) == 0
    out = capsys.readouterr().out
    assert "teams.webhook_enc: 1 re-sealed, 0 already current" in out
    assert "source_state: 1 re-sealed, 0 already current" in out
    assert out.strip().endswith("已用最新的密钥重新加密 4 项")
    assert main(["--config", str(config), "keys", "rotate"]) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith("已用最新的密钥重新加密 0 项")
    assert "teams.webhook_enc: 0 re-sealed, 1 already current" in out

    before = dump(engine)
    wrong = _config(tmp_path, engine, KEY_C)
    assert main(["--config", str(wrong), "keys", "rotate"]) == 1
    err = capsys.readouterr().err
    assert "sealed with a key that is not configured" in err and "没有做任何更改" in err
    assert dump(engine) == before
    for key in (KEY_A, KEY_B, KEY_C):
        assert key not in out + err


def test_keys_generate_prints_a_usable_key(capsys):
    assert main(["keys", "generate"]) == 0
    key = capsys.readouterr().out.strip()
    assert Sealer([key]).open(Sealer([key]).seal("x")) == "x"


def test_exports_never_carry_secrets(db, clock, sim, demo_team):
    sealer = Sealer([KEY_A])
    with db() as s, s.begin():
        apply(s, team_spec_with_webhook(), now=clock(), seal=sealer.seal, open_sealed=sealer.open)
    sim.say("lilei", "计划\n优化详情页首屏 支付转化率 +2pp")
    with db() as s:
        data = export(s, "plans", "2026-W48", team=None, now=clock())
    assert data["plans"], "the export must contain the plan, or this test proves nothing"
    for fmt in ("json", "csv", "xlsx"):
        payload = encode(data, "plans", fmt)
        for plain in ("WEBHOOK-TOKEN-0042", SIGNING, PREFIX, KEY_A):
            assert plain.encode() not in payload, fmt


@pytest.fixture
def json_log():
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    buf = io.StringIO()
    yield buf
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in saved[0]:
        root.addHandler(h)
    root.setLevel(saved[1])


def test_error_pages_and_logs_never_show_secrets(app, settings, services, json_log, monkeypatch):
    """A handler blows up with a secret in its exception: the platform gets a bland 503 and the log
    line (which has the traceback) has the secret redacted."""
    logs.configure(settings, stream=json_log, fmt="json")

    def explode(_inbound, _ctx):
        raise RuntimeError(f"cannot post to {WEBHOOK} with key {settings.secret_keys[0].get()}")

    monkeypatch.setattr(services.router, "dispatch", explode)
    app.testing = False
    client = app.test_client()
    res = client.post("/sim/api/say", json={"as": "lilei", "chat": "dm", "text": "帮助"})
    assert res.status_code == 503
    assert res.get_json() == {"error": "temporarily unavailable, retry later"}
    assert res.headers["Retry-After"] == "5"

    # Flask's own error pages are JSON too, never an HTML stack trace.
    for method, path, status in [("GET", "/nope", 404), ("DELETE", "/healthz", 405)]:
        page = client.open(path, method=method)
        assert page.status_code == status and page.is_json

    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    failure = next(line for line in lines if line["message"].startswith("inbound failed"))
    assert "RuntimeError" in failure["exc"]
    raw = json_log.getvalue()
    assert "WEBHOOK-TOKEN-0042" not in raw and settings.secret_keys[0].get() not in raw
    assert "access_token=***" in failure["exc"]
    for body in (res.get_data(as_text=True),):
        assert "WEBHOOK-TOKEN-0042" not in body and "Traceback" not in body


def test_cli_apply_output_never_shows_secrets(engine, tmp_path, capsys, monkeypatch):
    config = _config(tmp_path, engine, KEY_A)
    team = tmp_path / "team.toml"
    original = (Path(__file__).parents[1] / "examples" / "team.toml").read_text("utf-8")
    team.write_text(
        original.replace(
            'chat = { bot = "feishu-main", chat_id = "oc_ops_group" }',
            'chat = { bot = "feishu-main", chat_id = "oc_ops_group", webhook = "env:HOOK", secret = "env:SIG" }',
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("HOOK", WEBHOOK)
    monkeypatch.setenv("SIG", SIGNING)
    assert main(["--config", str(config), "apply", str(team)]) == 0
    captured = capsys.readouterr()
    assert "webhook set" in captured.out
    for plain in ("WEBHOOK-TOKEN-0042", SIGNING, KEY_A):
        assert plain not in captured.out + captured.err
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT webhook_enc FROM teams WHERE id = 'ops'")).scalar()
    assert Sealer([KEY_A]).open(stored) == WEBHOOK
