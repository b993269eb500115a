"""Benchmark: how often a relay SIGKILLed mid-delivery shows a message twice on a channel without
idempotency (a group robot), with and without the relay's "in flight" mark.

    python bench/sigkill_relay.py [--messages 600] [--db sqlite|postgresql] [--no-mark] [--targets N] [--startup S]

A fake chat server (tests/fakes/chat_server.py) records every request. A relay runs in a child
process against it, as a group robot would be sent to (``repeats_dropped`` is False), and the
parent SIGKILLs the child at random moments (every 30-300 ms), then starts a new one, until the
outbox holds nothing pending. A kill between the server's "ok" and the relay's "sent" write
leaves a row that the next relay claims again once its lease (1 s here) runs out:

- without the mark, it is sent again: a duplicate in the group;
- with it, the row is ``unknown`` and waits for an admin: no duplicate.

Prints: kills, messages shown twice, the rows by status, and how many unknown rows had arrived.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/"


def child(url: str, server: str, mark: bool) -> None:
    """One relay process: deliver what is due, forever (until killed)."""
    from bot.config import Settings
    from bot.services import build_services
    from bot.worker import delivery
    from bot.worker.delivery import Relay, RelayPolicy
    from tests.fakes.chat_server import HttpFakePlatform

    services = build_services(Settings(database_url=url, simulator=False))
    robot = HttpFakePlatform("robot", server, timeout=2.0)
    robot.repeats_dropped = lambda message: False  # type: ignore[attr-defined]  # a group robot
    services.platforms["robot"] = robot
    if not mark:
        delivery._repeats_dropped = lambda platform, message: True  # the relay before the mark
    relay = Relay(
        services, name=f"child-{os.getpid()}", policy=RelayPolicy(batch=5, lease=timedelta(seconds=1))
    )
    while True:
        if not relay.run_once().progressed:
            time.sleep(0.05)


def database(db: str) -> str:
    if db == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    from sqlalchemy import text

    from storage.db import make_engine

    admin = make_engine(PG + "postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS planloop_bench_sigkill WITH (FORCE)"))
        conn.execute(text("CREATE DATABASE planloop_bench_sigkill"))
    admin.dispose()
    return PG + "planloop_bench_sigkill"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--startup", type=float, default=1.0, help="seconds a child needs to start (more on a loaded machine)"
    )
    parser.add_argument(
        "--targets", type=int, default=1, help="chats the messages are spread over (>1: concurrent sends)"
    )
    parser.add_argument("--no-mark", action="store_true", help="the relay without its in-flight mark")
    parser.add_argument("--child", nargs=3, metavar=("URL", "SERVER", "MARK"), help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=18)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.child[2] == "on")
        return

    from sqlalchemy import func, select

    from cards.model import Card, Markdown
    from storage import outbox
    from storage.db import make_engine, make_sessionmaker, transaction, upgrade
    from storage.models import OutboxMessage
    from tests.fakes.chat_server import ChatServer

    url = database(args.db)
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    now = datetime.now(UTC)
    with transaction(sessions) as session:
        for n in range(args.messages):
            outbox.enqueue(
                session,
                outbox.Target("robot", "chat", "ops" if args.targets <= 1 else f"ops{n % args.targets}"),
                Card(f"第 {n} 条", blocks=(Markdown("本周进度"),)),
                dedupe_key=f"kill:{n}",
                now=now,
            )
    server = ChatServer().start()
    rng = random.Random(args.seed)
    kills = 0
    mark = "off" if args.no_mark else "on"
    started = time.monotonic()
    try:
        while True:
            with sessions() as session:
                pending = session.scalar(
                    select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "pending")
                )
            if not pending:
                break
            proc = subprocess.Popen(
                [sys.executable, __file__, "--child", url, server.url, mark],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(args.startup + rng.uniform(0.03, 0.3))  # the child's start-up, then a random moment
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
    finally:
        server.stop()
    shown = Counter(body["uuid"] for body in server.received)
    twice = sum(1 for n in shown.values() if n > 1)
    with sessions() as session:
        by_status = dict(
            session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all()
        )
        unknown = list(session.scalars(select(OutboxMessage.id).where(OutboxMessage.status == "unknown")))
    arrived = sum(1 for oid in unknown if shown[oid])
    print(
        f"{args.db}, mark {mark}: {args.messages} messages, {kills} kills in {time.monotonic() - started:.0f} s; "
        f"shown twice: {twice}; rows {by_status}; unknown rows that had arrived: {arrived}"
    )


if __name__ == "__main__":
    main()
