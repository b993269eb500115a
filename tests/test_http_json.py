"""http_json: mapping, SSRF guard, redirects, size cap, retries — against a real server on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask, jsonify, redirect, request
from werkzeug.serving import make_server

from bot.config import Secret, SourceConfig
from sources import build
from sources.base import MemoryState, NeedsAdmin, RetryLater, SourceDeps, Window
from sources.http_json import HttpJsonSource, check_url, parse_path, select

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
WINDOW = Window(date(2026, 11, 21), date(2026, 11, 22))


class Erp:
    """A team's own endpoint: checks the bearer token, pages nothing, misbehaves on demand."""

    def __init__(self) -> None:
        self.fail_next = 0
        self.seen: list[dict[str, Any]] = []
        app = Flask("erp")

        @app.get("/api/daily")
        def daily() -> Any:
            self.seen.append({"args": dict(request.args), "auth": request.headers.get("Authorization")})
            if request.headers.get("Authorization") != "Bearer t0ken":
                return jsonify({"error": "unauthorized"}), 401
            if self.fail_next:
                self.fail_next -= 1
                return "busy", 503
            return jsonify(
                {
                    "data": {
                        "items": [
                            {"day": "2026-11-21", "shop": "旗舰店", "gmv": "12,000.50", "cvr": "3.1%"},
                            {"day": "2026-11-22T00:00:00+08:00", "shop": "旗舰店", "gmv": 9000, "cvr": None},
                            {"day": "2026-11-22", "shop": "旗舰店", "gmv": "n/a?", "cvr": "2%"},
                            {"day": "someday", "gmv": 1, "cvr": "1%"},
                        ]
                    }
                }
            )

        @app.get("/api/long")
        def long() -> Any:
            return jsonify([{"date": "2026-11-22", "metric": "complaint_rate", "value": "1.2%"},
                            {"date": "2026-11-22", "metric": "Bad", "value": 1}])  # fmt: skip

        @app.get("/api/big")
        def big() -> Any:
            return jsonify({"pad": "x" * 5000})

        @app.get("/api/hop")
        def hop() -> Any:
            return redirect(request.args.get("to", "/api/daily"))

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture
def erp() -> Iterator[Erp]:
    e = Erp()
    yield e
    e.server.shutdown()


def source(url: str, sleeps: list[float] | None = None, **values: Any) -> HttpJsonSource:
    vals: dict[str, Any] = {
        "url": url,
        "allow_private": True,  # the fake lives on 127.0.0.1
        "records": "$.data.items[*]",
        "date": "$.day",
        "scope_field": "$.shop",
        "metrics": {"pay_amount": "$.gmv", "pay_conversion_rate": "$['cvr']"},
        "params": {"from": "{start}", "to": "{end}"},
    }
    vals.update(values)
    cfg = SourceConfig("erp", "http_json", vals, {"token": Secret("t0ken")})
    deps = SourceDeps(state=MemoryState(), sleep=(sleeps if sleeps is not None else []).append)
    src = build(cfg, deps)
    assert isinstance(src, HttpJsonSource)
    return src


def test_maps_records_and_reports_bad_ones(erp: Erp) -> None:
    r = source(erp.base + "/api/daily").fetch(WINDOW, NOW)
    assert {(s.metric, s.scope, s.date): s.value for s in r.samples} == {
        ("pay_amount", "旗舰店", date(2026, 11, 21)): Decimal("12000.50"),
        ("pay_conversion_rate", "旗舰店", date(2026, 11, 21)): Decimal("3.1"),
        ("pay_amount", "旗舰店", date(2026, 11, 22)): Decimal("9000"),
    }
    assert [(e.line, e.column) for e in r.errors] == [(3, "$.gmv"), (4, "$.day")]
    assert (r.rows_read, r.rows_refused) == (4, 2)
    assert erp.seen[0]["args"] == {"from": "2026-11-21", "to": "2026-11-22"}


def test_long_form(erp: Erp) -> None:
    r = source(erp.base + "/api/long", records="$[*]", date="date", metrics={}, metric_field="metric",
               value_field="value", scope_field="").fetch(WINDOW, NOW)  # fmt: skip
    assert [(s.metric, s.value) for s in r.samples] == [("complaint_rate", Decimal("1.2"))]
    assert r.errors[0].line == 2 and "Bad" in r.errors[0].reason


def test_retries_with_backoff_then_loads(erp: Erp) -> None:
    erp.fail_next = 2
    sleeps: list[float] = []
    r = source(erp.base + "/api/daily", sleeps).fetch(WINDOW, NOW)
    assert sleeps == [1.0, 2.0] and len(r.samples) == 3


def test_gives_up_as_retry_later(erp: Erp) -> None:
    erp.fail_next = 10
    with pytest.raises(RetryLater) as err:
        source(erp.base + "/api/daily", retries=1).fetch(WINDOW, NOW)
    assert err.value.code == "HTTP 503"


def test_unauthorised_needs_admin(erp: Erp) -> None:
    cfg = SourceConfig("erp", "http_json", {"url": erp.base + "/api/daily", "allow_private": True,
                                            "metrics": {"pay_amount": "gmv"}}, {})  # fmt: skip
    with pytest.raises(NeedsAdmin) as err:
        build(cfg, SourceDeps(sleep=lambda s: None)).fetch(WINDOW, NOW)
    assert err.value.code == "HTTP 401"


def test_size_cap(erp: Erp) -> None:
    with pytest.raises(NeedsAdmin, match="过大"):
        source(erp.base + "/api/big", max_bytes=1000).fetch(WINDOW, NOW)


def test_timeout_is_retry_later(erp: Erp) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts, never answers
    try:
        with pytest.raises(RetryLater, match="超时"):
            source(f"http://127.0.0.1:{listener.getsockname()[1]}/x", timeout=0.3, retries=0).fetch(
                WINDOW, NOW
            )
    finally:
        listener.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://localhost/x",
        "http://10.0.0.7/x",
        "http://192.168.1.1/x",
        "http://172.16.0.1/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://100.64.0.1/x",
        "http://0.0.0.0/x",
    ],
)
def test_ssrf_guard_refuses_private_addresses(url: str) -> None:
    def resolve(host: str, port: int, **kw: Any) -> list[Any]:
        ip = "127.0.0.1" if host == "localhost" else host
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    with pytest.raises(NeedsAdmin, match="allow_private"):
        check_url(url, allow_private=False, resolve=resolve)


def test_ssrf_guard_checks_what_a_name_resolves_to() -> None:
    def resolve(host: str, port: int, **kw: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]  # fmt: skip

    with pytest.raises(NeedsAdmin):
        check_url("https://erp.example.com/api", allow_private=False, resolve=resolve)
    check_url("https://erp.example.com/api", allow_private=True, resolve=resolve)


def test_public_address_passes_and_bad_schemes_fail() -> None:
    def resolve(host: str, port: int, **kw: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

    check_url("https://erp.example.com/api", allow_private=False, resolve=resolve)
    for bad in ("file:///etc/passwd", "ftp://x/y", "gopher://x"):
        with pytest.raises(NeedsAdmin):
            check_url(bad, allow_private=True, resolve=resolve)


def test_redirect_to_a_private_address_is_refused(erp: Erp, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every hop is checked: the first host passes (we pretend the fake's loopback address is
    public: the connection goes to the vetted address), the redirect to the metadata address does not."""
    from sources import netguard

    checked: list[str] = []
    real = netguard.refused_address
    monkeypatch.setattr(netguard, "refused_address", lambda ip: str(ip) != "127.0.0.1" and real(ip))

    def resolve(host: str, port: int, **kw: Any) -> list[Any]:
        checked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (host, port))]

    src = source(erp.base + "/api/hop?to=http://169.254.169.254/latest", allow_private=False)
    src.resolve = resolve
    with pytest.raises(NeedsAdmin, match="169.254.169.254"):
        src.fetch(WINDOW, NOW)
    assert checked == ["127.0.0.1", "169.254.169.254"]


def test_follows_a_redirect_when_allowed(erp: Erp) -> None:
    r = source(erp.base + "/api/hop?to=/api/daily").fetch(WINDOW, NOW)
    assert len(r.samples) == 3


@pytest.mark.parametrize(
    ("path", "steps"),
    [
        ("$.data.items[*].gmv", ["data", "items", "*", "gmv"]),
        ("gmv", ["gmv"]),
        ("$['a b'][0]", ["a b", 0]),
        ("$.统计.访客数", ["统计", "访客数"]),
    ],
)
def test_parse_path(path: str, steps: list) -> None:
    assert parse_path(path) == steps


def test_select() -> None:
    data = {"a": [{"b": 1}, {"b": 2}, {"c": 3}], "d": {"e": {"f": "x"}}}
    assert select(data, "$.a[*].b") == [1, 2]
    assert select(data, "$.a[2].c") == [3]
    assert select(data, "$.a[7]") == []
    assert select(data, "$.d.*.f") == ["x"]
    assert select(data, "$.missing.x") == []
    with pytest.raises(ValueError):
        parse_path("$.a[")


def test_bad_config_needs_admin() -> None:
    with pytest.raises(NeedsAdmin):
        build(SourceConfig("x", "http_json", {"url": "https://x"}, {}))
    with pytest.raises(NeedsAdmin):
        build(SourceConfig("x", "http_json", {"url": "https://x", "metrics": {"Bad Key": "$.a"}}, {}))
