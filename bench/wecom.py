"""Benchmark: encrypted WeCom callbacks through the Flask app (run by hand: `python bench/wecom.py`).

Three paths, each N requests, one at a time through Flask's test client (no network), on a
migrated SQLite file (or PLANLOOP_BENCH_DB=postgresql+psycopg://…):

- parse only: signature, timestamp, AES decrypt, safe XML parse (no database);
- text message: the above + dedupe row + handler + outbox row, empty answer;
- card click: the above + an encrypted passive reply (update_button).

Prints requests/s and p50/p99 latency per path.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import BotConfig, Secret, Settings  # noqa: E402
from bot.platforms.base import CaseInsensitiveDict, WebRequest  # noqa: E402
from bot.platforms.crypto import WxEnvelope  # noqa: E402
from bot.platforms.wecom import sign_callback  # noqa: E402
from bot.services import build_services  # noqa: E402
from bot.web.app import create_app  # noqa: E402
from cards.model import Card, Markdown  # noqa: E402
from cards.render.wecom import encode_key  # noqa: E402
from handlers.inbound import Inbound  # noqa: E402
from handlers.router import Context, Router  # noqa: E402
from storage.db import make_engine, upgrade  # noqa: E402

CORP, TOKEN, AES, AGENT = (
    "ww0123456789abcdef",
    "QDG6eK",
    "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    1000002,
)
N = int(os.environ.get("N", "2000"))


def text_xml(n: int) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[LiLei]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[进度 第{n}次：支付转化率怎么样了？]]></Content><MsgId>{10_000_000 + n}</MsgId>"
        f"<AgentID>{AGENT}</AgentID></xml>"
    )


def click_xml(n: int) -> str:
    key = encode_key("plan.confirm", {"week": "2026-W48"})
    return (
        f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[LiLei]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[{key}]]></EventKey>"
        f"<TaskId><![CDATA[task-1]]></TaskId><CardType><![CDATA[button_interaction]]></CardType>"
        f"<ResponseCode><![CDATA[rc-{n:08d}]]></ResponseCode><AgentID>{AGENT}</AgentID></xml>"
    )


def report(name: str, seconds: list[float]) -> None:
    seconds.sort()
    total = sum(seconds)
    p50 = statistics.median(seconds) * 1000
    p99 = seconds[int(len(seconds) * 0.99) - 1] * 1000
    print(f"{name:<14} {len(seconds) / total:8.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")


def main() -> None:
    url = os.environ.get("PLANLOOP_BENCH_DB")
    tmp = tempfile.mkdtemp()
    url = url or f"sqlite:///{tmp}/bench.db"
    engine = make_engine(url)
    upgrade(engine)
    bot = BotConfig(
        "wecom-main",
        "wecom",
        {"corp_id": CORP, "agent_id": AGENT, "api_base": "http://127.0.0.1:9"},
        {"secret": Secret("s"), "token": Secret(TOKEN), "aes_key": Secret(AES)},
    )
    settings = Settings(database_url=url, bots=(bot,), public_url="http://planloop.test")
    services = build_services(settings, engine=engine)
    router = Router()

    @router.command("进度", public=True)
    def progress(event: Inbound, ctx: Context) -> Card:
        return Card("本周进度", blocks=(Markdown("支付转化率 3.00 % → 3.50 %（目标 5.00 %）"),))

    @router.action("plan.confirm", public=True)
    def confirm(event: Inbound, ctx: Context) -> Card:
        return Card("", toast="已确认")

    services.router = router
    client = create_app(settings, services).test_client()
    env = WxEnvelope(TOKEN, AES, CORP)
    platform = services.platforms["wecom-main"]

    def signed(xml: str, n: int) -> tuple[dict[str, str], bytes]:
        return sign_callback(env, xml, str(int(time.time())), f"n{n}", str(AGENT))

    print(f"WeCom callback benchmark: N={N}, {engine.dialect.name}, Python {sys.version.split()[0]}")
    for name, build, through_app in (
        ("parse only", text_xml, False),
        ("text message", text_xml, True),
        ("card click", click_xml, True),
    ):
        offset = {"parse only": 0, "text message": N, "card click": 2 * N}[name]
        requests = [signed(build(offset + n), n) for n in range(N)]
        seconds: list[float] = []
        for args, body in requests:
            start = time.perf_counter()
            if through_app:
                resp = client.post("/webhooks/wecom/wecom-main", query_string=args, data=body)
                assert resp.status_code == 200, resp.data
            else:
                web = WebRequest("POST", "", args, CaseInsensitiveDict(), body)
                platform.parse(web, datetime.now(UTC))
            seconds.append(time.perf_counter() - start)
        report(name, seconds)


if __name__ == "__main__":
    main()
