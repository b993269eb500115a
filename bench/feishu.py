"""Benchmark: a signed, encrypted Feishu card submit (a real weekly plan) through the Flask app.

    python bench/feishu.py [--requests 1000] [--threads 4] [--db sqlite|postgresql]

Two runs on one migrated database with the example team and four weeks of demo metrics:
1. in-process (Flask test client, one at a time): latency of the whole inbound path —
   signature check, AES decrypt, parse, event-id dedupe, plan validation and storage,
   receipt card rendered into the 3-second reply, receipt queued in the outbox;
2. over HTTP (werkzeug threaded server on 127.0.0.1, ``--threads`` clients): requests/s.
Each request is a new callback (new event id) from one of six people, alternating targets,
so every one stores a new plan version. Also timed: the adapter alone (verify + decrypt +
parse + render), the cost Feishu-specific code adds to every request.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import requests
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.config import Secret, Settings  # noqa: E402
from bot.platforms.base import CaseInsensitiveDict, WebRequest  # noqa: E402
from bot.services import build_services  # noqa: E402
from bot.web.app import create_app  # noqa: E402
from storage.db import make_engine, upgrade  # noqa: E402
from tests.fakes import feishu as ff  # noqa: E402

PEOPLE = ["ou_lilei", "ou_hanmeimei", "ou_zhaoqiang", "ou_zhangwei", "ou_chenjing", "ou_liuyang"]
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai: before the plan deadline
URL = "/webhooks/feishu/feishu-main"


def setup(db: str) -> tuple[object, object]:
    from bot.demo.run import seed_metrics
    from handlers.setup import apply, parse

    if db == "postgresql":
        url = "postgresql+psycopg://postgres@127.0.0.1:5432/planloop_bench"
        admin = make_engine(
            "postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
        )
        from sqlalchemy import text

        with admin.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS planloop_bench WITH (FORCE)"))
            conn.execute(text("CREATE DATABASE planloop_bench"))
    else:
        url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    engine = make_engine(url)
    upgrade(engine)
    settings = Settings(
        database_url=url,
        secret_keys=(Secret("dGVzdC1rZXktZm9yLXBsYW5sb29wLXRlc3RzLW9ubHk9"),),
        public_url="http://planloop.test",
        bots=(ff.bot_config("http://127.0.0.1:9"),),
    )
    services = build_services(settings, clock=lambda: NOW, engine=engine)
    spec = parse(tomllib.loads((ROOT / "examples" / "team.toml").read_text("utf-8")))
    with services.sessions() as session, session.begin():
        apply(session, spec, now=NOW)
        seed_metrics(session, NOW.astimezone(ZoneInfo("Asia/Shanghai")).date(), NOW)
    app = create_app(settings, services)
    return app, services


def submit_event(n: int) -> ff.Event:
    """Person n % 6 submits a two-item plan; the target alternates so each submit is a new version."""
    value = {"action": "plan.submit", "week": "2026-W48"}
    form = {
        "item1_text": "优化详情页首屏",
        "item1_kpi": "conversion_rate",
        "item1_target": f"+{1 + n % 2}%",
        "item2_text": "主图测试",
        "item2_kpi": "ctr",
        "item2_target": "+0.5pp",
    }
    payload = ff.card_action(value, form_value=form, open_id=PEOPLE[n % len(PEOPLE)], event_id=f"bench-{n}")
    return ff.deliver(payload, now=NOW)


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def report(name: str, samples: list[float], wall: float) -> None:
    print(
        f"{name:<34} n={len(samples):<5} {len(samples) / wall:8.1f} req/s   "
        f"p50 {pct(samples, 50) * 1000:6.2f} ms   p99 {pct(samples, 99) * 1000:6.2f} ms   "
        f"mean {statistics.mean(samples) * 1000:6.2f} ms"
    )


def run_in_process(app, count: int, offset: int) -> None:  # noqa: ANN001
    client = app.test_client()
    events = [submit_event(offset + n) for n in range(count)]
    samples = []
    start = time.perf_counter()
    for event in events:
        t0 = time.perf_counter()
        resp = client.post(URL, data=event.body, headers=event.headers)
        samples.append(time.perf_counter() - t0)
        assert resp.status_code == 200 and "card" in resp.get_json(), resp.get_data(as_text=True)[:300]
    report("in-process (test client)", samples, time.perf_counter() - start)


def run_http(app, count: int, threads: int, offset: int) -> None:  # noqa: ANN001
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    events = [submit_event(offset + n) for n in range(count)]
    samples: list[float] = []
    lock = threading.Lock()
    failures: list[str] = []

    def client(part: list[ff.Event]) -> None:
        session = requests.Session()
        local = []
        for event in part:
            t0 = time.perf_counter()
            resp = session.post(base + URL, data=event.body, headers=event.headers, timeout=30)
            local.append(time.perf_counter() - t0)
            if resp.status_code != 200:
                failures.append(f"{resp.status_code} {resp.text[:200]}")
        with lock:
            samples.extend(local)

    parts = [events[i::threads] for i in range(threads)]
    start = time.perf_counter()
    workers = [threading.Thread(target=client, args=(p,)) for p in parts]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - start
    server.shutdown()
    report(f"HTTP, {threads} client threads", samples, wall)
    if failures:
        print(f"  {len(failures)} failed, e.g. {failures[0]}")


def run_adapter(services, count: int) -> None:  # noqa: ANN001
    from cards.model import Card, Markdown

    platform = services.platforms["feishu-main"]
    card = Card("本周计划已提交 · 2026-W48", theme="green", blocks=(Markdown("共 2 项"),))
    events = [submit_event(n) for n in range(count)]
    samples = []
    start = time.perf_counter()
    for event in events:
        t0 = time.perf_counter()
        inbound = platform.parse(
            WebRequest("POST", "", {}, CaseInsensitiveDict(event.headers), event.body), NOW
        )
        response, _ = platform.answer(inbound, card)
        json.dumps(response.body, ensure_ascii=False)
        samples.append(time.perf_counter() - t0)
    report("adapter only (verify+decrypt+render)", samples, time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    app, services = setup(args.db)
    print(f"planloop Feishu card submit, {args.db}, {args.requests} requests per run")
    run_in_process(app, 50, offset=10**6)  # warm up imports, caches, the DB file
    run_in_process(app, args.requests, offset=0)
    run_http(app, args.requests, args.threads, offset=10**5)
    run_adapter(services, args.requests)


if __name__ == "__main__":
    main()
