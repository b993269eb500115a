"""Benchmark: DingTalk robot messages end to end, Stream connection next to the webhook path, one run.

    python bench/stream_bench.py [--n 500] [--db postgresql+psycopg://…]

Both paths end in the same inbound transaction (signature or frame parse, dedupe, router, outbox
row, commit) for the message ``帮助`` from a known person:

- webhook: signed ``POST /webhooks/dingtalk/<bot>/robot`` to the web app on a real port
  (threaded werkzeug), one request after the other (a platform waits for each answer);
- stream: frames pushed by the fake Stream gateway (tests/fakes/dingtalk_stream.py) over a real
  websocket to the supervisor's client, which acknowledges each after its commit; measured one
  at a time (push, wait for the ack) and pipelined (push all, wait for every ack).

Nothing leaves 127.0.0.1. Prints events per second and per-event latency.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import threading
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

import requests  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from bot.config import BotConfig, Secret, Settings  # noqa: E402
from bot.demo.run import team_file  # noqa: E402
from bot.services import build_services  # noqa: E402
from bot.web.app import create_app  # noqa: E402
from bot.worker.streams import Supervisor  # noqa: E402
from handlers.setup import apply, parse  # noqa: E402
from storage.db import make_engine, upgrade  # noqa: E402
from storage.models import InboundEvent  # noqa: E402
from storage.secrets import Sealer  # noqa: E402
from tests.fakes.dingtalk import ROBOT_TOPIC, FakeDingTalk  # noqa: E402

KEY = "vExb5JuV_czKxZS0p-hDWNIgfPEeCPHkEzIkVmJknLA="
LILEI = "0102"


def report(name: str, count: int, seconds: float, latencies: list[float]) -> None:
    line = f"{name:<30} {count / seconds:8.0f} events/s"
    if latencies:
        ordered = sorted(latencies)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        line += f"   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms"
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--db", default="")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    db_url = args.db or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    clock = lambda: datetime.now(UTC)  # noqa: E731
    fake = FakeDingTalk(clock).start()
    gateway = fake.stream()
    engine = make_engine(db_url)
    upgrade(engine)
    values = {
        "app_key": fake.app_key,
        "robot_code": fake.robot_code,
        "api_base": fake.url,
        "oapi_base": fake.url,
    }
    secrets = {"app_secret": Secret(fake.app_secret)}
    bots = (
        BotConfig("dingtalk-main", "dingtalk", {**values, "connection": "stream"}, secrets),
        # the same app's robot over HTTP, named on people's ids through the same team file
        BotConfig("dingtalk-http", "dingtalk", values, secrets),
    )
    settings = Settings(database_url=db_url, bots=bots, secret_keys=(Secret(KEY),))
    services = build_services(settings, engine=engine)
    sealer = Sealer([KEY])
    raw = tomllib.loads(team_file().read_text(encoding="utf-8"))
    for person in raw["people"]:
        person["ids"]["dingtalk-http"] = person["ids"]["dingtalk-main"]
    with services.sessions() as session, session.begin():
        apply(session, parse(raw), now=clock(), actor="bench", seal=sealer.seal, open_sealed=sealer.open)

    server = make_server("127.0.0.1", 0, create_app(settings, services), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/webhooks/dingtalk/dingtalk-http/robot"
    stop = threading.Event()
    supervisor = Supervisor(services, lease_poll=0.2)
    supervisor.start(stop)
    if not gateway.wait_live(1, 15):
        raise SystemExit("the stream did not connect")

    http = requests.Session()
    webhook = [fake.robot_callback("帮助", sender=LILEI, conversation_type="1") for _ in range(args.n)]
    one_by_one = [fake.robot_message("帮助", sender=LILEI, conversation_type="1") for _ in range(args.n)]
    pipelined = [fake.robot_message("帮助", sender=LILEI, conversation_type="1") for _ in range(args.n)]
    for headers, body in webhook[:20]:  # warm-up, both paths
        http.post(url, data=body, headers=headers, timeout=10)
    for msg in one_by_one[:20]:
        gateway.wait_ack(gateway.push(ROBOT_TOPIC, msg), 10)
    webhook, one_by_one = webhook[20:], one_by_one[20:]

    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, database {engine.dialect.name}, {len(webhook)} events each"
    )
    latencies = []
    started = time.perf_counter()
    for headers, body in webhook:
        t0 = time.perf_counter()
        response = http.post(url, data=body, headers=headers, timeout=10)
        latencies.append(time.perf_counter() - t0)
        if response.status_code != 200:
            raise SystemExit(f"webhook answered {response.status_code}: {response.text}")
    report("webhook (HTTP, sequential)", len(webhook), time.perf_counter() - started, latencies)

    latencies = []
    started = time.perf_counter()
    for msg in one_by_one:
        t0 = time.perf_counter()
        if gateway.wait_ack(gateway.push(ROBOT_TOPIC, msg), 10) is None:
            raise SystemExit("a frame was not acknowledged")
        latencies.append(time.perf_counter() - t0)
    report("stream (one frame at a time)", len(one_by_one), time.perf_counter() - started, latencies)

    started = time.perf_counter()
    ids = [gateway.push(ROBOT_TOPIC, msg) for msg in pipelined]
    if any(gateway.wait_ack(m, 60) is None for m in ids):
        raise SystemExit("a frame was not acknowledged")
    report("stream (pipelined)", len(ids), time.perf_counter() - started, [])

    with services.sessions() as session:  # every event took effect once, on both paths
        stored = session.scalar(select(func.count()).select_from(InboundEvent))
    if stored != 20 + len(webhook) + 20 + len(one_by_one) + len(pipelined):
        raise SystemExit(f"{stored} events stored")
    stop.set()
    supervisor.join(10)
    server.shutdown()
    fake.stop()


if __name__ == "__main__":
    main()
