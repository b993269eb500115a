"""Which job runs when: the slots, defined in code, and their APScheduler wiring.

Every trigger and the scheduler itself carry the time zone explicitly. A slot's run is
"as of" its scheduled time (``previous_fire``), not the moment a thread got to it, so
every worker computes the same ``(job, period)`` and only one claim succeeds; interval
slots are aligned to a fixed origin for the same reason. Workday rules (holidays, 调休
Saturdays, working hours) live in the jobs, which know the teams; the slots only say
"check at these times". Never started inside the web app: ``bot.worker.process`` starts it.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.services import Services
from bot.worker.jobs import JobResult, run_job

log = logging.getLogger("planloop.scheduler")

ORIGIN = datetime(2000, 1, 3)  # a Monday; interval slots count from local midnight of this day  # noqa: DTZ001
CATCH_UP_WITHIN = timedelta(hours=6)  # on start, a slot missed this recently still runs
DEFAULT_POLL = "1h"
TICK_SECONDS = 30  # [server] scheduler_tick_seconds: how often the leader checks for due slots
TICK_JOB = "tick"

_INTERVAL = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(text: str | int) -> timedelta:
    """ "30s", "15m", "1h", "1d" or seconds; at least 10 s (a source is not a busy loop)."""
    m = _INTERVAL.match(str(text))
    if not m:
        raise ValueError(f"interval {text!r}: expected e.g. 15m, 1h or 1d")
    seconds = int(m.group(1)) * _UNITS[m.group(2).lower()]
    if seconds < 10:
        raise ValueError(f"interval {text!r} is shorter than 10 s")
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class Slot:
    job: str  # the claim's job name: a JOBS key, or "poll:<source id>"
    trigger: BaseTrigger
    catch_up: bool = True  # run the latest missed slot on start (claims keep it single)


def slots(services: Services) -> list[Slot]:
    tz = services.settings.tz
    origin = ORIGIN.replace(tzinfo=tz)
    out = [
        # hourly in working hours; the job skips non-workdays per team (and works on 调休 Saturdays)
        Slot("lag-alerts", CronTrigger(hour="9-17", minute=5, timezone=tz)),
        # daily checks; the digest jobs decide whether today is the team's day (issue 11)
        Slot("monday-summary", CronTrigger(hour=9, minute=0, timezone=tz)),
        Slot("reminders", CronTrigger(hour="8-20", minute="0,30", timezone=tz)),
        Slot("appraisal", CronTrigger(hour=20, minute=0, timezone=tz)),
        # held appraisals (data missing) go out as soon as their data is complete (issue 16)
        Slot("appraisal-held", IntervalTrigger(minutes=15, start_date=origin, timezone=tz), catch_up=False),
        Slot("recover", IntervalTrigger(minutes=5, start_date=origin, timezone=tz), catch_up=False),
        # the directories pulled in the console, read again at night: leavers and newcomers flagged
        Slot("directory-sync", CronTrigger(hour=2, minute=30, timezone=tz), catch_up=False),
        # old inbound event ids and API idempotency keys, past any retry (storage/housekeeping.py)
        Slot("housekeeping", CronTrigger(hour=3, minute=45, timezone=tz), catch_up=False),
    ]
    for source in services.settings.sources:
        every = parse_interval(source.get("interval", DEFAULT_POLL))
        trigger = IntervalTrigger(seconds=int(every.total_seconds()), start_date=origin, timezone=tz)
        out.append(Slot(f"poll:{source.id}", trigger, catch_up=False))
    return out


def fire_times(trigger: BaseTrigger, start: datetime, end: datetime) -> Iterator[datetime]:
    """Fire times of ``trigger`` in (start, end]."""
    t = trigger.get_next_fire_time(None, start)
    while t is not None and t <= end:
        if t > start:
            yield t
        t = trigger.get_next_fire_time(t, t + timedelta(microseconds=1))


def previous_fire(
    trigger: BaseTrigger, now: datetime, within: timedelta = timedelta(days=1)
) -> datetime | None:
    """The latest scheduled time at or before ``now`` (within ``within``)."""
    if isinstance(trigger, IntervalTrigger):
        start = trigger.start_date
        step = trigger.interval
        if start is None or now < start:
            return None
        at = start + ((now - start) // step) * step
        return at if now - at <= within else None
    last = None
    for t in fire_times(trigger, now - within, now):
        last = t
    return last


def fire(services: Services, slot: Slot) -> JobResult | None:
    """What APScheduler calls: run the slot as of its scheduled time."""
    now = services.clock()
    at = previous_fire(slot.trigger, now) or now
    try:
        return run_job(services, slot.job, at)
    except Exception:  # never let one job take the scheduler thread down
        log.exception("slot %s failed", slot.job)
        return None


def fire_due(
    services: Services, start: datetime, end: datetime, *, only: Iterable[str] | None = None
) -> list[JobResult]:
    """Run every slot (or ``only`` those jobs) scheduled in (start, end], in time order, as the
    scheduler would have: for simulations of days and weeks, and tests."""
    wanted = set(only) if only is not None else None
    due = sorted(
        (
            (t, slot)
            for slot in slots(services)
            if wanted is None or slot.job in wanted
            for t in fire_times(slot.trigger, start, end)
        ),
        key=lambda pair: (pair[0], pair[1].job),
    )
    return [run_job(services, slot.job, at) for at, slot in due]


def catch_up(services: Services, within: timedelta = CATCH_UP_WITHIN) -> list[JobResult]:
    """On start: run each slot's latest scheduled time if it was missed (a claim makes it a no-op if not)."""
    now = services.clock()
    results = []
    for slot in slots(services):
        if not slot.catch_up:
            continue
        at = previous_fire(slot.trigger, now, within)
        if at is not None:
            results.append(run_job(services, slot.job, at))
    return results


def tick_seconds(extra: Any) -> float:
    """``[server] scheduler_tick_seconds`` (default 30; at least 0.1)."""
    try:
        return max(0.1, float(extra.get("scheduler_tick_seconds", TICK_SECONDS)))
    except (TypeError, ValueError):
        return float(TICK_SECONDS)


def due_in(services: Services, start: datetime, end: datetime) -> list[tuple[datetime, Slot]]:
    """The runs a scheduler would have made in (start, end], in time order: every time of a
    cron slot, the latest time of a ``catch_up=False`` slot (polls and ``recover`` coalesce)."""
    due: list[tuple[datetime, Slot]] = []
    for slot in slots(services):
        times = list(fire_times(slot.trigger, start, end))
        due.extend((t, slot) for t in (times if slot.catch_up else times[-1:]))
    return sorted(due, key=lambda pair: (pair[0], pair[1].job))


class Ticker:
    """The leader's periodic sweep: run every slot that became due since the last tick.

    APScheduler's own triggers follow the wall clock and drop runs older than their grace
    time (a paused scheduler, a slow leader, a takeover after the leader died). The tick
    looks at ``services.clock()`` instead, from the last tick it finished to now (at most
    ``CATCH_UP_WITHIN`` back), so no slot is lost; the ``(job, period)`` claim makes a slot
    that the trigger (or another leader) already ran a no-op.
    """

    def __init__(self, services: Services, since: datetime | None = None):
        self.services = services
        self.last = since or services.clock()
        self._lock = threading.Lock()

    def __call__(self) -> list[JobResult]:
        with self._lock:  # max_instances=1 already; this also guards a direct call
            now = self.services.clock()
            start = max(self.last, now - CATCH_UP_WITHIN)
            if now <= start:
                return []
            results = []
            try:
                for at, slot in due_in(self.services, start, now):
                    results.append(run_job(self.services, slot.job, at))
                    self.last = at  # a failure part-way resumes from here on the next tick
            except Exception:  # the database went away: the next tick takes the same window again
                log.exception("scheduler tick over (%s, %s] failed", start.isoformat(), now.isoformat())
                return results
            self.last = now
            return results


def build_scheduler(services: Services, ticker: Ticker | None = None) -> BackgroundScheduler:
    """The scheduler with every slot and the tick added (not started)."""
    tz = services.settings.tz
    scheduler = BackgroundScheduler(
        timezone=tz,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 15 * 60},
    )
    for slot in slots(services):
        scheduler.add_job(fire, trigger=slot.trigger, args=[services, slot], id=slot.job, name=slot.job)
    scheduler.add_job(
        ticker or Ticker(services),
        trigger=IntervalTrigger(seconds=tick_seconds(services.settings.extra), timezone=tz),
        id=TICK_JOB,
        name=TICK_JOB,
        misfire_grace_time=None,  # a late tick still runs: it is the safety net
    )
    return scheduler
