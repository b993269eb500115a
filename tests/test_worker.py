"""`planloop worker` wiring: the counters move, a second SQLite worker is refused, leadership
gates the scheduler, the leader's tick runs what became due on a fake clock, and the
test-only PLANLOOP_CLOCK_FILE clock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING
from prometheus_client import REGISTRY
from sqlalchemy import select

from bot.services import CLOCK_FILE_ENV, build_services, default_clock, file_clock
from bot.worker import scheduler
from bot.worker.delivery import Relay, RelayPolicy
from bot.worker.jobs import JobResult, run_job
from bot.worker.process import Worker
from cards.model import Card
from storage import outbox
from storage.db import transaction
from storage.models import JobRun
from tests import worker_seed as seed
from tests.fakes.chat_server import ChatServer, HttpFakePlatform
from tests.test_serve import env_for, free_port, get, planloop

SH = ZoneInfo("Asia/Shanghai")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH).astimezone(UTC)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- counters -----------------------------------------------------------------------------------


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    server = ChatServer().start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("script", "result"),
    [(["ok"], "sent"), (["500"], "retry"), (["400"], "dead")],
)
def test_each_delivery_attempt_counts_once_by_result(services, chat, db, script, result) -> None:
    services.platforms["fake"] = HttpFakePlatform("fake", chat.url)
    with db() as session, session.begin():
        seed.team(session, leader="root")
    with transaction(services.sessions) as session:
        outbox.enqueue(
            session,
            outbox.Target("fake", "user", "u1"),
            Card(title="x"),
            dedupe_key="k1",
            now=services.clock(),
        )
    chat.script.extend(script)
    before = {r: sample("planloop_deliveries_total", result=r) for r in ("sent", "retry", "dead", "skipped")}
    stats = Relay(services, name="A", policy=RelayPolicy(), rng=lambda: 0.5).run_once()
    assert stats.claimed == 1
    after = {r: sample("planloop_deliveries_total", result=r) for r in before}
    assert {r: after[r] - before[r] for r in before} == {r: (1.0 if r == result else 0.0) for r in before}


def test_job_runs_count_done_skipped_and_failed(services) -> None:
    at = services.clock()

    def ok(_services, _at):  # noqa: ANN001, ANN202
        return JobResult("probe")

    def broken(_services, _at):  # noqa: ANN001, ANN202
        raise RuntimeError("boom")

    def delta(status: str, run) -> float:  # noqa: ANN001
        before = sample("planloop_job_runs_total", job="probe", status=status)
        run()
        return sample("planloop_job_runs_total", job="probe", status=status) - before

    assert delta("done", lambda: run_job(services, "probe", at, fn=ok)) == 1
    # the same (job, period) again: claimed already
    assert delta("skipped", lambda: run_job(services, "probe", at, fn=ok)) == 1
    later = at + timedelta(hours=1)
    assert delta("failed", lambda: run_job(services, "probe", later, fn=broken)) == 1


# --- leadership gates the scheduler ---------------------------------------------------------------


class Toggle:
    """An election the test switches by hand (the real ones are tested in test_leader.py)."""

    def __init__(self) -> None:
        self.leads = False
        self.released = False

    @property
    def is_leader(self) -> bool:
        return self.leads

    def try_acquire(self) -> bool:
        return self.leads

    def check(self) -> bool:
        return self.leads

    def release(self) -> None:
        self.released = True
        self.leads = False


def wait_for(condition, seconds: float = 5.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_the_scheduler_runs_only_while_leading_and_the_relay_always(services) -> None:
    election = Toggle()
    worker = Worker(services, election=election, poll=0.05)
    stop = threading.Event()
    ready = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop, ready), daemon=True)
    thread.start()
    try:
        assert ready.wait(5)
        assert worker.scheduler is not None
        assert worker.scheduler.state == STATE_PAUSED  # started, but not leading
        assert worker.alive()  # relays run on a follower too
        election.leads = True
        wait_for(lambda: worker.scheduler.state == STATE_RUNNING)
        election.leads = False
        wait_for(lambda: worker.scheduler.state == STATE_PAUSED)
        election.leads = True
        wait_for(lambda: worker.scheduler.state == STATE_RUNNING)  # resumable, never restarted
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert election.released
    assert not worker.alive()


def test_without_an_election_the_scheduler_always_runs(services) -> None:
    """The demo's in-process worker: no lock to be refused by."""
    worker = Worker(services, poll=0.05)
    stop = threading.Event()
    ready = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop, ready), daemon=True)
    thread.start()
    try:
        assert ready.wait(5)
        assert worker.scheduler is not None and worker.scheduler.state == STATE_RUNNING
    finally:
        stop.set()
        thread.join(10)


# --- the tick -----------------------------------------------------------------------------------


def claimed_runs(services) -> set[tuple[str, str]]:  # noqa: ANN001
    with services.sessions() as session:
        return {(r.job, r.period) for r in session.scalars(select(JobRun).where(JobRun.attempt == 0))}


def test_the_tick_runs_every_slot_due_since_the_last_tick_once(services, clock) -> None:
    clock.set(local("2026-11-23 10:00"))
    tick = scheduler.Ticker(services)
    clock.set(local("2026-11-23 12:00"))
    tick()
    # (10:00, 12:00]: lag-alerts at :05 in 9-17, reminders at :00/:30 in 8-20, recover (every
    # 5 min) coalesced to its latest time; no monday-summary (09:00) nor appraisal (20:00)
    expected = {
        ("lag-alerts", "2026-11-23T10:05:00+08:00"),
        ("lag-alerts", "2026-11-23T11:05:00+08:00"),
        ("reminders", "2026-11-23T10:30:00+08:00"),
        ("reminders", "2026-11-23T11:00:00+08:00"),
        ("reminders", "2026-11-23T11:30:00+08:00"),
        ("reminders", "2026-11-23T12:00:00+08:00"),
        ("recover", "2026-11-23T12:00:00+08:00"),
        ("appraisal-held", "2026-11-23T12:00:00+08:00"),  # every 15 min, coalesced (issue 16)
    }
    assert claimed_runs(services) == expected
    # a tick with no time passed runs nothing; the next window starts where this one ended
    assert tick() == []
    clock.set(local("2026-11-23 12:31"))
    results = tick()
    assert [(r.job, r.period) for r in results] == [
        ("lag-alerts", "2026-11-23T12:05:00+08:00"),
        ("appraisal-held", "2026-11-23T12:30:00+08:00"),
        ("recover", "2026-11-23T12:30:00+08:00"),
        ("reminders", "2026-11-23T12:30:00+08:00"),
    ]


def test_a_tick_and_a_trigger_on_the_same_slot_run_it_once(services, clock) -> None:
    clock.set(local("2026-11-23 08:59"))
    tick = scheduler.Ticker(services)
    clock.set(local("2026-11-23 09:00"))
    slot = next(s for s in scheduler.slots(services) if s.job == "monday-summary")
    first = scheduler.fire(services, slot)  # APScheduler's cron trigger
    assert first is not None and first.reason != "already claimed for this period"
    again = [r for r in tick() if r.job == "monday-summary"]
    assert [(r.status, r.reason) for r in again] == [("skipped", "already claimed for this period")]


def test_a_tick_after_a_long_gap_looks_back_at_most_the_catch_up_window(services, clock) -> None:
    clock.set(local("2026-11-20 12:00"))  # e.g. a worker that followed for days, then leads
    tick = scheduler.Ticker(services)
    clock.set(local("2026-11-23 10:00"))
    tick()
    earliest = min(datetime.fromisoformat(period) for _job, period in claimed_runs(services))
    assert earliest >= local("2026-11-23 10:00") - scheduler.CATCH_UP_WITHIN


@pytest.mark.parametrize(("value", "seconds"), [(None, 30.0), (1, 1.0), ("2.5", 2.5), ("x", 30.0), (0, 0.1)])
def test_scheduler_tick_seconds(value, seconds) -> None:  # noqa: ANN001
    extra = {} if value is None else {"scheduler_tick_seconds": value}
    assert scheduler.tick_seconds(extra) == seconds


# --- the test-only clock file ---------------------------------------------------------------------


def test_the_clock_file_moves_the_default_clock(tmp_path, monkeypatch, settings) -> None:
    path = tmp_path / "clock"
    path.write_text("2026-11-23T09:00:00+08:00", encoding="utf-8")
    monkeypatch.setenv(CLOCK_FILE_ENV, str(path))
    services = build_services(settings)
    assert services.clock() == local("2026-11-23 09:00")
    path.write_text("2026-11-28T10:30:00+08:00\n", encoding="utf-8")
    assert services.clock() == local("2026-11-28 10:30")
    path.write_text("", encoding="utf-8")  # a half-written file keeps the last time read
    assert services.clock() == local("2026-11-28 10:30")


def test_a_naive_time_in_the_clock_file_is_utc(tmp_path) -> None:
    path = tmp_path / "clock"
    path.write_text("2026-11-23T01:00:00", encoding="utf-8")
    assert file_clock(str(path))() == datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def test_without_the_variable_the_clock_is_real(monkeypatch) -> None:
    monkeypatch.delenv(CLOCK_FILE_ENV, raising=False)
    before = datetime.now(UTC)
    now = default_clock()()
    assert before <= now <= datetime.now(UTC)


# --- `planloop worker` as a process -------------------------------------------------------------


def write_worker_config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "planloop.toml"
    path.write_text(
        '[server]\ndatabase_url = "env:TEST_DATABASE_URL"\nsecret_key = "env:TEST_SECRET_KEY"\n'
        f"worker_port = {port}\n",
        encoding="utf-8",
    )
    return path


def wait_until_healthy(worker: subprocess.Popen[str], port: int, seconds: float = 60) -> None:
    """Until the worker's health port answers ok (imports alone take seconds on a busy machine)."""
    deadline = time.monotonic() + seconds
    while True:
        assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
        try:
            if get(f"http://127.0.0.1:{port}/healthz") == (200, {"status": "ok"}):
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, "the worker did not come up"
        time.sleep(0.1)


def test_a_second_sqlite_worker_is_refused_with_exit_1(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'planloop.db'}"
    port = free_port()
    env = env_for(write_worker_config(tmp_path, port), url, PLANLOOP_LOG_FORMAT="text")
    assert planloop("db", "upgrade", env=env).returncode == 0
    first = subprocess.Popen(
        [sys.executable, "-m", "bot.cli.commands", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_healthy(first, port)
        second = planloop("worker", env=env_for(write_worker_config(tmp_path, 0), url), timeout=30)
        assert second.returncode == 1
        assert "another planloop worker (pid " + str(first.pid) in second.stderr
        assert "SQLite allows one worker" in second.stderr
        assert first.poll() is None  # the first one is untouched
    finally:
        first.send_signal(signal.SIGTERM)
        try:
            assert first.wait(30) == 0
        finally:
            if first.poll() is None:
                os.kill(first.pid, signal.SIGKILL)
    # the lock died with its holder: a new worker starts (and stops cleanly once it is up: a SIGTERM
    # before its handler is installed would be a kill, not a stop)
    port = free_port()
    third = subprocess.Popen(
        [sys.executable, "-m", "bot.cli.commands", "worker"],
        env=env_for(write_worker_config(tmp_path, port), url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until_healthy(third, port)
    third.send_signal(signal.SIGTERM)
    assert third.wait(30) == 0


# --- a platform retry racing its original on another web replica --------------------------------


def test_a_retry_racing_the_original_is_a_duplicate_not_an_error(engine, clock) -> None:
    """The retry's lookup ran before the original committed; its insert then meets the key."""
    from sqlalchemy import event as sa_event

    from storage import events
    from storage.db import make_sessionmaker

    sessions = make_sessionmaker(engine)
    with sessions() as session, session.begin():
        assert events.first_time(session, "sim:ev-1", clock())
    # the retry's SELECT happened "before" the commit above: make it see nothing
    hide = "inbound_events.key = "

    def blind(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ANN202, ARG001
        if statement.lstrip().upper().startswith("SELECT") and hide in statement:
            statement = statement.replace(hide, "inbound_events.key IS NULL AND inbound_events.key = ")
        return statement, parameters

    sa_event.listen(engine, "before_cursor_execute", blind, retval=True)
    try:
        with sessions() as session, session.begin():
            assert events.first_time(session, "sim:ev-1", clock()) is False
            # the transaction is still usable: the handler's writes would go on
            assert events.first_time(session, "sim:ev-2", clock()) is True  # a new key still goes in
    finally:
        sa_event.remove(engine, "before_cursor_execute", blind)
