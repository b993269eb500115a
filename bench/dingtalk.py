"""Benchmark: DingTalk callbacks through the Flask app (run by hand, numbers go in the docs).

    python bench/dingtalk.py [--n 2000] [--db sqlite:////tmp/bench.db]

Two kinds of push, each prepared beforehand (so only our side is timed):
- ``check_url`` (encrypted with dingtalk-sdk): verify the SHA-1 signature and the window, decrypt,
  answer an encrypted "success";
- a card ``actionCallback`` on the card route (``x-ddpaas-signature``): verify, plus the whole
  inbound transaction (event-id dedupe, router, commit) and the answer.
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

from bot.config import BotConfig, Secret, Settings  # noqa: E402
from bot.services import build_services  # noqa: E402
from bot.web.app import create_app  # noqa: E402
from storage.db import make_engine, upgrade  # noqa: E402

APP_KEY, TOKEN, AES_KEY = "dingbenchapp", "benchtoken", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


CARD_SECRET = "bench-card-secret"


def card_pushes(n: int, plain: dict) -> list[tuple[str, bytes, dict[str, str]]]:
    import base64
    import hashlib
    import hmac

    out = []
    for i in range(n):
        ts = str(int(time.time() * 1000) + i)  # one click each
        sign = base64.b64encode(hmac.new(CARD_SECRET.encode(), ts.encode(), hashlib.sha256).digest()).decode()
        headers = {"x-ddpaas-signature-timestamp": ts, "x-ddpaas-signature": sign}
        out.append(("/webhooks/dingtalk/dt/card", json.dumps(plain).encode(), headers))
    return out


def pushes(n: int, plain: dict) -> list[tuple[str, bytes, dict[str, str]]]:
    crypto = DingTalkCrypto(TOKEN, AES_KEY, APP_KEY)
    out = []
    for _ in range(n):
        now_ms = str(int(time.time() * 1000))
        sealed = crypto.encrypt_message(json.dumps(plain), nonce=uuid.uuid4().hex[:10], timestamp=now_ms)
        query = urlencode(
            {"signature": sealed["msg_signature"], "timestamp": now_ms, "nonce": sealed["nonce"]}
        )
        out.append(
            (f"/webhooks/dingtalk/dt?{query}", json.dumps({"encrypt": sealed["encrypt"]}).encode(), {})
        )
    return out


def run(client, items: list[tuple[str, bytes, dict[str, str]]]) -> list[float]:
    times = []
    for path, body, headers in items:
        start = time.perf_counter()
        response = client.post(path, data=body, headers=headers, content_type="application/json")
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
        {
            "app_secret": Secret("s"),
            "token": Secret(TOKEN),
            "aes_key": Secret(AES_KEY),
            "card_callback_secret": Secret(CARD_SECRET),
        },
    )
    settings = Settings(database_url=db_url, bots=(bot,), secret_keys=(Secret("bench-key"),))
    client = create_app(settings, build_services(settings, engine=engine)).test_client()

    check = pushes(args.n, {"EventType": "check_url"})
    callback = {
        "type": "actionCallback",
        "userId": "staff-bench",
        "outTrackId": "planloop-bench",
        "corpId": "dingbench",
        "content": json.dumps({"cardPrivateData": {"actionIds": ["b0"], "params": {"action": "bench.noop"}}}),
    }
    cards = card_pushes(args.n, callback)
    run(client, pushes(50, {"EventType": "check_url"}))  # warm-up
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {args.n} requests each, database {engine.dialect.name}")
    report("check_url", run(client, check))
    report("card actionCallback (+DB)", run(client, cards))


if __name__ == "__main__":
    main()
