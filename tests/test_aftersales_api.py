"""The four shops' after-sales lists against fake gateways that check signing the platform's way."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pytest

from bot.config import Secret, SourceConfig
from sources import build
from sources.base import MemoryState, NeedsAdmin, SourceDeps, Window
from tests.fakes.aftersales import AFTERSALES_FAKES, FakeCase
from tests.fakes.shops import API_PATH, BEIJING, ShopGateway

PLATFORMS = ["taobao", "jd", "pdd", "doudian"]
WINDOW = Window(date(2026, 11, 22), date(2026, 11, 23))  # the clock is 11-23 10:00 Beijing


def bj(*args: int) -> datetime:
    return datetime(*args, tzinfo=BEIJING)  # type: ignore[misc]


CASES = [
    FakeCase(
        "101", bj(2026, 11, 20, 9), bj(2026, 11, 22, 8), "快递/物流一直未送到"
    ),  # opened earlier, closed in window
    FakeCase("102", bj(2026, 11, 22, 10), None, "质量问题"),
    FakeCase("103", bj(2026, 11, 22, 23, 40), bj(2026, 11, 23, 0, 20), "商家发错货"),
    FakeCase("104", bj(2026, 11, 23, 9, 15), None, "服务态度差"),
    FakeCase("105", bj(2026, 11, 10, 9), bj(2026, 11, 12, 9), "质量问题"),  # not touched in the window
]


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(params=PLATFORMS)
def platform(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def fake(platform: str, clock) -> Iterator[Any]:  # noqa: ANN001
    gw = AFTERSALES_FAKES[platform](clock)
    gw.cases = list(CASES)  # type: ignore[attr-defined]
    try:
        yield gw
    finally:
        gw.close()


def config_for(platform: str, gw: ShopGateway, access: str, **values: Any) -> SourceConfig:
    token_key = "session" if platform == "taobao" else "access_token"
    vals: dict[str, Any] = {
        "app_key": gw.app_key,
        "api_base": gw.url + API_PATH[platform],
        "page_size": 2,  # force paging
        "aftersales": True,
        "orders": False,
    }
    vals.update(values)
    secret = vals.pop("secret", gw.app_secret)
    return SourceConfig(
        f"{platform}-shop", platform, vals, {"app_secret": Secret(secret), token_key: Secret(access)}
    )


def fetch(config: SourceConfig, now: datetime, sleep: Sleeps | None = None):  # noqa: ANN201
    deps = SourceDeps(state=MemoryState(), sleep=sleep if sleep is not None else Sleeps())
    return build(config, deps).fetch(WINDOW, now)


def test_lists_the_cases_updated_in_the_window(platform: str, fake: Any, clock) -> None:  # noqa: ANN001
    access, _ = fake.grant()
    result = fetch(config_for(platform, fake, access), clock())
    got = {c.case_id: (c.opened, c.closed, c.reason, c.shop) for c in result.cases}
    assert got == {
        "101": (bj(2026, 11, 20, 9), bj(2026, 11, 22, 8), "快递/物流一直未送到", f"{platform}-shop"),
        "102": (bj(2026, 11, 22, 10), None, "质量问题", f"{platform}-shop"),
        "103": (bj(2026, 11, 22, 23, 40), bj(2026, 11, 23, 0, 20), "商家发错货", f"{platform}-shop"),
        "104": (bj(2026, 11, 23, 9, 15), None, "服务态度差", f"{platform}-shop"),
    }
    assert result.samples == []  # orders = false
    assert sum(1 for name, _ in fake.calls if name == "aftersales") >= 2  # paged (page_size 2)


def test_wrong_secret_is_refused_by_the_gateway(platform: str, fake: Any, clock) -> None:  # noqa: ANN001
    access, _ = fake.grant()
    with pytest.raises(NeedsAdmin) as err:
        fetch(config_for(platform, fake, access, secret="wrong"), clock())
    assert (
        err.value.code
        in {"taobao": "25", "jd": "12", "pdd": "20004", "doudian": "40005/isv.signature-invalid"}[platform]
    )


def test_rate_limit_waits_and_then_loads(platform: str, fake: Any, clock) -> None:  # noqa: ANN001
    access, _ = fake.grant()
    fake.rate_limited = 1
    sleeps = Sleeps()
    result = fetch(config_for(platform, fake, access), clock(), sleeps)
    assert len(result.cases) == 4 and len(sleeps) == 1


def test_orders_and_cases_in_one_poll(clock) -> None:  # noqa: ANN001
    gw = AFTERSALES_FAKES["taobao"](clock)
    try:
        gw.cases = list(CASES)  # type: ignore[attr-defined]
        access, _ = gw.grant()
        result = fetch(config_for("taobao", gw, access, orders=True), clock())
        assert {c.case_id for c in result.cases} == {"101", "102", "103", "104"}
        assert {s.metric for s in result.samples} >= {"pay_amount"}  # the orders were read too
    finally:
        gw.close()


def test_pdd_asks_in_half_hour_slices(clock) -> None:  # noqa: ANN001
    gw = AFTERSALES_FAKES["pdd"](clock)
    try:
        gw.cases = list(CASES)  # type: ignore[attr-defined]
        access, _ = gw.grant()
        fetch(config_for("pdd", gw, access, page_size=100), clock())
        spans = [
            int(p["end_updated_at"]) - int(p["start_updated_at"])
            for name, p in gw.calls
            if name == "aftersales"
        ]
        # 11-22 00:00 → 11-23 10:00 (the clock) is 34 hours: 68 slices of 30 minutes
        assert len(spans) == 68 and max(spans) == 1800
    finally:
        gw.close()


def test_doudian_self_app_lists_cases_without_orders(clock) -> None:  # noqa: ANN001
    gw = AFTERSALES_FAKES["doudian"](clock)
    try:
        gw.cases = list(CASES)  # type: ignore[attr-defined]
        cfg = config_for("doudian", gw, "", shop_id=gw.shop_id)  # type: ignore[attr-defined]
        cfg = SourceConfig(cfg.id, cfg.kind, cfg.values, {"app_secret": Secret(gw.app_secret)})
        result = fetch(cfg, clock())
        assert len(result.cases) == 4
        assert [name for name, _ in gw.calls][0] == "token.create"
    finally:
        gw.close()
