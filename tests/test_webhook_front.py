"""bot/web/webhooks.py: the webhook route answered as plain WSGI in front of the Flask app."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from bot.platforms.base import WebRequest, WebResponse
from bot.web.responses import encode
from bot.web.webhooks import MAX_BODY, WebhookFront, incoming


class Unreadable(io.BytesIO):
    def read(self, *_args: object) -> bytes:
        raise AssertionError("a body over the limit must be refused before it is read")


class Broken(io.BytesIO):
    def read(self, *_args: object) -> bytes:
        raise OSError("the client hung up mid-body")


def environ(body: bytes = b"", **extra: object) -> dict:
    env: dict = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/webhooks/feishu/fs",
        "QUERY_STRING": "",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)) if body else "",
    }
    env.update(extra)
    return env


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (environ(b'{"a": 1}'), b'{"a": 1}'),
        (environ(CONTENT_LENGTH="", **{"wsgi.input": io.BytesIO(b"xyz")}), b""),  # no length: no body
        (  # chunked: the server ends the stream
            environ(CONTENT_LENGTH="", **{"wsgi.input": io.BytesIO(b"xyz"), "wsgi.input_terminated": True}),
            b"xyz",
        ),
        (environ(CONTENT_LENGTH="abc"), (400, "Content-Length is not a number")),
        (
            environ(CONTENT_LENGTH="10", **{"wsgi.input": Broken()}),
            (400, "the request body could not be read"),
        ),
        (
            environ(CONTENT_LENGTH=str(MAX_BODY + 1), **{"wsgi.input": Unreadable()}),
            (413, f"body larger than {MAX_BODY} bytes"),
        ),
        (
            environ(
                CONTENT_LENGTH="",
                **{"wsgi.input": io.BytesIO(b"x" * (MAX_BODY + 1)), "wsgi.input_terminated": True},
            ),
            (413, f"body larger than {MAX_BODY} bytes"),
        ),
    ],
)
def test_the_body_is_read_within_the_limit(env, expected):
    got = incoming(env, "")
    if isinstance(expected, tuple):
        assert isinstance(got, WebResponse) and (got.status, got.body) == (
            expected[0],
            {"error": expected[1]},
        )
    else:
        assert isinstance(got, WebRequest) and got.body == expected


def test_query_and_headers_reach_the_adapter_as_flask_gave_them():
    got = incoming(
        environ(
            b"{}",
            QUERY_STRING="msg_signature=a%2Bb&timestamp=1&timestamp=2&nonce=&echostr=%E4%B8%AD",
            CONTENT_TYPE="application/json; charset=utf-8",
            HTTP_X_LARK_SIGNATURE="sig",
            HTTP_X_LARK_REQUEST_TIMESTAMP="1700000000",
        ),
        "card",
    )
    assert isinstance(got, WebRequest)
    assert (got.method, got.path) == ("POST", "card")
    # the first of a repeated key, blanks kept, percent-escapes read as UTF-8
    assert got.args == {"msg_signature": "a+b", "timestamp": "1", "nonce": "", "echostr": "中"}
    assert got.headers["X-Lark-Signature"] == got.headers["x-lark-signature"] == "sig"
    assert got.headers["x-lark-request-timestamp"] == "1700000000"
    assert got.headers["content-type"] == "application/json; charset=utf-8"


@pytest.mark.parametrize(
    ("response", "status", "headers", "body"),
    [
        (
            WebResponse(200, {"msg": "成功"}),
            "200 OK",
            {"Content-Type": "application/json"},
            '{"msg": "成功"}',
        ),
        (
            WebResponse(200, "<xml>好</xml>", content_type="text/xml; charset=utf-8"),
            "200 OK",
            {"Content-Type": "text/xml; charset=utf-8"},
            "<xml>好</xml>",
        ),
        (
            WebResponse(503, {"error": "later"}, headers={"Retry-After": "5", "Content-Length": "1"}),
            "503 Service Unavailable",
            {"Content-Type": "application/json", "Retry-After": "5"},
            '{"error": "later"}',
        ),
    ],
)
def test_a_response_is_encoded_with_its_length(response, status, headers, body):
    line, sent_headers, sent_body = encode(response)
    assert line == status and sent_body == body.encode("utf-8")
    assert dict(sent_headers) == {**headers, "Content-Length": str(len(sent_body))}
    assert len(sent_headers) == len(dict(sent_headers))  # nothing twice


class Handshake:
    """An adapter that answers every request itself, like a URL check."""

    name = "feishu"
    bot_id = "fs"

    def parse(self, request: WebRequest, _now: datetime) -> WebResponse:
        return WebResponse(200, {"path": request.path, "args": dict(request.args)})


class Odd(Handshake):
    """An adapter whose answer cannot be encoded (no such HTTP status)."""

    bot_id = "odd"

    def parse(self, request: WebRequest, _now: datetime) -> WebResponse:
        return WebResponse(999, {})


@pytest.mark.parametrize(
    ("method", "path", "status", "answer"),
    [
        ("POST", "/webhooks/feishu/fs", 200, {"path": "", "args": {}}),
        ("GET", "/webhooks/feishu/fs/card", 200, {"path": "card", "args": {}}),
        ("POST", "/webhooks/feishu/nope", 404, {"error": "no feishu bot named 'nope'"}),
        ("POST", "/webhooks/dingtalk/fs", 404, {"error": "no dingtalk bot named 'fs'"}),  # not its platform
        ("PUT", "/webhooks/feishu/fs", 405, {"error": "method not allowed"}),
        ("POST", "/healthz", 299, None),  # everything else is Flask's
        ("POST", "/webhooks/feishu/fs/card/extra", 299, None),
        # a bot id in Chinese: the server hands the UTF-8 path over as latin-1 (PEP 3333)
        ("POST", "/webhooks/feishu/飞书".encode().decode("latin-1"), 200, {"path": "", "args": {}}),
        ("POST", "/webhooks/feishu/odd", 503, {"error": "temporarily unavailable, retry later"}),
    ],
)
def test_the_front_answers_webhooks_and_passes_everything_else_on(method, path, status, answer):
    passed: list[str] = []

    def flask(env: dict, start_response):  # noqa: ANN202
        passed.append(env["PATH_INFO"])
        start_response("299 Passed", [])
        return [b""]

    services = SimpleNamespace(
        platforms={"fs": Handshake(), "飞书": Handshake(), "odd": Odd()},
        clock=lambda: datetime(2026, 12, 7, tzinfo=UTC),
    )
    front = WebhookFront(services, flask)  # type: ignore[arg-type]
    started: list[str] = []
    body = b"".join(
        front(environ(b"{}", REQUEST_METHOD=method, PATH_INFO=path), lambda s, h: started.append(s))
    )
    assert int(started[0].split()[0]) == status
    assert passed == ([path] if status == 299 else [])
    if answer is not None:
        assert json.loads(body) == answer
