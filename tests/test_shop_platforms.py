"""The four shop-platform connectors against their fake gateways: sign, page, refresh, back off, derive."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from bot.config import Secret, SourceConfig
from bot.worker.polling import poll_source
from sources import build
from sources.base import MemoryState, NeedsAdmin, RetryLater, SourceDeps, Window
from storage.db import transaction
from storage.models import MetricSample, SourceRun, SourceState
from tests.fakes.shops import API_PATH, BEIJING, FAKES, FakeOrder, FakeRefund, ShopGateway

PLATFORMS = ["taobao", "jd", "pdd", "doudian"]
WINDOW = Window(date(2026, 11, 20), date(2026, 11, 22))
D20, D21, D22 = WINDOW.days()


def bj(*args: int) -> datetime:
    return datetime(*args, tzinfo=BEIJING)  # type: ignore[misc]


ORDERS = [
    # created just before midnight, paid just after: counts for 11-20
    FakeOrder(
        "1001",
        bj(2026, 11, 19, 23, 50),
        Decimal("100.00"),
        bj(2026, 11, 20, 0, 5),
        "b1",
        bj(2026, 11, 20, 10),
    ),
    # shipped 27 h after payment, refunded
    FakeOrder(
        "1002",
        bj(2026, 11, 20, 9),
        Decimal("50.50"),
        bj(2026, 11, 20, 9, 1),
        "b2",
        bj(2026, 11, 21, 12, 1),
        True,
    ),
    FakeOrder(
        "1003", bj(2026, 11, 20, 10), Decimal("20.00"), bj(2026, 11, 20, 10), "b1", bj(2026, 11, 20, 18)
    ),
    FakeOrder("1004", bj(2026, 11, 21, 8), Decimal("80.00"), bj(2026, 11, 21, 8, 30), "b3"),  # not shipped
    FakeOrder(
        "1005", bj(2026, 11, 22, 12), Decimal("10.00"), bj(2026, 11, 22, 12, 5), "b4", bj(2026, 11, 22, 15)
    ),
    FakeOrder("1006", bj(2026, 11, 22, 13), Decimal("999.00")),  # never paid
    FakeOrder("1007", bj(2026, 11, 17, 10), Decimal("5.00"), bj(2026, 11, 17, 10), "b9"),  # before the window
]
REFUNDS = [
    FakeRefund("9001", "1002", Decimal("50.50"), bj(2026, 11, 21, 14)),
    FakeRefund("9002", "1005", Decimal("5.00"), bj(2026, 11, 22, 16), status="WAIT_SELLER_AGREE"),
]
# Worked out by hand from the orders above (11-20: 100 + 50.50 + 20 paid by b1, b2, b1; one of
# three refunded; two of three shipped within 24 h. 11-22's ship rate is not final at 11-23 10:00).
ALL_EXPECTED = {
    ("pay_amount", D20): "170.50",
    ("pay_buyers", D20): "2",
    ("avg_order_value", D20): "85.25",
    ("refund_rate", D20): "33.33",
    ("ship_within_24h_rate", D20): "66.67",
    ("refund_amount", D20): "0",
    ("pay_amount", D21): "80.00",
    ("pay_buyers", D21): "1",
    ("avg_order_value", D21): "80.00",
    ("refund_rate", D21): "0.00",
    ("ship_within_24h_rate", D21): "0.00",
    ("refund_amount", D21): "50.50",
    ("pay_amount", D22): "10.00",
    ("pay_buyers", D22): "1",
    ("avg_order_value", D22): "10.00",
    ("refund_rate", D22): "0.00",
    ("refund_amount", D22): "0",
}
METRICS = {
    "taobao": {
        "pay_amount",
        "pay_buyers",
        "avg_order_value",
        "refund_rate",
        "ship_within_24h_rate",
        "refund_amount",
    },
    "jd": {"pay_amount", "pay_buyers", "avg_order_value"},
    "pdd": {"pay_amount", "refund_rate", "ship_within_24h_rate"},
    "doudian": {"pay_amount", "pay_buyers", "avg_order_value", "ship_within_24h_rate"},
}
AUTH_CODES = {
    "taobao": "27/invalid-sessionkey",
    "jd": "19",
    "pdd": "10019",
    "doudian": "30001/isv.access-token-expired",
}
SIGN_CODES = {"taobao": "25", "jd": "12", "pdd": "20004", "doudian": "40005/isv.signature-invalid"}
STALE_CODES = {"taobao": "31", "jd": "8", "pdd": "20002", "doudian": "40003/isv.timestamp-expired"}
RATE_SLEEP = {"taobao": 4.0, "jd": 2.0, "pdd": 2.0, "doudian": 2.0}  # TOP says how long; others back off


def expected(platform: str) -> dict[tuple[str, date], Decimal]:
    return {k: Decimal(v) for k, v in ALL_EXPECTED.items() if k[0] in METRICS[platform]}


@pytest.fixture(params=PLATFORMS)
def platform(request: pytest.FixtureRequest) -> str:
    return request.param


@contextmanager
def gateway(platform: str, clock) -> Iterator[ShopGateway]:
    gw = FAKES[platform](clock)
    gw.orders = list(ORDERS)
    gw.refunds = list(REFUNDS)
    try:
        yield gw
    finally:
        gw.close()


@pytest.fixture
def fake(platform: str, clock) -> Iterator[ShopGateway]:
    with gateway(platform, clock) as gw:
        yield gw


def config_for(
    platform: str, gw: ShopGateway, *, access: str, refresh: str = "", **values: Any
) -> SourceConfig:
    token_key = "session" if platform == "taobao" else "access_token"
    vals: dict[str, Any] = {
        "app_key": gw.app_key,
        "api_base": gw.url + API_PATH[platform],
        "page_size": 2,  # force paging
        "scope": "shop",
    }
    if platform == "jd":
        vals["oauth_base"] = gw.url
    vals.update(values)
    secrets = {"app_secret": Secret(values.pop("secret", gw.app_secret))}
    vals.pop("secret", None)
    if access:
        secrets[token_key] = Secret(access)
    if refresh:
        secrets["refresh_token"] = Secret(refresh)
    return SourceConfig(f"{platform}-shop", platform, vals, secrets)


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def run(config: SourceConfig, now: datetime, state: MemoryState | None = None, sleep: Sleeps | None = None):
    deps = SourceDeps(
        state=state if state is not None else MemoryState(), sleep=sleep if sleep is not None else Sleeps()
    )
    return build(config, deps).fetch(WINDOW, now)


def as_map(samples: list) -> dict:
    return {(s.metric, s.date): s.value for s in samples}


def test_polls_pages_and_derives_daily_metrics(platform: str, fake: ShopGateway, clock) -> None:
    access, _ = fake.grant()
    result = run(config_for(platform, fake, access=access), clock())
    assert as_map(result.samples) == expected(platform)
    assert {s.scope for s in result.samples} == {"shop"} and {s.source for s in result.samples} == {
        f"{platform}-shop"
    }
    data_calls = [c for c in fake.calls if "token" not in c[0]]
    assert len(data_calls) >= 3  # two orders a page: paging really happened


def test_expired_token_is_refreshed_once_and_kept(platform: str, fake: ShopGateway, clock) -> None:
    _, refresh = fake.grant()
    state = MemoryState()
    result = run(config_for(platform, fake, access="at-expired", refresh=refresh), clock(), state)
    assert as_map(result.samples) == expected(platform)
    assert fake.refreshes == 1
    assert "oauth" in state.changed_secrets and "oauth" not in state.changed  # stored as a secret
    # the next poll uses the stored token: no second refresh, even though the config is stale
    clock.advance(hours=1)
    again = run(config_for(platform, fake, access="at-expired", refresh=refresh), clock(), state)
    assert again.samples and fake.refreshes == 1


def test_token_about_to_expire_is_refreshed_before_calls(platform: str, fake: ShopGateway, clock) -> None:
    access, refresh = fake.grant(ttl=timedelta(minutes=5))
    cfg = config_for(
        platform,
        fake,
        access=access,
        refresh=refresh,
        token_expires_at=(clock() + timedelta(minutes=5)).isoformat(),
    )
    run(cfg, clock())
    assert fake.refreshes == 1
    first_data_call = next(i for i, c in enumerate(fake.calls) if "token" not in c[0])
    first_refresh = next(i for i, c in enumerate(fake.calls) if "refresh" in c[0])
    assert first_refresh < first_data_call


def test_dead_session_without_refresh_needs_admin(platform: str, fake: ShopGateway, clock) -> None:
    with pytest.raises(NeedsAdmin) as err:
        run(config_for(platform, fake, access="at-revoked"), clock())
    assert err.value.code == AUTH_CODES[platform] and not err.value.retry
    assert "授权" in str(err.value)


def test_spent_refresh_token_needs_admin(platform: str, fake: ShopGateway, clock) -> None:
    with pytest.raises(NeedsAdmin, match="重新授权"):
        run(config_for(platform, fake, access="at-expired", refresh="rt-unknown"), clock())


def test_rate_limit_backs_off_then_loads(platform: str, fake: ShopGateway, clock) -> None:
    access, _ = fake.grant()
    fake.rate_limited = 1
    sleeps = Sleeps()
    result = run(config_for(platform, fake, access=access), clock(), sleep=sleeps)
    assert sleeps == [RATE_SLEEP[platform]]
    assert as_map(result.samples) == expected(platform)


def test_long_rate_limit_is_retry_later(platform: str, fake: ShopGateway, clock) -> None:
    access, _ = fake.grant()
    fake.rate_limited = 100
    fake.ban_seconds = 3600
    with pytest.raises(RetryLater) as err:
        run(config_for(platform, fake, access=access, max_wait=10), clock())
    assert err.value.retry and err.value.retry_after is not None
    if platform == "taobao":
        assert err.value.retry_after == 3601  # "This ban will last for 3600 more seconds" + 1
        assert "7/accesscontrol" in err.value.code


def test_wrong_secret_is_refused_by_the_gateway(platform: str, fake: ShopGateway, clock) -> None:
    access, _ = fake.grant()
    with pytest.raises(NeedsAdmin) as err:
        run(config_for(platform, fake, access=access, secret="not-the-secret"), clock())
    assert err.value.code == SIGN_CODES[platform]


def test_stale_clock_is_refused_by_the_gateway(platform: str, fake: ShopGateway, clock) -> None:
    access, _ = fake.grant()
    with pytest.raises(NeedsAdmin) as err:
        run(config_for(platform, fake, access=access), clock() - timedelta(minutes=20))
    assert err.value.code == STALE_CODES[platform]


def test_taobao_hmac_sign_methods(clock) -> None:
    platform = "taobao"
    with gateway(platform, clock) as fake:
        access, _ = fake.grant()
        for method in ("hmac", "hmac-sha256"):
            result = run(config_for(platform, fake, access=access, sign_method=method), clock())
            assert as_map(result.samples) == expected(platform)
            assert fake.calls[-1][1]["sign_method"] == method


def test_doudian_self_app_creates_its_token(clock) -> None:
    platform = "doudian"
    with gateway(platform, clock) as fake:
        state = MemoryState()
        result = run(
            config_for(platform, fake, access="", shop_id="77001", sign_method="md5"), clock(), state
        )
        assert as_map(result.samples) == expected(platform)
        assert fake.calls[0][0] == "token.create" and "oauth" in state.changed_secrets


def test_http_errors_retry_then_give_up(clock) -> None:
    """A gateway that answers 503 every time: backoff, then retry later (never a crash)."""
    import threading

    from flask import Flask
    from werkzeug.serving import make_server

    app = Flask("down")
    app.post("/router/rest")(lambda: ("busy", 503))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cfg = SourceConfig(
            "tb",
            "taobao",
            {"app_key": "k", "api_base": f"http://127.0.0.1:{server.server_port}/router/rest", "retries": 2},
            {"app_secret": Secret("s"), "session": Secret("x")},
        )
        sleeps = Sleeps()
        with pytest.raises(RetryLater) as err:
            run(cfg, clock(), sleep=sleeps)
        assert sleeps == [2.0, 4.0] and err.value.code == "HTTP 503"
    finally:
        server.shutdown()


# ---------------------------------------------------------------- through poll_source and the DB


def test_poll_source_stores_samples_and_an_encrypted_token(services, clock) -> None:
    platform = "taobao"
    with gateway(platform, clock) as fake:
        _, refresh = fake.grant()
        cfg = config_for(platform, fake, access="at-expired", refresh=refresh)
        services.settings = dataclasses.replace(services.settings, sources=(cfg,))
        sleeps = Sleeps()
        first = poll_source(services, cfg.id, clock(), window=WINDOW, sleep=sleeps)
        assert first.ok, first.error
        assert first.inserted == len(expected(platform))
        with transaction(services.sessions) as session:
            got = {
                (r.metric, r.day): r.value
                for r in session.scalars(select(MetricSample))
                if r.day < date(2026, 11, 23)
            }
            states = {r.key: r.value for r in session.scalars(select(SourceState))}
        assert got == expected(platform)
        assert list(states) == ["secret:oauth"]
        assert "at-" not in states["secret:oauth"] and "rt-" not in states["secret:oauth"]  # ciphertext only

        second = poll_source(services, cfg.id, clock(), window=WINDOW, sleep=sleeps)  # same day polled again
        assert second.ok and (second.inserted, second.updated) == (0, 0)
        assert fake.refreshes == 1  # the stored, decrypted token was used

        fake.orders.append(
            FakeOrder("1008", bj(2026, 11, 22, 20), Decimal("5.00"), bj(2026, 11, 22, 20), "b5")
        )
        third = poll_source(services, cfg.id, clock(), window=WINDOW, sleep=sleeps)
        assert third.updated == 3  # 11-22 pay_amount, buyers, avg order value (refund rate stays 0.00)
        with transaction(services.sessions) as session:
            runs = list(session.scalars(select(SourceRun).order_by(SourceRun.id)))
        assert [r.error for r in runs] == ["", "", ""]
        assert runs[2].detail["updated"] == 3


def test_poll_source_records_needs_admin(services, clock) -> None:
    platform = "pdd"
    with gateway(platform, clock) as fake:
        cfg = config_for(platform, fake, access="at-revoked")
        services.settings = dataclasses.replace(services.settings, sources=(cfg,))
        result = poll_source(services, cfg.id, clock())
        assert not result.ok and not result.retry
        assert "10019" in result.error and "access_token已过期" in result.error
        with transaction(services.sessions) as session:
            (run_row,) = session.scalars(select(SourceRun))
        assert "10019" in run_row.error and run_row.detail["retry"] is False
