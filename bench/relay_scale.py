"""Benchmark: the relay at scale, with the limits shared (issue 18 §5).

    python bench/relay_scale.py [--db postgresql|sqlite] [--messages 5000] [--targets 200] [--workers 3]
                                [--concurrency N]

Targets are group robots on the three platforms' fakes (tests/fakes: DingTalk custom robots
and WeCom group robots, 20 in any 60 s; Feishu custom robots, 5 a second and 100 a minute),
a third each, every fake answering each send 50 ms late. ``--messages`` are spread evenly
over the targets and enqueued at once; ``--workers`` relays (one engine each, each in a
process of its own, as real workers are; the fakes stay in this one), each sending up to ``--concurrency`` messages at once (default: the relay's own
``RelayPolicy.concurrency``; 1 is the relay of before), drain them on the real clock. Reported: the time to drain, refusals and
duplicates seen by the fakes, and per platform the share of the limit used: for each target,
the least time its limit allows for its messages over the time they took (100 % = as fast as
the platform allows).
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/"
LATE = 0.05
MARK = re.compile(r"scale-(\d+)")


def database(db: str) -> str:
    if db == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    from sqlalchemy import text

    from storage.db import make_engine

    admin = make_engine(PG + "postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS planloop_bench_scale WITH (FORCE)"))
        conn.execute(text("CREATE DATABASE planloop_bench_scale"))
    admin.dispose()
    return PG + "planloop_bench_scale"


def least_time(n: int, count: int, per: float) -> float:
    """The least time ``n`` sends take under "``count`` in any ``per`` s" (first to last)."""
    return ((n - 1) // count) * per if n > 0 else 0.0


def relay_process(  # noqa: PLR0913 - what a spawned process is handed
    url: str, key: str, fakes: dict, concurrency: int | None, name: str, go: Any, stop: Any, results: Any
) -> None:
    """One relay with its own engine, pointed at the fakes; sends its RelayStats back at the end."""
    import requests

    from bot.config import BotConfig, Secret, Settings
    from bot.platforms import Deps
    from bot.platforms.dingtalk import DingTalkPlatform
    from bot.platforms.feishu import FeishuPlatform
    from bot.platforms.wecom import WeComPlatform
    from bot.services import build_services
    from bot.worker.delivery import Relay, RelayPolicy, RelayStats
    from storage.db import make_engine
    from tests.fakes import feishu as ff

    settings = Settings(database_url=url, simulator=False, secret_keys=(Secret(key),))
    services = build_services(settings, engine=make_engine(url))
    deps = Deps(http=requests.Session(), clock=services.clock, sessions=services.sessions)
    dt, wc = fakes["dingtalk"], fakes["wecom"]
    services.platforms["dingtalk-main"] = DingTalkPlatform(
        BotConfig(
            "dingtalk-main",
            "dingtalk",
            {"app_key": dt["app_key"], "api_base": dt["url"], "oapi_base": dt["url"]},
            {"app_secret": Secret(dt["app_secret"])},
        ),
        deps,
    )
    services.platforms["wecom-main"] = WeComPlatform(
        BotConfig(
            "wecom-main",
            "wecom",
            {"corp_id": wc["corp_id"], "agent_id": wc["agent_id"], "api_base": wc["url"]},
            {"secret": Secret(wc["secret"]), "token": Secret(wc["token"]), "aes_key": Secret(wc["aes_key"])},
        ),
        deps,
    )
    services.platforms["feishu-main"] = FeishuPlatform(ff.bot_config(fakes["feishu"]["url"]), deps)
    policy = RelayPolicy() if concurrency is None else RelayPolicy(concurrency=concurrency)
    relay = Relay(services, name=name, policy=policy)
    outcomes = RelayStats()
    results.put(name)  # built
    go.wait()
    while not stop.is_set():
        stats = relay.run_once()
        outcomes.add(stats)
        if not stats.progressed:
            nxt = relay.next_due()
            wait = 0.2 if nxt is None else max(0.01, min(0.2, (nxt - services.clock()).total_seconds()))
            stop.wait(wait)
    relay.close()
    results.put(outcomes)


def main() -> None:  # noqa: PLR0915 - one linear script
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--targets", type=int, default=200)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=None)
    args = parser.parse_args()

    import logging

    from bot.worker.delivery import RelayPolicy, RelayStats
    from cards.model import Card, Markdown
    from storage import outbox
    from storage.db import make_engine, make_sessionmaker, transaction, upgrade
    from storage.models import Team
    from storage.secrets import Sealer
    from tests.fakes import feishu as ff
    from tests.fakes.dingtalk import FakeDingTalk
    from tests.fakes.wecom import FakeWeCom

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    key = "vExb5JuV_czKxZS0p-hDWNIgfPEeCPHkEzIkVmJknLA="  # bench only
    clock = lambda: datetime.now(UTC)  # noqa: E731
    url = database(args.db)
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_sessionmaker(engine)

    dingtalk = FakeDingTalk(clock).start()
    wecom = FakeWeCom()
    wecom.start()
    feishu = ff.FakeFeishu(clock=clock)
    feishu_ctx = feishu.running()
    feishu_ctx.__enter__()
    n_each = args.targets // 3
    budget = args.messages * 2
    dingtalk.slow_next("/robot/send", LATE, times=budget)
    wecom.fail_next("webhook/send", delay=LATE, times=budget)
    feishu.lose_next_answer("/open-apis/bot/v2/hook/", delay=LATE, times=budget)
    sealer = Sealer([key])
    teams: list[tuple[str, str]] = []  # (team id, bot id)
    hooks: dict[str, str] = {}  # Feishu hook -> team
    with transaction(sessions) as session:
        for n in range(args.targets):
            platform = ("dingtalk", "wecom", "feishu")[n % 3]
            if platform == "dingtalk":
                hook_url = dingtalk.add_robot("")
            elif platform == "wecom":
                hook_url = wecom.add_robot(f"robot-{n}")
            else:
                hook_url = feishu.add_robot("")
                hooks[hook_url.rsplit("/", 1)[1]] = f"t{n}"
            team = Team(
                id=f"t{n}",
                name=f"组{n}",
                chat_bot=f"{platform}-main",
                chat_id=f"t{n}",
                webhook_enc=sealer.seal(hook_url),
                webhook_allow_private=True,  # the fakes listen on loopback (the outbound guard)
            )
            session.add(team)
            teams.append((team.id, f"{platform}-main"))
        session.flush()
        now = clock()
        for m in range(args.messages):
            team_id, bot_id = teams[m % len(teams)]
            outbox.enqueue(
                session,
                outbox.Target(bot_id, "webhook", team_id),
                Card(f"第 {m} 条", blocks=(Markdown(f"进度 scale-{m}"),)),
                dedupe_key=f"scale:{m}",
                now=now,
            )

    fakes = {
        "dingtalk": {"app_key": dingtalk.app_key, "url": dingtalk.url, "app_secret": dingtalk.app_secret},
        "wecom": {
            "corp_id": wecom.corp_id,
            "agent_id": wecom.agent_id,
            "url": wecom.url,
            "secret": wecom.secret,
            "token": wecom.token,
            "aes_key": wecom.aes_key,
        },
        "feishu": {"url": feishu.base_url},
    }
    # Each relay in a process of its own, as real workers are: the fakes keep this one.
    spawn = multiprocessing.get_context("spawn")
    go, stop = spawn.Event(), spawn.Event()
    results = spawn.Queue()
    processes = [
        spawn.Process(
            target=relay_process,
            args=(url, key, fakes, args.concurrency, f"w{w}", go, stop, results),
            daemon=True,
        )
        for w in range(args.workers)
    ]
    concurrency = args.concurrency or RelayPolicy().concurrency
    from sqlalchemy import func, select

    from storage.models import OutboxMessage

    for process in processes:
        process.start()
    for _ in processes:  # each says when its relay is built
        results.get(timeout=120)
    started = time.monotonic()
    go.set()
    while True:
        time.sleep(0.5)
        with sessions() as session:
            pending = session.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "pending")
            )
        if not pending or time.monotonic() - started > 900:
            break
    took = time.monotonic() - started
    stop.set()
    outcomes = RelayStats()
    for _ in processes:
        outcomes.add(results.get(timeout=60))
    for process in processes:
        process.join(10)

    # what the fakes saw
    def marks(bodies: list[Any]) -> list[int]:
        return [int(x) for b in bodies for x in set(MARK.findall(repr(b)))]

    dt_bodies = [m["body"] for m in dingtalk.robot_messages]
    wc_bodies = [b for bodies in wecom.robot.values() for b in bodies]
    fs_bodies = list(feishu.robot_posts)
    seen = Counter(marks(dt_bodies) + marks(wc_bodies) + marks(fs_bodies))
    duplicates = sum(n - 1 for n in seen.values() if n > 1)
    refusals = {
        "dingtalk": sum(r.throttled for r in dingtalk.robots.values()),
        "wecom": sum(1 for p, _ in wecom.requests if p == "/cgi-bin/webhook/send") - len(wc_bodies),
        "feishu": sum(1 for _, p in feishu.requests if p.startswith("/open-apis/bot/v2/hook/"))
        - len(fs_bodies),
    }
    # share of the limit: per target, least time the limit allows / time taken
    per_target: dict[str, list[float]] = defaultdict(list)
    for m in dingtalk.robot_messages:
        per_target["dingtalk:" + m["robot"]].append(m["at"].timestamp())
    for k, times in wecom.robot_at.items():
        per_target["wecom:" + k].extend(times)
    for k, times in feishu.robot_at.items():
        per_target["feishu:" + k].extend(times)
    shares: dict[str, list[float]] = defaultdict(list)
    for target, times in per_target.items():
        times.sort()
        span = times[-1] - times[0]
        platform = target.split(":")[0]
        # the platform's own limit: 20 in any 60 s; Feishu's robot 5 in any second (and 100 a minute)
        least = least_time(len(times), 5, 1.0) if platform == "feishu" else least_time(len(times), 20, 60.0)
        if span > 0:
            shares[platform].append(min(1.0, least / span))
    with sessions() as session:
        by_status = dict(
            session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all()
        )
    print(
        f"{args.db}: {args.messages} messages over {args.targets} robots ({n_each}+ per platform), "
        f"{args.workers} relay processes of {concurrency} sends at once, "
        f"fakes answering {LATE * 1000:.0f} ms late"
    )
    print(
        f"  drained in {took:.1f} s; rows {by_status}; delivered {len(seen)} distinct, duplicates {duplicates}"
    )
    print(f"  refusals {refusals}")
    print(
        f"  relay outcomes: claimed {outcomes.claimed}, sent {outcomes.sent}, waited {outcomes.waited}, "
        f"retried {outcomes.retried}, lost {outcomes.lost}, unknown {outcomes.unknown}, dead {outcomes.dead}"
    )
    for platform, values in sorted(shares.items()):
        values.sort()
        print(
            f"  {platform}: share of the platform's limit used, per robot: median {values[len(values) // 2]:.0%}, "
            f"lowest {values[0]:.0%}"
        )
    feishu_ctx.__exit__(None, None, None)
    dingtalk.stop()
    wecom.stop()


if __name__ == "__main__":
    main()
