"""Benchmark: encrypted DingTalk events through the Flask app (run by hand, numbers go in the README).

    python bench/dingtalk.py [--n 2000] [--db sqlite:////tmp/bench.db]

Two kinds of push, each pre-encrypted with dingtalk-sdk (so only our side is timed):
- ``check_url``: verify the SHA-1 signature and the window, decrypt, answer an encrypted "success";
- a card ``actionCallback``: the same, plus the whole inbound transaction (event-id dedupe,
  router, outbox row, commit) and the encrypted answer.
Single-threaded through Flask's test client, so the numbers are per worker process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

# Run as a script, this folder would be sys.path[0] and this file would shadow the dingtalk-sdk package.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from dingtalk.crypto import DingTalkCrypto  # noqa: E402

from bot.app import create_app  # noqa: E402
from bot.config import BotConfig, Secret, Settings  # noqa: E402
from bot.services import build_services  # noqa: E402
from storage.db import make_engine, upgrade  # noqa: E402

APP_KEY, TOKEN, AES_KEY = "dingbenchapp", "benchtoken", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def pushes(n: int, plain: dict) -> list[tuple[str, bytes]]:
    crypto = DingTalkCrypto(TOKEN, AES_KEY, APP_KEY)
    out = []
    for _ in range(n):
        now_ms = str(int(time.time() * 1000))
        sealed = crypto.encrypt_message(json.dumps(plain), nonce=uuid.uuid4().hex[:10], timestamp=now_ms)
        query = urlencode(
            {"signature": sealed["msg_signature"], "timestamp": now_ms, "nonce": sealed["nonce"]}
        )
        out.append((query, json.dumps({"encrypt": sealed["encrypt"]}).encode()))
    return out


def run(client, items: list[tuple[str, bytes]]) -> list[float]:
    times = []
    for query, body in items:
        start = time.perf_counter()
        response = client.post(f"/webhooks/dingtalk/dt?{query}", data=body, content_type="application/json")
        times.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise SystemExit(f"unexpected {response.status_code}: {response.get_data(as_text=True)}")
    return times


def report(name: str, times: list[float]) -> None:
    ordered = sorted(times)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    print(f"{name:<28} {len(times) / sum(times):8.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--db", default="")
    args = parser.parse_args()
    db_url = args.db or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    engine = make_engine(db_url)
    upgrade(engine)
    bot = BotConfig(
        "dt",
        "dingtalk",
        {"app_key": APP_KEY, "api_base": "http://127.0.0.1:9", "oapi_base": "http://127.0.0.1:9"},
        {"app_secret": Secret("s"), "token": Secret(TOKEN), "aes_key": Secret(AES_KEY)},
    )
    settings = Settings(database_url=db_url, bots=(bot,), secret_keys=(Secret("bench-key"),))
    client = create_app(settings, build_services(settings, engine=engine)).test_client()

    check = pushes(args.n, {"EventType": "check_url"})
    callback = {
        "type": "actionCallback",
        "userId": "staff-bench",
        "outTrackId": "planloop-bench",
        "spaceType": "IM_GROUP",
        "spaceId": "cidBench==",
        "content": json.dumps({"cardPrivateData": {"actionIds": ["b0"], "params": {"action": "bench.noop"}}}),
        "extension": "{}",
    }
    cards = pushes(args.n, callback)
    run(client, pushes(50, {"EventType": "check_url"}))  # warm-up
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {args.n} requests each, database {engine.dialect.name}")
    report("check_url", run(client, check))
    report("card actionCallback (+DB)", run(client, cards))


if __name__ == "__main__":
    main()
