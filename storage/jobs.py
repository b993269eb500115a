"""Job-run claims: a scheduled (job, period) runs once across workers, restarts and misfires.

A scheduled run claims attempt 0 of its ``(job, period)``; the unique constraint makes a
second worker's claim fail, so it skips. An admin's explicit run (``planloop run``) takes
the next attempt number and always runs. A run whose worker died (still ``running``
after ``stale_after``) or that failed may be taken over, a bounded number of times, so
a crash loses nothing; the jobs themselves are idempotent through outbox dedupe keys.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import JobRun

STALE_AFTER = timedelta(minutes=30)
MAX_TRIES = 3  # the first run plus two takeovers


def _insert(
    session: Session, job: str, period: str, attempt: int, now: datetime, who: str, detail: dict[str, Any]
) -> JobRun | None:
    row = JobRun(
        job=job,
        period=period,
        attempt=attempt,
        status="running",
        claimed_by=who,
        started_at=now,
        detail=detail,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None
    return row


def claim_run(
    session: Session,
    job: str,
    period: str,
    now: datetime,
    who: str,
    explicit: bool = False,
    *,
    detail: dict[str, Any] | None = None,
    stale_after: timedelta = STALE_AFTER,
) -> JobRun | None:
    """Claim a run of ``job`` for ``period``; None when another worker has it (or had it).

    Commit the caller's transaction right after: the claim only protects once others see it.
    """
    info = {"tries": 1, **(detail or {})}
    if explicit:
        for _ in range(10):  # two admins racing for the same next attempt number
            latest = session.scalar(
                select(func.max(JobRun.attempt)).where(JobRun.job == job, JobRun.period == period)
            )
            row = _insert(session, job, period, max(latest or 0, 0) + 1, now, who, info)
            if row is not None:
                return row
        raise RuntimeError(f"could not claim an explicit run of {job} for {period}")

    existing = session.scalar(
        select(JobRun).where(JobRun.job == job, JobRun.period == period, JobRun.attempt == 0)
    )
    if existing is None:
        return _insert(session, job, period, 0, now, who, info)
    return _take_over(session, existing, now, who, stale_after)


def _take_over(
    session: Session, run: JobRun, now: datetime, who: str, stale_after: timedelta
) -> JobRun | None:
    tries = int((run.detail or {}).get("tries", 1))
    crashed = run.status == "running" and run.started_at < now - stale_after
    if not (crashed or run.status == "failed") or tries >= MAX_TRIES:
        return None
    detail = {**(run.detail or {}), "tries": tries + 1, "previous": run.claimed_by}
    # compare-and-swap on what we read: of two workers taking over, one wins
    result = session.execute(
        update(JobRun)
        .where(
            JobRun.id == run.id,
            JobRun.status == run.status,
            JobRun.started_at == run.started_at,
            JobRun.claimed_by == run.claimed_by,
        )
        .values(status="running", claimed_by=who, started_at=now, finished_at=None, detail=detail)
        .execution_options(synchronize_session=False)
    )
    if (result.rowcount or 0) != 1:  # type: ignore[attr-defined]
        return None
    session.refresh(run)
    return run


def finish_run(
    session: Session, run_id: int, now: datetime, *, ok: bool, detail: dict[str, Any] | None = None
) -> None:
    run = session.get(JobRun, run_id)
    if run is None:
        return
    run.status = "done" if ok else "failed"
    run.finished_at = now
    run.detail = {**(run.detail or {}), **(detail or {})}
    session.flush()


def recoverable(session: Session, now: datetime, *, stale_after: timedelta = STALE_AFTER) -> list[JobRun]:
    """Scheduled runs that died or failed and may be tried again (see ``claim_run``)."""
    rows = session.scalars(
        select(JobRun).where(
            JobRun.attempt == 0,
            (JobRun.status == "failed")
            | ((JobRun.status == "running") & (JobRun.started_at < now - stale_after)),
        )
    )
    return [r for r in rows if int((r.detail or {}).get("tries", 1)) < MAX_TRIES]
