"""Run claims, the job runner, the scheduler's slots, source polling with backoff, and the worker."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select

from bot.config import SourceConfig
from bot.worker import jobs, scheduler
from bot.worker.jobs import JobResult, UnknownJob, run_job
from bot.worker.process import run_now, run_worker
from storage.db import transaction
from storage.jobs import MAX_TRIES, claim_run
from storage.models import AuditLog, JobRun, OutboxMessage, SourceState

SH = ZoneInfo("Asia/Shanghai")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH).astimezone(UTC)


# --- claims -----------------------------------------------------------------------------------


def test_a_scheduled_period_is_claimed_once(db, clock) -> None:
    with transaction(db) as s:
        first = claim_run(s, "lag-alerts", "P1", clock(), "w1")
    with transaction(db) as s:
        second = claim_run(s, "lag-alerts", "P1", clock(), "w2")
        other_period = claim_run(s, "lag-alerts", "P2", clock(), "w2")
        other_job = claim_run(s, "reminders", "P1", clock(), "w2")
    assert first is not None and first.attempt == 0
    assert second is None
    assert other_period is not None and other_job is not None


def test_explicit_runs_take_the_next_attempt(db, clock) -> None:
    with transaction(db) as s:
        claim_run(s, "monday-summary", "P", clock(), "worker")
    attempts = []
    for _ in range(3):
        with transaction(db) as s:
            attempts.append(claim_run(s, "monday-summary", "P", clock(), "admin", explicit=True).attempt)
    assert attempts == [1, 2, 3]


def test_explicit_run_of_a_period_never_scheduled(db, clock) -> None:
    with transaction(db) as s:
        run = claim_run(s, "appraisal", "P", clock(), "admin", explicit=True)
    with transaction(db) as s:
        scheduled = claim_run(s, "appraisal", "P", clock(), "worker")
    assert run.attempt == 1 and scheduled is not None and scheduled.attempt == 0


@pytest.mark.parametrize(
    ("status", "age", "tries", "taken"),
    [
        ("running", timedelta(minutes=5), 1, False),  # its worker is probably still at it
        ("running", timedelta(minutes=31), 1, True),  # its worker died
        ("failed", timedelta(minutes=1), 1, True),
        ("failed", timedelta(minutes=1), MAX_TRIES, False),  # gave up
        ("done", timedelta(days=1), 1, False),
    ],
)
def test_takeover(db, clock, status: str, age: timedelta, tries: int, taken: bool) -> None:
    with transaction(db) as s:
        s.add(
            JobRun(
                job="lag-alerts",
                period="P",
                attempt=0,
                status=status,
                claimed_by="dead-worker",
                started_at=clock() - age,
                detail={"tries": tries},
            )
        )
    with transaction(db) as s:
        got = claim_run(s, "lag-alerts", "P", clock(), "w2")
    assert (got is not None) is taken
    if taken:
        assert (got.claimed_by, got.status, got.detail["tries"]) == ("w2", "running", tries + 1)


# --- the runner -------------------------------------------------------------------------------


def test_run_job_records_and_skips_the_second_claim(services, monkeypatch, db) -> None:
    calls: list[datetime] = []

    def fake(svc, at: datetime) -> JobResult:  # noqa: ANN001
        calls.append(at)
        return JobResult("reminders", enqueued=2, detail={"people": 2})

    monkeypatch.setitem(jobs.JOBS, "reminders", fake)
    at = local("2026-11-23 10:00")
    first = run_job(services, "reminders", at)
    second = run_job(services, "reminders", at)
    assert (first.status, first.period, first.enqueued) == ("done", "2026-11-23T10:00:00+08:00", 2)
    assert (second.status, second.reason) == ("skipped", "already claimed for this period")
    assert calls == [at]
    with db() as s:
        run = s.scalars(select(JobRun)).one()
        assert (run.status, run.detail["people"], run.detail["at"]) == ("done", 2, at.isoformat())


def test_a_crashing_job_is_failed_then_recovered(services, monkeypatch, db, clock) -> None:
    outcomes = [RuntimeError("database went away"), JobResult("reminders")]

    def flaky(svc, at: datetime) -> JobResult:  # noqa: ANN001
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setitem(jobs.JOBS, "reminders", flaky)
    at = local("2026-11-23 10:00")
    assert run_job(services, "reminders", at).status == "failed"
    recovered = jobs.recover(services, clock())
    assert recovered.detail == {"rerun": 1, "statuses": ["done"]}
    with db() as s:
        run = s.scalars(select(JobRun)).one()
        assert (run.status, run.detail["tries"]) == ("done", 2)


def test_unknown_job() -> None:
    with pytest.raises(UnknownJob, match="known: poll, progress, lag-alerts"):
        jobs.job_fn("monday-sumary")


def test_dedupe_suffix_only_for_explicit_runs(services, monkeypatch) -> None:
    seen: list[str] = []

    def job(svc, at: datetime) -> JobResult:  # noqa: ANN001
        seen.append(jobs.dedupe_suffix())
        return JobResult("appraisal")

    monkeypatch.setitem(jobs.JOBS, "appraisal", job)
    at = local("2026-11-27 20:00")
    run_job(services, "appraisal", at)
    run_job(services, "appraisal", at, explicit=True)
    run_job(services, "appraisal", at, explicit=True)
    assert seen == ["", "#run1", "#run2"]
    assert jobs.dedupe_suffix() == ""


# --- slots ------------------------------------------------------------------------------------


def with_sources(services, *sources: SourceConfig, admins: tuple[str, ...] = ()):  # noqa: ANN001, ANN201
    services.settings = replace(services.settings, sources=tuple(sources), extra={"admins": list(admins)})
    return services


def test_every_trigger_and_the_scheduler_carry_the_zone(services) -> None:
    with_sources(services, SourceConfig("shop", "file", {"interval": "15m"}, {}))
    sched = scheduler.build_scheduler(services)
    assert str(sched.timezone) == "Asia/Shanghai"
    triggers = {job.id: job.trigger for job in sched.get_jobs()}
    assert set(triggers) == {
        "lag-alerts",
        "monday-summary",
        "reminders",
        "appraisal",
        "appraisal-held",
        "recover",
        "directory-sync",
        "housekeeping",
        "poll:shop",
        "tick",
    }
    assert {str(t.timezone) for t in triggers.values()} == {"Asia/Shanghai"}
    assert not sched.running  # building is not starting


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("1h", 3600), ("2d", 172800), ("600", 600), (" 1H ", 3600)],
)
def test_parse_interval(text: str, seconds: int) -> None:
    assert scheduler.parse_interval(text).total_seconds() == seconds


@pytest.mark.parametrize("bad", ["", "5s", "1w", "-1h", "soon"])
def test_parse_interval_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        scheduler.parse_interval(bad)


@pytest.mark.parametrize(
    ("job", "now", "expected"),
    [
        ("lag-alerts", "2026-11-23 10:30", "2026-11-23 10:05"),
        ("lag-alerts", "2026-11-23 10:05", "2026-11-23 10:05"),
        ("lag-alerts", "2026-11-24 08:00", "2026-11-23 17:05"),
        ("monday-summary", "2026-11-23 09:00:59", "2026-11-23 09:00"),
        ("poll:shop", "2026-11-23 10:07:30", "2026-11-23 10:00"),  # 15-minute slots from midnight
        ("poll:shop", "2026-11-23 10:15", "2026-11-23 10:15"),
    ],
)
def test_previous_fire(services, job: str, now: str, expected: str) -> None:
    with_sources(services, SourceConfig("shop", "file", {"interval": "15m"}, {}))
    slot = next(s for s in scheduler.slots(services) if s.job == job)
    assert scheduler.previous_fire(slot.trigger, local(now)) == local(expected)


def test_lag_alert_slots_in_a_day(services) -> None:
    slot = next(s for s in scheduler.slots(services) if s.job == "lag-alerts")
    times = list(scheduler.fire_times(slot.trigger, local("2026-11-23 00:00"), local("2026-11-24 00:00")))
    assert [t.astimezone(SH).strftime("%H:%M") for t in times] == [f"{h:02d}:05" for h in range(9, 18)]


def test_fire_runs_the_slot_time_not_the_late_moment(services, clock, monkeypatch) -> None:
    seen: list[datetime] = []
    monkeypatch.setitem(jobs.JOBS, "lag-alerts", lambda svc, at: seen.append(at) or JobResult("lag-alerts"))
    slot = next(s for s in scheduler.slots(services) if s.job == "lag-alerts")
    clock.set(local("2026-11-23 10:06:40"))  # a thread got to it late
    scheduler.fire(services, slot)
    clock.set(local("2026-11-23 10:09:00"))  # a second worker, later still
    result = scheduler.fire(services, slot)
    assert seen == [local("2026-11-23 10:05")]
    assert result is not None and result.status == "skipped"


def test_catch_up_runs_missed_slots_once(services, clock, monkeypatch) -> None:
    seen: list[tuple[str, datetime]] = []
    for name in ("lag-alerts", "monday-summary", "reminders", "appraisal"):
        monkeypatch.setitem(jobs.JOBS, name, lambda svc, at, n=name: seen.append((n, at)) or JobResult(n))
    clock.set(local("2026-11-23 10:40"))
    scheduler.catch_up(services)
    scheduler.catch_up(services)  # a restart: nothing again
    assert sorted(seen) == [  # yesterday's 20:00 appraisal is more than six hours ago
        ("lag-alerts", local("2026-11-23 10:05")),
        ("monday-summary", local("2026-11-23 09:00")),
        ("reminders", local("2026-11-23 10:30")),
    ]


# --- polling ----------------------------------------------------------------------------------


def test_a_failing_source_backs_off_and_the_admin_hears_once(services, db, clock, monkeypatch) -> None:
    from tests import worker_seed as seed

    with db() as s, s.begin():
        seed.team(s, leader="root")
        seed.person(s, "root", "管理员")
    with_sources(services, SourceConfig("shop", "http_json", {"interval": "5m"}, {}), admins=("root",))
    polls: list[datetime] = []
    healthy = {"now": False}

    def poll_source(svc, source_id: str, now: datetime):  # noqa: ANN001, ANN202
        polls.append(now)
        if not healthy["now"]:
            raise ConnectionError("HTTP 503 from shop API: 店铺接口维护中")
        return {"error": ""}

    monkeypatch.setattr(jobs, "_poller", lambda: poll_source)
    start = local("2026-11-23 10:00")
    scheduler.fire_due(services, start - timedelta(seconds=1), start + timedelta(minutes=90))
    # 5-minute slots, but after each failure the source waits 1, 2, 4, 8, 16, 32, 60 … minutes
    offsets = [int((t - start).total_seconds() // 60) for t in polls]
    assert offsets == [0, 5, 10, 15, 25, 45, 80]
    with db() as s:
        notices = s.scalars(
            select(OutboxMessage).where(OutboxMessage.dedupe_key.like("admin:source-failing:%"))
        ).all()
        assert len(notices) == 1  # at the first failure an hour or more after the first one
        assert notices[0].created_at == start + timedelta(minutes=80)
        assert notices[0].target == "root"
        text = str(notices[0].card)
        assert "店铺接口维护中" in text and "shop" in text
        assert s.scalars(select(AuditLog)).one().detail["source"] == "shop"
    # it recovers; the next poll is due at +140 min (80 + 60): health is cleared, polls resume
    healthy["now"] = True
    scheduler.fire_due(services, start + timedelta(minutes=90), start + timedelta(minutes=150))
    with db() as s:
        assert s.scalars(select(SourceState)).all() == []
    assert len(polls) == 7 + 3


def test_poll_without_a_poller_is_skipped(services, monkeypatch) -> None:
    with_sources(services, SourceConfig("shop", "file", {}, {}))
    monkeypatch.setattr(jobs, "_poller", lambda: None)
    result = run_job(services, "poll", local("2026-11-23 10:00"))
    assert result.detail == {"poll:shop": "skipped"}


def test_explicit_poll_ignores_the_backoff(services, monkeypatch) -> None:
    with_sources(services, SourceConfig("shop", "file", {"interval": "1m"}, {}))
    polls: list[datetime] = []

    def failing(svc, source_id: str, now: datetime):  # noqa: ANN001, ANN202
        polls.append(now)
        raise TimeoutError("read timeout")

    monkeypatch.setattr(jobs, "_poller", lambda: failing)
    at = local("2026-11-23 10:00")
    run_job(services, "poll:shop", at)
    assert run_job(services, "poll:shop", at + timedelta(seconds=30)).status == "skipped"  # backing off
    assert run_job(services, "poll", at + timedelta(seconds=30), explicit=True).status == "failed"
    assert len(polls) == 2


# --- the worker -------------------------------------------------------------------------------


def test_worker_starts_and_stops(services) -> None:
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(target=run_worker, args=(services, stop), kwargs={"ready": ready})
    thread.start()
    assert ready.wait(10)
    stop.set()
    thread.join(30)
    assert not thread.is_alive()


def test_run_now_runs_again_and_delivers(services, monkeypatch, db, clock) -> None:
    from cards.model import Card
    from storage import outbox

    def job(svc, at: datetime) -> JobResult:  # noqa: ANN001
        with transaction(svc.sessions) as s:
            row = outbox.enqueue(
                s,
                outbox.Target("sim", "chat", "ops"),
                Card(title="周一汇总"),
                dedupe_key=f"monday:ops:{jobs.dedupe_suffix()}",
                now=at,
            )
        return JobResult("monday-summary", enqueued=int(row is not None))

    monkeypatch.setitem(jobs.JOBS, "monday-summary", job)
    at = local("2026-11-23 09:00")
    assert run_job(services, "monday-summary", at).enqueued == 1  # the scheduler's run
    result, stats = run_now(services, "monday-summary", at)  # the admin's re-send
    assert (result.status, result.enqueued, stats.sent) == ("done", 1, 2)
    with db() as s:
        assert s.scalars(select(OutboxMessage.status)).all() == ["sent", "sent"]


def test_cron_trigger_is_explicit_about_zone() -> None:
    # guard against APScheduler silently using the machine's zone
    trigger = CronTrigger(hour=9, timezone=SH)
    first = trigger.get_next_fire_time(None, local("2026-11-23 08:00"))
    assert first == local("2026-11-23 09:00")
