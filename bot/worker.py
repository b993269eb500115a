"""The worker process: the scheduler plus the outbox relay. Never started inside the web app.

``planloop worker`` calls ``main``; ``planloop demo`` runs ``run_worker`` in a
thread next to the web app; ``planloop run JOB --at`` calls ``run_now``.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update

from bot.delivery import Relay, RelayStats, TokenBuckets, drain, run_relay, worker_name
from bot.jobs import JobResult, run_job
from bot.scheduler import build_scheduler, catch_up
from bot.services import Services
from storage.db import transaction
from storage.models import OutboxMessage

log = logging.getLogger("planloop.worker")

RUN_DELIVERY_DEADLINE = timedelta(minutes=1)


def run_worker(
    services: Services,
    stop_event: threading.Event,
    *,
    scheduler: bool = True,
    relays: int = 1,
    ready: threading.Event | None = None,
) -> None:
    """Run until ``stop_event`` is set: scheduled jobs (unless ``scheduler=False``, for a worker
    that only relays) and ``relays`` delivery loops. Returns after a clean shutdown."""
    name = worker_name()
    sched = build_scheduler(services) if scheduler else None
    buckets = TokenBuckets()  # one set of rate limits for every relay thread of this process
    threads = [
        threading.Thread(
            target=run_relay,
            args=(services, stop_event),
            kwargs={"relay": Relay(services, name=f"{name}/relay{n}", buckets=buckets)},
            name=f"planloop-relay-{n}",
            daemon=True,
        )
        for n in range(max(1, relays))
    ]
    for thread in threads:
        thread.start()
    if sched is not None:
        sched.start()
        log.info("scheduler started (%s) with %d slots", services.settings.timezone, len(sched.get_jobs()))
        # a slot missed while no worker was up still runs (its claim keeps it single)
        threads.append(
            threading.Thread(target=_catch_up, args=(services,), name="planloop-catch-up", daemon=True)
        )
        threads[-1].start()
    if ready is not None:
        ready.set()
    try:
        stop_event.wait()
    finally:
        if sched is not None:
            sched.shutdown(wait=True)
        for thread in threads:
            thread.join(timeout=30)
        log.info("worker stopped")


def _catch_up(services: Services) -> None:
    try:
        catch_up(services)
    except Exception:
        log.exception("catch-up after start failed; the next slots run as usual")


def main(services: Services) -> int:
    """``planloop worker``: run until SIGTERM or Ctrl-C."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    run_worker(services, stop)
    return 0


def run_now(
    services: Services, name: str, at: datetime | None = None, *, deadline: timedelta = RUN_DELIVERY_DEADLINE
) -> tuple[JobResult, RelayStats]:
    """``planloop run JOB [--at]``: run the job explicitly (even if the scheduler already ran it
    for that period), then deliver its messages, retrying for up to ``deadline``. Whatever is
    still undelivered stays in the outbox for the worker. Raises ``bot.jobs.UnknownJob``."""
    when = at or services.clock()
    result = run_job(services, name, when, explicit=True)
    now = services.clock()
    if when > now:
        # "as if at" a later time: its messages carry that time, but the admin wants them now
        with transaction(services.sessions) as session:
            session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.status == "pending",
                    OutboxMessage.created_at == when,
                    OutboxMessage.next_attempt_at > now,
                    OutboxMessage.attempts == 0,
                )
                .values(next_attempt_at=now)
            )
    stats = drain(services, until_empty=True, deadline=now + deadline)
    return result, stats
