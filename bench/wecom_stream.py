"""Benchmark: WeCom text commands end to end, the AI bot's long connection next to the app's webhook
(run by hand: `python bench/wecom_stream.py`; N=500 by default).

Same run, same database (a migrated SQLite file, or PLANLOOP_BENCH_DB=postgresql+psycopg://…),
same handler (a small public "进度" card):

- webhook: an encrypted XML callback through Flask's test client (no network): verify, decrypt,
  dedupe row, handler, outbox row, empty answer;
- stream, one at a time: the fake gateway (tests/fakes/wecom_aibot.py) pushes an
  ``aibot_msg_callback`` over a loopback WebSocket; the client parses it, runs the inbound path in
  a thread, sends ``aibot_respond_msg`` and waits for the gateway's answer. Latency is from the
  gateway's push to its receipt of the reply;
- stream, pipelined: all N pushed at once, time until every reply arrived (the client serves
  callbacks one at a time, in order).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.wecom import AES, AGENT, CORP, TOKEN, text_xml  # noqa: E402
from bot import dispatch  # noqa: E402
from bot.config import BotConfig, Secret, Settings  # noqa: E402
from bot.platforms.crypto import WxEnvelope  # noqa: E402
from bot.platforms.stream import build_stream  # noqa: E402
from bot.platforms.wecom import sign_callback  # noqa: E402
from bot.services import build_services  # noqa: E402
from bot.web.app import create_app  # noqa: E402
from cards.model import Card, Markdown  # noqa: E402
from handlers.inbound import Inbound  # noqa: E402
from handlers.router import Context, Router  # noqa: E402
from storage.db import make_engine, upgrade  # noqa: E402
from tests.fakes.wecom_aibot import FakeWeComAIBot  # noqa: E402

N = int(os.environ.get("N", "500"))


def report(name: str, seconds: list[float]) -> None:
    seconds.sort()
    p50 = statistics.median(seconds) * 1000
    p99 = seconds[max(0, int(len(seconds) * 0.99) - 1)] * 1000
    print(f"{name:<22} {len(seconds) / sum(seconds):8.0f} msg/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")


def main() -> None:
    url = os.environ.get("PLANLOOP_BENCH_DB") or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    engine = make_engine(url)
    upgrade(engine)
    gateway = FakeWeComAIBot("aib-bench", "bench-secret").start()
    app_bot = BotConfig(
        "wecom-main",
        "wecom",
        {"corp_id": CORP, "agent_id": AGENT, "api_base": "http://127.0.0.1:9"},
        {"secret": Secret("s"), "token": Secret(TOKEN), "aes_key": Secret(AES)},
    )
    ai_bot = BotConfig(
        "wecom-ai",
        "wecom",
        {"connection": "stream", "bot_id": "aib-bench", "ws_url": gateway.url},
        {"bot_secret": Secret("bench-secret")},
    )
    settings = Settings(database_url=url, bots=(app_bot, ai_bot), public_url="http://planloop.test")
    services = build_services(settings, engine=engine)
    router = Router()

    @router.command("进度", public=True)
    def progress(event: Inbound, ctx: Context) -> Card:
        return Card("本周进度", blocks=(Markdown("支付转化率 3.00 % → 3.50 %（目标 5.00 %）"),))

    services.router = router
    print(f"WeCom text commands: N={N}, {engine.dialect.name}, Python {sys.version.split()[0]}")

    client = create_app(settings, services).test_client()
    env = WxEnvelope(TOKEN, AES, CORP)
    requests = [sign_callback(env, text_xml(n), str(int(time.time())), f"n{n}", str(AGENT)) for n in range(N)]
    seconds: list[float] = []
    for args, body in requests:
        start = time.perf_counter()
        assert client.post("/webhooks/wecom/wecom-main", query_string=args, data=body).status_code == 200
        seconds.append(time.perf_counter() - start)
    report("webhook (in process)", seconds)

    platform = services.platforms["wecom-ai"]
    stream = build_stream(ai_bot, platform.deps, platform)
    stop, connected = threading.Event(), threading.Event()
    thread = threading.Thread(
        target=stream.run,
        args=(lambda inbound: dispatch.process(services, platform, inbound), stop, connected.set),
        daemon=True,
    )
    thread.start()
    assert connected.wait(5)

    done: set[str] = set()
    seen = [0]

    def replied(rid: str) -> bool:
        """Read only the gateway's frames since the last look (the bench must not load the CPU)."""
        frames = gateway.frames
        for record in frames[seen[0] : len(frames)]:
            if record.errcode == 0 and record.frame.get("cmd") == "aibot_respond_msg":
                done.add(record.frame["headers"]["req_id"])
        seen[0] = len(frames)
        return rid in done

    seconds = []
    for n in range(N):
        start = time.perf_counter()
        rid, _ = gateway.send_text("LiLei", f"进度 第{n}次")
        while not replied(rid):
            time.sleep(0.0002)
        seconds.append(time.perf_counter() - start)
    report("stream, one at a time", seconds)

    start = time.perf_counter()
    rids = [gateway.send_text("LiLei", f"进度 批量{n}")[0] for n in range(N)]
    while not replied(rids[-1]) or not all(r in done for r in rids):
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    print(f"{'stream, pipelined':<22} {N / elapsed:8.0f} msg/s   ({N} in {elapsed:.2f} s)")
    stop.set()
    thread.join(10)
    gateway.stop()


if __name__ == "__main__":
    main()
