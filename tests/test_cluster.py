"""Issue 12's Done-when: two `planloop serve` and two `planloop worker` processes on one PostgreSQL
database, a simulated week (Mon 09:00 → Sat 09:00) on a shared clock file, every inbound event
sent twice to the two web replicas, the leader worker SIGKILLed mid-week. Afterwards, from the
database: every scheduled (job, period) ran once, every outbox message went out once (and the
simulator's transcript has no extra delivery), every inbound event took effect once.

Time is compressed: one simulated hour per ``STEP`` real seconds. A leader's failover takes up
to ``POLL_SECONDS`` of real time, which here would be hours of simulated time (in production it
is seconds); so after the SIGKILL the test holds the clock until the successor leads, then goes on.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.config import Secret, Settings
from bot.demo.run import seed_metrics
from bot.services import CLOCK_FILE_ENV, build_services
from bot.worker.scheduler import fire_times, slots
from handlers.setup import apply, parse
from handlers.team_edits import example_team_file as team_file
from storage.db import make_engine, upgrade
from storage.models import InboundEvent, JobRun, OutboxMessage, Plan, SimMessage
from storage.secrets import Sealer
from tests.conftest import TEST_KEY
from tests.dbs import KINDS, fresh_database
from tests.test_serve import free_port, wait_until_up

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SH = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 23, 9, 0, tzinfo=SH)  # Monday 09:00
END = datetime(2026, 11, 28, 9, 0, tzinfo=SH)  # Saturday 09:00
STEP = 0.25  # real seconds per simulated hour
KILL_AT = datetime(2026, 11, 25, 13, 0, tzinfo=SH)  # Wednesday, mid-day
SCHEDULED = ("lag-alerts", "monday-summary", "reminders", "appraisal")  # cron slots: every time counts

OPS = ("zhangwei", "lilei", "hanmeimei", "zhaoqiang", "chenjing", "liuyang")
SERVICE = ("wangfang", "sunli", "zhoumin", "wujun", "zhenggang", "fengtao")


def plan_text(person: str, version: int) -> str:
    if person in OPS:
        return f"计划\n优化详情页首屏 v{version} 支付转化率 +2%\n差评回访 投诉率 -10%"
    return f"计划\n缩短首次响应 v{version} 投诉率 -10%"


def form_values(person: str, version: int) -> dict[str, str]:
    kpi = "conversion_rate" if person in OPS else "complaint_rate"
    target = "+3%" if person in OPS else "-12%"
    return {"item1_text": f"表单计划 v{version}", "item1_kpi": kpi, "item1_target": target}


# (when, serve call, body) — every event has an explicit id; each is sent twice
def script() -> list[tuple[datetime, str, dict[str, Any]]]:
    mon = START.date()
    at = lambda h, m=0, d=0: datetime(mon.year, mon.month, mon.day + d, h, m, tzinfo=SH)  # noqa: E731
    events: list[tuple[datetime, str, dict[str, Any]]] = []
    for person in OPS + SERVICE:  # Monday morning: everyone's first version, by text
        events.append(
            (at(10), "say", {"id": f"v1-{person}", "as": person, "chat": "dm", "text": plan_text(person, 1)})
        )
    for person in ("lilei", "sunli", "wujun"):  # a second version before the 14:00 deadline, by form
        body = {
            "id": f"v2-{person}",
            "as": person,
            "chat": "dm",
            "action": "plan.submit",
            "values": form_values(person, 2),
        }
        events.append((at(11), "act", body))
    # after the deadline: lilei's edit is refused; his leader unlocks; the edit goes through
    events.append(
        (at(15), "say", {"id": "late-lilei", "as": "lilei", "chat": "dm", "text": plan_text("lilei", 3)})
    )
    events.append(
        (
            at(16),
            "act",
            {
                "id": "unlock-lilei",
                "as": "zhangwei",
                "chat": "dm",
                "action": "plan.unlock",
                "values": {"person": "lilei"},
            },
        )
    )
    events.append(
        (at(17), "say", {"id": "v3-lilei", "as": "lilei", "chat": "dm", "text": plan_text("lilei", 3)})
    )
    for d in range(1, 4):  # progress checks during the week, before and after the SIGKILL
        for person in ("hanmeimei", "wangfang"):
            events.append(
                (
                    at(10, 30, d),
                    "say",
                    {"id": f"progress-{d}-{person}", "as": person, "chat": "dm", "text": "进度"},
                )
            )
    return events


EXPECTED_VERSIONS = {p: 1 for p in OPS + SERVICE} | {"lilei": 3, "sunli": 2, "wujun": 2}


def post(port: int, call: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/sim/api/{call}",
        json.dumps(body).encode(),
        {"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=15) as res:  # noqa: S310 - loopback
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {"error": exc.read().decode("utf-8", "replace")}


def race(ports: tuple[int, int], call: str, body: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """The event and the platform's retry of it, at the same time, on the two web replicas."""
    answers: list[tuple[int, dict[str, Any]]] = []
    threads = [threading.Thread(target=lambda p=p: answers.append(post(p, call, body))) for p in ports]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def set_clock(path: Path, at: datetime) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(at.isoformat(), encoding="utf-8")
    os.replace(tmp, path)  # atomic: a reader never sees half a time


def write_config(path: Path, worker_port: int) -> Path:
    path.write_text(
        '[server]\ndatabase_url = "env:TEST_DATABASE_URL"\nsecret_key = "env:TEST_SECRET_KEY"\n'
        f"worker_port = {worker_port}\nscheduler_tick_seconds = 1\n"
        "[simulator]\nenabled = true\n",
        encoding="utf-8",
    )
    return path


class Proc:
    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path):
        self.name = name
        self.log = log
        self.handle = log.open("w", encoding="utf-8")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "bot.cli.commands", *args],
            env=env,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def leading(self) -> bool:
        """Leads now: its last leadership line says so (the log is this process's own)."""
        lines = [
            ln for ln in self.text().splitlines() if "scheduler resumed" in ln or "scheduler paused" in ln
        ]
        return bool(lines) and "scheduler resumed" in lines[-1]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self.handle.close()


def wait(condition, seconds: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_web_two_workers_one_week_leader_killed(tmp_path) -> None:
    if "postgresql" not in KINDS:
        pytest.skip(
            "needs PostgreSQL: on SQLite a second worker is refused (one worker per database file), "
            "so a cluster of workers only exists on PostgreSQL"
        )
    with fresh_database("postgresql", tmp_path) as url:
        clock_file = tmp_path / "clock"
        set_clock(clock_file, START)  # the workers start (and catch up) at Monday 09:00
        settings = Settings(database_url=url, secret_keys=(Secret(TEST_KEY),), simulator=True)
        services = build_services(settings, clock=lambda: START)
        upgrade(services.engine)
        sealer = Sealer([TEST_KEY])
        spec = parse(tomllib.loads(team_file().read_text(encoding="utf-8")))
        with services.sessions() as session, session.begin():
            apply(session, spec, now=START, actor="test", seal=sealer.seal, open_sealed=sealer.open)
            assert seed_metrics(session, START.date(), START) > 0
        services.engine.dispose()

        env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMETHEUS_", "GUNICORN_"))}
        env.update(
            TEST_DATABASE_URL=url,
            TEST_SECRET_KEY=TEST_KEY,
            PYTHONPATH=str(ROOT),
            PLANLOOP_LOG_FORMAT="text",
            PLANLOOP_LOG_LEVEL="info",
            **{CLOCK_FILE_ENV: str(clock_file)},
        )
        procs: list[Proc] = []
        try:
            web_ports = [free_port(), free_port()]
            for n, port in enumerate(web_ports):
                cfg = write_config(tmp_path / f"web{n}.toml", 0)
                args = [
                    "--config",
                    str(cfg),
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    "1",
                ]
                procs.append(Proc(f"web{n}", args, env, tmp_path / f"web{n}.log"))
            workers = []
            for n in range(2):
                cfg = write_config(tmp_path / f"worker{n}.toml", free_port())
                workers.append(
                    Proc(f"worker{n}", ["--config", str(cfg), "worker"], env, tmp_path / f"worker{n}.log")
                )
            procs.extend(workers)
            for proc, port in zip(procs, web_ports, strict=False):
                wait_until_up(port, proc.popen)
            wait(lambda: sum(w.leading() for w in workers) == 1, 20, "one leader among the workers")

            events = script()
            replies: dict[str, list[tuple[int, dict[str, Any]]]] = {}
            killed: Proc | None = None
            survivor: Proc | None = None
            at = START
            k = 0
            while at <= END:
                set_clock(clock_file, at)
                while k < len(events) and events[k][0] <= at:
                    when, call, body = events[k]
                    first, second = web_ports[k % 2], web_ports[(k + 1) % 2]
                    answers = race((first, second), call, body)
                    replies[body["id"]] = answers
                    k += 1
                if killed is None and at >= KILL_AT:
                    (leader,) = [w for w in workers if w.leading()]
                    leader.popen.send_signal(signal.SIGKILL)
                    leader.popen.wait(10)
                    killed = leader
                    (survivor,) = [w for w in workers if w is not leader]
                    wait(survivor.leading, 10, "the surviving worker to take the leadership over")
                time.sleep(STEP)
                at += timedelta(hours=1)
            assert killed is not None
            # let the last ticks and deliveries settle
            at = END
            set_clock(clock_file, at)
            engine = make_engine(url)
            with engine.connect() as conn:

                def settled() -> bool:
                    pending = conn.execute(
                        select(func.count())
                        .select_from(OutboxMessage)
                        .where(OutboxMessage.status == "pending")
                    ).scalar_one()
                    conn.rollback()
                    return pending == 0

                wait(settled, 20, "the outbox to drain")
            time.sleep(1.5)  # one more tick
        finally:
            for proc in procs:
                proc.stop()
        logs = {p.name: p.text() for p in procs}

        assert killed is not None and survivor is not None
        try:
            check_database(engine, replies, logs)
            with engine.connect() as conn:  # both led: the killed one before, the survivor after
                claims = conn.execute(
                    select(JobRun.period, JobRun.claimed_by).where(JobRun.attempt == 0)
                ).all()
            pid_of = {period: claimed_by.split(":")[1] for period, claimed_by in claims}
            before = {pid for period, pid in pid_of.items() if period < KILL_AT.isoformat()}
            after = {
                pid for period, pid in pid_of.items() if period > (KILL_AT + timedelta(hours=1)).isoformat()
            }
            assert str(killed.popen.pid) in before
            assert after == {str(survivor.popen.pid)}
        finally:
            engine.dispose()


def check_database(engine, replies, logs) -> None:  # noqa: ANN001
    for name, text in logs.items():
        assert "Traceback" not in text, f"{name} logged a traceback:\n{text[-4000:]}"
    # -- inbound: each event took effect once (one real answer, one duplicate ack, never a 500)
    for event_id, answers in replies.items():
        assert sorted(status for status, _ in answers) == [200, 200], (event_id, answers)
        kinds = sorted(bool(body.get("duplicate")) for _, body in answers)
        assert kinds == [False, True], (event_id, answers)
    with engine.connect() as conn:
        keys = set(conn.execute(select(InboundEvent.key)).scalars())
        sent = {f"sim:{e}" for e in replies}
        # every stored id is one we sent; the daily housekeeping (03:45) forgets ids older than
        # events.KEEP, and the week walks past it, so the ids it deleted are exactly those it counted
        forgotten = sum(
            int(detail.get("inbound_events", 0))
            for detail in conn.execute(select(JobRun.detail).where(JobRun.job == "housekeeping")).scalars()
        )
        assert keys <= sent and len(sent - keys) == forgotten
        plans = conn.execute(select(Plan.person_id, Plan.version, Plan.current)).all()
        versions: dict[str, list[int]] = {}
        for person, version, _current in plans:
            versions.setdefault(person, []).append(version)
        assert {p: sorted(v) for p, v in versions.items()} == {
            p: list(range(1, n + 1)) for p, n in EXPECTED_VERSIONS.items()
        }
        assert {p for p, _v, current in plans if current} == set(EXPECTED_VERSIONS)
        assert {p: v for p, v, current in plans if current} == EXPECTED_VERSIONS

        # -- scheduled: every cron slot of the week has its attempt-0 run, and each finished
        runs = conn.execute(select(JobRun.job, JobRun.period, JobRun.attempt, JobRun.status)).all()
        zero = Counter((job, period) for job, period, attempt, _ in runs if attempt == 0)
        assert max(zero.values()) == 1
        done = {(job, period) for job, period, _a, status in runs if status == "done"}
        settings = Settings(database_url=str(engine.url), simulator=True)
        services = build_services(settings, engine=engine)
        expected = {
            (slot.job, t.astimezone(SH).isoformat(timespec="seconds"))
            for slot in slots(services)
            if slot.job in SCHEDULED
            for t in fire_times(slot.trigger, START - timedelta(seconds=1), END)
        }
        ran = {key for key in zero if key[0] in SCHEDULED}
        assert ran == expected, (sorted(expected - ran)[:10], sorted(ran - expected)[:10])
        assert expected <= done, sorted(expected - done)[:10]

        # -- outbox: each message (dedupe key) sent exactly once, one transcript row per send
        rows = conn.execute(
            select(OutboxMessage.dedupe_key, OutboxMessage.status, OutboxMessage.platform_message_id)
        ).all()
        assert rows, "the week sent nothing"
        assert Counter(status for _, status, _ in rows) == {"sent": len(rows)}
        assert len({key for key, _, _ in rows}) == len(rows)
        delivered = [pid for _, _, pid in rows]
        assert len(set(delivered)) == len(delivered)
        bot_rows = conn.execute(select(SimMessage.id).where(SimMessage.sender == "bot")).scalars().all()
        sync_replies = sum(
            len(body.get("replies", [])) for answers in replies.values() for _s, body in answers
        )
        # every bot line in the transcript is either an answer to an event or one outbox send
        assert len(bot_rows) == sync_replies + len(rows)
        assert {f"sim-{i}" for i in bot_rows} >= set(delivered)
    print(f"\ncluster week: {len(replies)} events, {len(ran)} scheduled runs, {len(rows)} messages sent")
