"""Row 2 of issue 17: every JSON body the service parses has a depth and a size bound."""

from __future__ import annotations

import json
import logging

import pytest

from sources import jsonlimits
from tests.hostile import WEBHOOK_URLS, make_app, robot_headers

DEEP = b"[" * 5000 + b"]" * 5000
DEEP_OBJECT = b'{"a":' * 5000 + b"1" + b"}" * 5000
DEEP_IN_FIELD = b'{"as": "lilei", "text": "x", "values": ' + b"[" * 5000 + b"]" * 5000 + b"}"


@pytest.fixture
def hostile(settings, engine, clock):
    app, _ = make_app(settings, engine, clock)
    return app.test_client()


@pytest.mark.parametrize("where", sorted(WEBHOOK_URLS))
@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT, DEEP_IN_FIELD], ids=["array", "object", "field"])
def test_deep_json_is_a_400_with_one_warning_and_no_traceback(hostile, clock, caplog, where, body):
    headers = robot_headers(clock) if where == "dingtalk-robot" else {}
    with caplog.at_level(logging.INFO):
        res = hostile.post(WEBHOOK_URLS[where], data=body, headers=headers, content_type="application/json")
    if where == "wecom":  # WeCom's bodies are XML: refused as not XML, never parsed as JSON
        assert res.status_code in (400, 401)
        return
    assert res.status_code == 400, res.data
    assert "deeper than 64" in res.get_json()["error"]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.levelname for r in warnings] == ["WARNING"]
    assert not any(r.exc_info for r in caplog.records)


def test_depth_scan_ignores_brackets_inside_strings():
    text = json.dumps({"note": "[" * 1000 + "{" * 1000, "list": [[['\\"[' * 10]]]})
    assert jsonlimits.depth(text) == 4  # the object and three lists
    assert jsonlimits.loads(text)["list"][0][0][0] == '\\"[' * 10


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 0),
        ("[]", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('["]]]]", "\\"[[", [[]]]', 3),
        ('"unterminated [[[', 0),
    ],
)
def test_depth_table(text, expected):
    assert jsonlimits.depth(text) == expected


def test_exactly_at_the_limit_passes_one_more_is_refused():
    ok = "[" * jsonlimits.MAX_DEPTH + "]" * jsonlimits.MAX_DEPTH
    assert jsonlimits.loads(ok) is not None
    with pytest.raises(jsonlimits.JsonLimitError, match="deeper than 64"):
        jsonlimits.loads("[" + ok + "]")


def test_size_bound_names_the_limit():
    with pytest.raises(jsonlimits.JsonLimitError, match="larger than 10 bytes"):
        jsonlimits.loads(b'"0123456789"', max_bytes=10)


def test_a_pathological_unterminated_string_is_fast():
    import time

    text = '"' + '\\"' * 500_000
    started = time.perf_counter()
    assert jsonlimits.depth(text) == 0
    assert time.perf_counter() - started < 1.0


def test_http_json_source_refuses_a_deep_answer(monkeypatch):
    from sources.base import NeedsAdmin
    from sources.http_json import HttpJsonSource

    source = HttpJsonSource.__new__(HttpJsonSource)
    monkeypatch.setattr(source, "_url", lambda window: ("http://x", {}), raising=False)
    monkeypatch.setattr(source, "_get", lambda url, params: DEEP, raising=False)
    source.max_bytes = 1_000_000
    with pytest.raises(NeedsAdmin, match="deeper than 64"):
        source.fetch(None, None)
