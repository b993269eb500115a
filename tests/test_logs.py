"""bot.ops.logs: one JSON object per line with the context fields, and secrets redacted everywhere."""

from __future__ import annotations

import io
import json
import logging

import pytest

from bot.config import BotConfig, Secret, Settings, SourceConfig
from bot.ops import logs


@pytest.fixture
def capture():
    """configure() onto a buffer; restores the root logger afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    buf = io.StringIO()
    logs.configure(stream=buf, level="DEBUG", fmt="json")
    yield buf
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in saved[0]:
        root.addHandler(h)
    root.setLevel(saved[1])


def lines(buf: io.StringIO) -> list[dict]:
    out = buf.getvalue().splitlines()
    return [json.loads(line) for line in out]


def test_one_json_object_per_line_with_context(capture):
    log = logging.getLogger("planloop.test")
    log.info("delivered %s", "卡片", extra={"event_id": "ev-1", "bot": "feishu-main", "outbox_id": "ob-9"})
    log.warning("multi\nline")
    first, second = lines(capture)
    assert first["message"] == "delivered 卡片"
    assert (first["event_id"], first["bot"], first["outbox_id"]) == ("ev-1", "feishu-main", "ob-9")
    assert (first["level"], first["logger"]) == ("info", "planloop.test")
    assert first["time"].endswith("+00:00") and "T" in first["time"]
    assert second["message"] == "multi\nline" and second["level"] == "warning"
    assert "event_id" not in second


def test_exceptions_are_one_line_too(capture):
    log = logging.getLogger("planloop.test")
    try:
        raise ValueError("broken")
    except ValueError:
        log.exception("inbound failed", extra={"event_id": "ev-2"})
    (record,) = lines(capture)
    assert record["event_id"] == "ev-2"
    assert "ValueError: broken" in record["exc"] and "Traceback" in record["exc"]


def test_configure_twice_does_not_double_lines(capture):
    logs.configure(stream=capture, fmt="json")
    logging.getLogger("planloop.test").info("once")
    assert len(lines(capture)) == 1


SECRET = "s3cr3t-Valu3-XYZ"


@pytest.mark.parametrize(
    ("text", "gone", "kept"),
    [
        (f"token is {SECRET}", SECRET, "token is ***"),
        (
            "POST https://oapi.dingtalk.com/robot/send?access_token=abcdef0123456789&timestamp=1 failed",
            "abcdef0123456789",
            "access_token=***&timestamp=1",
        ),
        (
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa",
            "693a91f6",
            "send?key=***",
        ),
        (
            "https://open.feishu.cn/open-apis/bot/v2/hook/0a1b2c3d-4e5f-6789-abcd-ef0123456789 timed out",
            "0a1b2c3d",
            "/open-apis/bot/v2/hook/*** timed out",
        ),
        (
            "connect to postgresql+psycopg://planloop:hunter2pass@db:5432/planloop failed",
            "hunter2pass",
            "postgresql+psycopg://planloop:***@db:5432/planloop",
        ),
        ("gettoken?corpid=ww1&corpsecret=CORPSECRET123", "CORPSECRET123", "corpsecret=***"),
    ],
)
def test_redaction(capture, text, gone, kept):
    logs.add_secret(SECRET)
    logging.getLogger("planloop.test").error(text, extra={"detail": {"url": text}, "bot": text})
    raw = capture.getvalue()
    assert gone not in raw
    (record,) = lines(capture)
    assert kept in record["message"]
    assert kept in record["detail"]["url"] and kept in record["bot"]


def test_configured_secrets_are_redacted_from_messages_args_and_tracebacks(capture):
    settings = Settings(
        secret_keys=(Secret("fernet-key-for-the-log-test"),),
        bots=(BotConfig("fs", "feishu", {"app_id": "cli_1"}, {"app_secret": Secret("APPSECRET-fs-777")}),),
        sources=(SourceConfig("top", "taobao", {}, {"session": Secret("TOPSESSION-888")}),),
    )
    logs.configure(settings, stream=capture, fmt="json")
    log = logging.getLogger("planloop.test")
    log.info("got %s and %s", "APPSECRET-fs-777", "TOPSESSION-888")
    try:
        raise RuntimeError("key fernet-key-for-the-log-test rejected")
    except RuntimeError:
        log.exception("failed")
    raw = capture.getvalue()
    for secret in ("APPSECRET-fs-777", "TOPSESSION-888", "fernet-key-for-the-log-test"):
        assert secret not in raw
    assert raw.count("***") >= 3


def test_short_values_are_not_registered():
    """Redacting a one-character 'secret' would erase every digit in every line."""
    logs.add_secret("1")
    assert logs.redact("a 1 b") == "a 1 b"


def test_text_format_is_redacted_too():
    logs.add_secret("text-format-secret")
    record = logging.LogRecord("planloop.x", logging.INFO, __file__, 1, "v=%s", ("text-format-secret",), None)
    record.bot = "b1"
    out = logs.TextFormatter().format(record)
    assert "text-format-secret" not in out and "v=***" in out and "bot=b1" in out


def test_reprs_never_show_secrets():
    """bot/config.py's Secret and everything that holds one print *** (and the DB password is hidden)."""
    secret = Secret("REPR-SECRET-123")
    bot = BotConfig("fs", "feishu", {"app_id": "cli_1"}, {"app_secret": secret})
    settings = Settings(
        database_url="postgresql+psycopg://planloop:DBPASS-456@db/planloop",
        secret_keys=(Secret("REPR-KEY-789"),),
        bots=(bot,),
        extra={"metrics_token": Secret("METRICS-TOKEN-1")},
    )
    shown = " ".join([repr(secret), str(secret), f"{secret}", repr(bot), repr(settings), str(settings)])
    for value in ("REPR-SECRET-123", "DBPASS-456", "REPR-KEY-789", "METRICS-TOKEN-1"):
        assert value not in shown
    assert "Secret('***')" in repr(bot)
    assert "planloop:***@db" in repr(settings)


def test_parse_keeps_literal_server_secrets_out_of_extra():
    from bot.config import parse

    settings = parse(
        {
            "server": {
                "secret_key": "vExb5JuV_czKxZS0p-hDWNIgfPEeCPHkEzIkVmJknLA=",
                "metrics_token": "env:MT",
                "database_url": "env:DBURL",
                "workers": 3,
            }
        },
        env={"MT": "METRICS-TOKEN-2", "DBURL": "postgresql+psycopg://u:PW-3@h/db"},
    )
    assert settings.database_url == "postgresql+psycopg://u:PW-3@h/db"
    assert "secret_key" not in settings.extra and "database_url" not in settings.extra
    assert settings.extra["metrics_token"] == Secret("METRICS-TOKEN-2")
    assert settings.extra["workers"] == 3
    for value in ("vExb5JuV", "METRICS-TOKEN-2", "PW-3"):
        assert value not in repr(settings)
