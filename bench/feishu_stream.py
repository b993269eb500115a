"""Benchmark: Feishu card submits through the long connection next to the webhook path, one run.

    python bench/feishu_stream.py [--events 500] [--db sqlite|postgresql]

One migrated database with the example team and four weeks of demo metrics, two bots of the
same app and bot id (the team file maps people to it): the webhook path (signed, encrypted
POSTs to the werkzeug server on 127.0.0.1) and the long-connection client against the fake
gateway (tests/fakes/feishu_gateway.py) with its own stream-mode adapter. Every event is a new form submit (new event id)
that stores a new plan version and answers with the receipt card, so both paths do the same
work. Stream is measured two ways: one event at a time (push, wait for the answer frame:
latency) and all pushed at once (the gateway keeps sending while the client works: events/s).
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.feishu import NOW, PEOPLE, report, run_http, setup  # noqa: E402
from bot import dispatch  # noqa: E402
from bot.config import BotConfig  # noqa: E402
from bot.platforms import Deps  # noqa: E402
from bot.platforms.feishu import FeishuPlatform  # noqa: E402
from bot.platforms.feishu_stream import FeishuStreamClient  # noqa: E402
from tests.fakes import feishu as ff  # noqa: E402
from tests.fakes.feishu_gateway import FakeGateway  # noqa: E402


def stream_submit(n: int) -> dict:
    value = {"action": "plan.submit", "week": "2026-W48"}
    form = {
        "item1_text": "优化详情页首屏",
        "item1_kpi": "conversion_rate",
        "item1_target": f"+{1 + n % 2}%",
        "item2_text": "主图测试",
        "item2_kpi": "ctr",
        "item2_target": "+0.5pp",
    }
    return ff.card_action(
        value, form_value=form, open_id=PEOPLE[n % len(PEOPLE)], event_id=f"stream-{n}", token=""
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app, services = setup(args.db)

    fake = ff.FakeFeishu(clock=lambda: NOW)
    gateway = FakeGateway(ff.APP_ID, ff.APP_SECRET)
    gateway.answer_budget = 60.0  # measure, do not redeliver
    fake.gateway = gateway
    with fake.running(), gateway.running():
        bot = ff.bot_config(
            fake.base_url,
            encrypt_key=None,
            verification_token=None,
            connection="stream",
        )
        assert isinstance(bot, BotConfig)
        deps = Deps(http=requests.Session(), clock=lambda: NOW, sessions=services.sessions)
        platform = FeishuPlatform(bot, deps)
        client = FeishuStreamClient(bot, deps, platform)
        stop, connected = threading.Event(), threading.Event()

        def handle(inbound):  # noqa: ANN001, ANN202
            return dispatch.process(services, platform, inbound)

        thread = threading.Thread(target=client.run, args=(handle, stop, connected.set), daemon=True)
        thread.start()
        assert connected.wait(10)
        gateway.wait_connected()

        print(f"planloop Feishu form submit, {args.db}, {args.events} events per run")
        for n in range(30):  # warm up
            gateway.wait(gateway.push(stream_submit(10**6 + n)))

        samples = []
        start = time.perf_counter()
        for n in range(args.events):
            t0 = time.perf_counter()
            answer = gateway.wait(gateway.push(stream_submit(n)), timeout=30)
            samples.append(time.perf_counter() - t0)
            assert answer["code"] == 200 and "card" in answer["data"], answer
        report("stream, one at a time", samples, time.perf_counter() - start)

        start = time.perf_counter()
        pushed = [gateway.push(stream_submit(10**5 + n)) for n in range(args.events)]
        for item in pushed:
            assert gateway.wait(item, timeout=120)["code"] == 200
        wall = time.perf_counter() - start
        print(f"{'stream, all pushed at once':<34} n={args.events:<5} {args.events / wall:8.1f} events/s")

        stop.set()
        thread.join(timeout=5)
        assert gateway.problems == [], gateway.problems

    run_http(app, args.events, 1, offset=10**7)  # signed, encrypted POSTs, one client thread
    run_http(app, args.events, 4, offset=10**8)


if __name__ == "__main__":
    main()
