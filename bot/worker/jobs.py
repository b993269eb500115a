"""Scheduled jobs: the registry that ``planloop run JOB --at`` and the scheduler share, and the
runner that claims every run first so it happens once across workers, restarts and misfires.

A job is ``fn(services, at) -> JobResult``; ``at`` is the moment it runs "as of" (the
scheduler's slot time, or ``--at``). Jobs enqueue messages through the outbox with dedupe
keys, so running one twice for the same slot sends nothing twice; an explicit run
(``planloop run``) is the admin asking to send again, and ``dedupe_suffix()`` gives its
keys a suffix of their own.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections import Counter
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.config import Settings
from bot.ops import metrics
from bot.services import Services
from bot.worker.delivery import worker_name
from cards import builders_ops
from handlers import digests, workdays
from handlers.alerts import run_lag_alerts
from handlers.ops import notify_admins
from handlers.progress import week_progress
from handlers.reminders import run_plan_reminders
from storage.db import transaction
from storage.jobs import claim_run, finish_run, recoverable
from storage.models import SourceState, Team

if TYPE_CHECKING:
    from handlers.directory import PullSummary

log = logging.getLogger("planloop.jobs")


@dataclass
class JobResult:
    job: str
    period: str = ""
    status: str = "done"  # done | skipped | failed
    enqueued: int = 0  # outbox rows written
    reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


JobFn = Callable[[Services, datetime], JobResult]


@dataclass(frozen=True)
class RunInfo:
    job: str
    period: str
    attempt: int  # 0: the scheduler's run; 1, 2 …: an admin's explicit `planloop run`
    at: datetime

    @property
    def explicit(self) -> bool:
        return self.attempt > 0


_current: ContextVar[RunInfo | None] = ContextVar("planloop_job_run", default=None)


def current_run() -> RunInfo | None:
    """The run the calling job belongs to (None outside ``run_job``)."""
    return _current.get()


def dedupe_suffix() -> str:
    """Append to outbox dedupe keys: "" for scheduled runs, "#run<N>" for an explicit re-run."""
    run = _current.get()
    return f"#run{run.attempt}" if run is not None and run.explicit else ""


def admin_ids(settings: Settings) -> list[str]:
    """Person ids of the service's admins: ``[server] admins = ["zhangwei"]``."""
    admins = settings.extra.get("admins", [])
    return [str(a) for a in admins] if isinstance(admins, list | tuple) else []


# --- progress and lag alerts --------------------------------------------------------------------


def lag_alerts(services: Services, at: datetime) -> JobResult:
    with transaction(services.sessions) as session:
        run = run_lag_alerts(session, at, bots=frozenset(services.platforms), dedupe_suffix=dedupe_suffix())
    return JobResult(
        "lag-alerts",
        enqueued=run.employee + run.leader,
        detail={
            "employee": run.employee,
            "leader": run.leader,
            "lagging": run.lagging,
            "skipped": run.skipped,
        },
    )


def progress(services: Services, at: datetime) -> JobResult:
    """Compute this week's progress for every team and report the counts (sends nothing)."""
    with services.sessions() as session:
        zones = {
            t.timezone or "Asia/Shanghai" for t in session.scalars(select(Team).where(Team.active.is_(True)))
        }
        counts: Counter[str] = Counter()
        for zone in sorted(zones):
            tz = ZoneInfo(zone)
            teams = [
                t.id
                for t in session.scalars(select(Team).where(Team.active.is_(True), Team.timezone == zone))
            ]
            for item in week_progress(session, workdays.week_of(at, tz), at, team_ids=teams, tz=tz):
                counts[item.status] += 1
    return JobResult("progress", detail={"items": sum(counts.values()), **dict(counts)})


# --- polling metric sources ---------------------------------------------------------------------

SOURCE_HEALTH = "health"
FAILING_NOTICE_AFTER = timedelta(hours=1)
SOURCE_BACKOFF_BASE = timedelta(minutes=1)
SOURCE_BACKOFF_MAX = timedelta(hours=1)


def _poller() -> Callable[..., Any] | None:
    """``bot.worker.polling.poll_source(services, source_id, now)``, written by the sources work; None until it lands."""
    try:
        module = importlib.import_module("bot.worker.polling")
    except ImportError:
        return None
    return getattr(module, "poll_source", None)


def _error_of(result: Any) -> str:
    if result is None:
        return ""
    if isinstance(result, dict):
        return str(result.get("error") or "")
    return str(getattr(result, "error", "") or "")


def _health(session: Any, source_id: str) -> tuple[SourceState | None, dict[str, Any]]:
    row = session.get(SourceState, (source_id, SOURCE_HEALTH))
    if row is None:
        return None, {}
    try:
        return row, dict(json.loads(row.value))
    except ValueError:
        return row, {}


def poll_one(services: Services, at: datetime, *, source_id: str) -> JobResult:
    """Poll one source, unless it is backing off after failures; tell the admins, once, when
    it has been failing for an hour."""
    name = f"poll:{source_id}"
    explicit = bool((run := current_run()) and run.explicit)
    with services.sessions() as session:
        _, health = _health(session, source_id)
    next_try = health.get("next_try")
    if next_try and not explicit and at < datetime.fromisoformat(next_try):
        return JobResult(name, status="skipped", reason=f"backing off until {next_try}")
    poll = _poller()
    if poll is None:
        log.warning("bot.worker.polling is not installed yet; source %s not polled", source_id)
        return JobResult(name, status="skipped", reason="no poller (bot.worker.polling) installed")
    try:
        error = _error_of(poll(services, source_id, at))
    except Exception as exc:  # the source's own error is what the admin needs to read
        log.warning("poll %s failed", source_id, exc_info=True)
        error = f"{type(exc).__name__}: {exc}"
    with transaction(services.sessions) as session:
        row, health = _health(session, source_id)
        if not error:
            if row is not None:
                session.delete(row)
            return JobResult(name)
        failures = int(health.get("failures", 0)) + 1
        since = datetime.fromisoformat(health["since"]) if health.get("since") else at
        delay = min(SOURCE_BACKOFF_MAX, SOURCE_BACKOFF_BASE * (2 ** (failures - 1)))
        health = {
            **health,
            "failures": failures,
            "since": since.isoformat(),
            "next_try": (at + delay).isoformat(),
            "error": error[:1000],
        }
        enqueued = 0
        if at - since >= FAILING_NOTICE_AFTER and not health.get("notified"):
            card = builders_ops.source_failing_card(
                source_id=source_id,
                since=since.astimezone(services.settings.tz),
                failures=failures,
                error=error,
            )
            enqueued = notify_admins(
                session,
                admin_ids(services.settings),
                card,
                bots=frozenset(services.platforms),
                dedupe_key=f"source-failing:{source_id}:{since.isoformat()}",
                now=at,
                audit={"source": source_id, "error": error[:500]},
            )
            health["notified"] = True
        text = json.dumps(health, ensure_ascii=False)
        if row is None:
            session.add(SourceState(source_id=source_id, key=SOURCE_HEALTH, value=text, updated_at=at))
        else:
            row.value, row.updated_at = text, at
    return JobResult(name, status="failed", reason=error, enqueued=enqueued, detail={"failures": failures})


def poll(services: Services, at: datetime) -> JobResult:
    """Poll every configured source now (``planloop run poll``)."""
    results = [poll_one(services, at, source_id=s.id) for s in services.settings.sources]
    failed = [r.job for r in results if r.status == "failed"]
    return JobResult(
        "poll",
        status="failed" if failed else "done",
        enqueued=sum(r.enqueued for r in results),
        reason=", ".join(failed),
        detail={r.job: r.status for r in results},
    )


# --- digests and reminders (issue 11) ----------------------------------------------------------


class TeamsFailed(RuntimeError):
    """Some teams' runs failed (the others went out): the run is marked failed so ``recover`` runs it
    again, and the outbox keys and the appraisal guard keep the teams already done from repeating."""


def _per_team(
    services: Services,
    name: str,
    due: list[tuple[str, str]],
    skipped: dict[str, str],
    one: Callable[[Any, str, str], int],
) -> JobResult:
    enqueued = 0
    done: dict[str, str] = {}
    errors: list[str] = []
    for team_id, week in due:
        try:
            with transaction(services.sessions) as session:
                enqueued += one(session, team_id, week)
            done[team_id] = week
        except Exception as exc:
            log.exception("%s for team %s (%s) failed", name, team_id, week)
            errors.append(f"{team_id}: {type(exc).__name__}: {exc}")
    if errors:
        raise TeamsFailed(
            f"{len(errors)} of {len(due)} teams failed ({enqueued} messages queued): " + "; ".join(errors)
        )
    return JobResult(
        name,
        status="done" if due else "skipped",
        enqueued=enqueued,
        reason="" if due else "; ".join(["no team is due", *(f"{t}: {why}" for t, why in skipped.items())]),
        detail={"teams": done, "skipped": skipped},
    )


def monday_summary(services: Services, at: datetime) -> JobResult:
    """On each team's first workday of the week: the leader's summary and the group chat's."""
    with services.sessions() as session:
        due, skipped = digests.summary_due(session, at)
    bots, locale, suffix = frozenset(services.platforms), services.settings.locale, dedupe_suffix()

    def one(session: Any, team_id: str, week: str) -> int:
        return digests.send_monday_summary(
            session, team_id, week, at, bots=bots, locale=locale, dedupe_suffix=suffix
        )

    return _per_team(services, "monday-summary", due, skipped, one)


# `planloop run appraisal --current-rules`: the templates as they are now (set around the run).
CURRENT_RULES: ContextVar[bool] = ContextVar("planloop_current_rules", default=False)


def appraisal(services: Services, at: datetime) -> JobResult:
    """On each team's last workday of the week: freeze the week, send each person's card and the
    leader's table, one transaction per team."""
    with services.sessions() as session:
        due, skipped = digests.appraisal_due(session, at)
    bots, locale, suffix = frozenset(services.platforms), services.settings.locale, dedupe_suffix()
    explicit = bool((run := current_run()) and run.explicit)

    def one(session: Any, team_id: str, week: str) -> int:
        result = digests.appraise_team(
            session,
            team_id,
            week,
            at,
            bots=bots,
            links=services.context(session).links,
            locale=locale,
            dedupe_suffix=suffix,
            explicit=explicit,
            admins=admin_ids(services.settings),
            current_rules=CURRENT_RULES.get(),
            sent_at=services.clock(),
        )
        if result.skipped:
            skipped[team_id] = result.skipped
        return result.enqueued

    return _per_team(services, "appraisal", due, skipped, one)


def appraisal_held(services: Services, at: datetime) -> JobResult:
    """The tick (issue 16): a 重新拉取 pressed on a held appraisal's card polls every source now; then
    every held appraisal whose data is complete is published."""
    from handlers.held import clear_repoll, held_rows, release_ready, repoll_requested

    with services.sessions() as session:
        if not held_rows(session):
            return JobResult("appraisal-held", status="skipped", reason="no appraisal is held")
        repoll = repoll_requested(session)
    polled = None
    if repoll:
        with transaction(services.sessions) as session:
            clear_repoll(session)
        polled = poll(services, at)
    with transaction(services.sessions) as session:
        released = release_ready(
            session, at, bots=frozenset(services.platforms), links=services.context(session).links
        )
    return JobResult(
        "appraisal-held",
        enqueued=released,
        detail={"released": released, "polled": polled.detail if polled else None},
    )


def pull_directory(services: Services, bot_id: str, at: datetime, by: str) -> PullSummary:
    """Read ``bot_id``'s directory and store it (the console's 拉取通讯录 and the nightly sync);
    DirectoryError when the platform would not give it."""
    from bot.platforms.directory import read_directory
    from handlers.directory import record_pull

    bot = services.settings.bot(bot_id)
    assert bot is not None  # noqa: S101 - callers pass a bot of directory_bots()
    members = read_directory(bot, services.http, services.platforms.get(bot_id))
    with transaction(services.sessions) as session:
        return record_pull(session, bot_id, members, at, by)


def directory_sync(services: Services, at: datetime) -> JobResult:
    """Nightly (issue 22): read again every directory an admin has pulled in the console, so the
    People page shows who has left and who is new. Nothing is deactivated here: an admin confirms."""
    from bot.platforms.directory import DirectoryError, directory_bots
    from handlers.directory import pulled_bots

    with services.sessions() as session:
        bots = [b for b in pulled_bots(session) if b in directory_bots(services.settings.bots)]
    if not bots:
        return JobResult(
            "directory-sync", status="skipped", reason="no directory has been pulled in the console"
        )
    detail: dict[str, Any] = {}
    for bot_id in bots:
        try:
            summary = pull_directory(services, bot_id, at, "worker")
        except DirectoryError as exc:
            log.warning("directory-sync: %s: %s", bot_id, exc)
            detail[bot_id] = {"error": exc.text}
            continue
        detail[bot_id] = {
            "listed": summary.listed,
            "newcomers": summary.newcomers,
            "leavers": summary.leavers,
        }
    failed = all("error" in d for d in detail.values())
    return JobResult("directory-sync", status="failed" if failed else "done", detail=detail)


def housekeeping(services: Services, at: datetime) -> JobResult:
    """Daily: old inbound event ids and API idempotency keys deleted (storage/housekeeping.py)."""
    from storage.housekeeping import forget_old

    with transaction(services.sessions) as session:
        deleted = forget_old(session, at)
    return JobResult("housekeeping", detail=deleted)


def reminders(services: Services, at: datetime) -> JobResult:
    """Plan reminders on each team's plan day, and the leader's list at the deadline."""
    with transaction(services.sessions) as session:
        run = run_plan_reminders(
            session,
            at,
            bots=frozenset(services.platforms),
            links=services.context(session).links,
            locale=services.settings.locale,
            dedupe_suffix=dedupe_suffix(),
        )
    return JobResult(
        "reminders",
        status="done" if run.due else "skipped",
        reason=""
        if run.due
        else "; ".join(["no team is due", *(f"{t}: {why}" for t, why in run.skipped.items())]),
        enqueued=run.enqueued,
        detail={"reminded": run.reminded, "leaders": run.leaders, "skipped": run.skipped},
    )


# `planloop run JOB --week W`: the moment in the week each weekly job is due (service zone).
WEEKLY = ("appraisal", "monday-summary", "reminders")


def week_moment(services: Services, job: str, week: str) -> datetime:
    """When ``job`` is due in ``week``: the appraisal at 20:00 on the last workday, the Monday summary at
    09:00 on the first, the reminders at the earliest team's plan time on the first (raises ValueError)."""
    from datetime import time as clock_time

    from handlers.workdays import Calendar

    if job not in WEEKLY:
        raise ValueError(f"--week works for {', '.join(WEEKLY)}, not {job}")
    with services.sessions() as session:
        calendar = Calendar.load(session)
        day = calendar.last_workday(week) if job == "appraisal" else calendar.first_workday(week)
        if day is None:
            raise ValueError(f"{week} has no workday")
        hhmm = "20:00" if job == "appraisal" else "09:00"
        if job == "reminders":
            times = session.scalars(select(Team.plan_day_time).where(Team.active.is_(True))).all()
            hhmm = min(times, default="10:00")
    return datetime.combine(day, clock_time.fromisoformat(hhmm), tzinfo=services.settings.tz)


# The jobs `planloop run JOB` knows, by their CONTRACT.md names.
JOBS: dict[str, JobFn] = {
    "poll": poll,
    "progress": progress,
    "lag-alerts": lag_alerts,
    "monday-summary": monday_summary,
    "appraisal": appraisal,
    "reminders": reminders,
    "appraisal-held": appraisal_held,
    "directory-sync": directory_sync,
    "housekeeping": housekeeping,
}


class UnknownJob(KeyError):
    pass


def recover(services: Services, at: datetime) -> JobResult:
    """Run again the scheduled runs whose worker died mid-run, or that failed (bounded tries)."""
    with transaction(services.sessions) as session:
        todo = [
            (r.job, datetime.fromisoformat(r.detail["at"]))
            for r in recoverable(session, services.clock())
            if r.job != "recover" and r.detail.get("at")
        ]
    statuses = []
    for job, when in todo:
        try:
            statuses.append(run_job(services, job, when).status)
        except Exception:
            log.exception("recovering %s for %s failed", job, when)
            statuses.append("failed")
    return JobResult("recover", detail={"rerun": len(todo), "statuses": statuses})


def job_fn(name: str) -> JobFn:
    """The function behind a job name, including the scheduler's ``poll:<id>`` and ``recover``."""
    if name in JOBS:
        return JOBS[name]
    if name == "recover":
        return recover
    if name.startswith("poll:"):
        source_id = name.partition(":")[2]

        def one(services: Services, at: datetime) -> JobResult:
            return poll_one(services, at, source_id=source_id)

        return one
    raise UnknownJob(f"unknown job {name!r}; known: {', '.join(JOBS)}")


def period_of(at: datetime, tz: ZoneInfo) -> str:
    """The claim's period for a run as of ``at``: its local time to the second."""
    return at.astimezone(tz).isoformat(timespec="seconds")


def run_job(
    services: Services,
    name: str,
    at: datetime,
    *,
    explicit: bool = False,
    who: str | None = None,
    fn: JobFn | None = None,
) -> JobResult:
    """Claim ``(name, period of at)`` and run the job; a claim someone else holds means "skipped".

    The claim commits before the job runs, so a second worker sees it at once; a run that
    dies half-way is retried by the ``recover`` job (its messages are deduplicated).
    """
    fn = fn or job_fn(name)
    period = period_of(at, services.settings.tz)
    who = who or worker_name()
    with transaction(services.sessions) as session:
        run = claim_run(session, name, period, services.clock(), who, explicit, detail={"at": at.isoformat()})
        claimed = (run.id, run.attempt) if run is not None else None
    if claimed is None:
        metrics.count_job(name, "skipped")
        return JobResult(name, period, status="skipped", reason="already claimed for this period")
    run_id, attempt = claimed
    token = _current.set(RunInfo(name, period, attempt, at))
    try:
        result = fn(services, at)
    except Exception as exc:
        log.exception("job %s for %s failed", name, period)
        with transaction(services.sessions) as session:
            finish_run(
                session, run_id, services.clock(), ok=False, detail={"error": f"{type(exc).__name__}: {exc}"}
            )
        metrics.count_job(name, "failed")
        return JobResult(name, period, status="failed", reason=f"{type(exc).__name__}: {exc}")
    finally:
        _current.reset(token)
    result.period = period
    summary = {"status": result.status, "enqueued": result.enqueued, "reason": result.reason, **result.detail}
    with transaction(services.sessions) as session:
        # a source that failed is the source's problem, tracked by its backoff; the run itself finished
        finish_run(
            session, run_id, services.clock(), ok=True, detail=json.loads(json.dumps(summary, default=str))
        )
    log.info(
        "job %s for %s: %s (%d messages)",
        name,
        period,
        result.status,
        result.enqueued,
        extra={"job": name, "period": period},
    )
    metrics.count_job(name, result.status if result.status in metrics.JOB_STATUSES else "done")
    return result
