"""The worker process: the scheduler plus the outbox relay. Never started inside the web app.

``planloop worker`` calls ``main``; ``planloop demo`` runs ``run_worker`` in a
thread next to the web app; ``planloop run JOB --at`` calls ``run_now``.

Every worker relays the outbox. Only the elected leader schedules (``bot.worker.leader``): the
APScheduler instance starts paused and is resumed while this worker holds the leadership
and paused when it loses it. On SQLite ``main`` refuses a second worker on the same file.
The demo runs ``run_worker`` without an election: it is the only worker of its database.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update

from bot.ops import metrics
from bot.services import Services
from bot.worker import leader
from bot.worker.delivery import Relay, RelayStats, drain, run_relay, shared_buckets, worker_name
from bot.worker.jobs import JobResult, run_job
from bot.worker.scheduler import Ticker, build_scheduler, catch_up
from storage.db import transaction
from storage.models import OutboxMessage

log = logging.getLogger("planloop.worker")

RUN_DELIVERY_DEADLINE = timedelta(minutes=1)


class Worker:
    """One worker process's loops: ``relays`` delivery threads (always) and the scheduler
    (while ``election`` says this worker leads; always when there is no election)."""

    def __init__(
        self,
        services: Services,
        *,
        scheduler: bool = True,
        relays: int = 1,
        election: leader.LeaderElection | None = None,
        poll: float = leader.POLL_SECONDS,
    ):
        self.services = services
        self.election = election
        self.poll = poll
        self.name = worker_name()
        self.ticker = Ticker(services)
        self.scheduler = build_scheduler(services, self.ticker) if scheduler else None
        self.leading = False
        buckets = shared_buckets(services)  # the deployment's limits, held in the database
        self._relays = max(1, relays)
        self._buckets = buckets
        self.threads: list[threading.Thread] = []
        from bot.worker.streams import (
            Supervisor,  # here: `planloop worker` installs its signal handlers first
        )

        self.streams = Supervisor(services, lease_poll=poll)  # the stream bots' connections

    def alive(self) -> bool:
        """For /healthz: every relay thread still turns."""
        relays = [t for t in self.threads if t.name.startswith("planloop-relay-")]
        return bool(relays) and all(t.is_alive() for t in relays)

    def _start_relays(self, stop: threading.Event) -> None:
        for n in range(self._relays):
            relay = Relay(self.services, name=f"{self.name}/relay{n}", buckets=self._buckets)
            thread = threading.Thread(
                target=run_relay,
                args=(self.services, stop),
                kwargs={"relay": relay},
                name=f"planloop-relay-{n}",
                daemon=True,
            )
            thread.start()
            self.threads.append(thread)

    def update_leadership(self) -> bool:
        """Resume the scheduler when this worker (still) leads, pause it when not."""
        if self.scheduler is None:
            return False
        try:
            leads = self.election.try_acquire() if self.election is not None else True
        except Exception:  # an election that cannot tell is not a leader
            log.exception("leader election failed; not scheduling")
            leads = False
        if leads and not self.leading:
            self.scheduler.resume()
            self.leading = True
            log.info("leading: scheduler resumed with %d jobs", len(self.scheduler.get_jobs()))
            # a slot missed while no worker led still runs (its claim keeps it single)
            thread = threading.Thread(
                target=_catch_up, args=(self.services,), name="planloop-catch-up", daemon=True
            )
            thread.start()
            self.threads.append(thread)
        elif not leads and self.leading:
            self.scheduler.pause()
            self.leading = False
            log.warning("no longer leading: scheduler paused")
        return leads

    def run(self, stop: threading.Event, ready: threading.Event | None = None) -> None:
        """Run until ``stop`` is set; then stop the loops and give the leadership up."""
        self._start_relays(stop)
        self.threads.extend(self.streams.start(stop))
        try:
            if self.scheduler is not None:
                self.scheduler.start(paused=True)
                log.info("scheduler ready (%s), waiting for the leadership", self.services.settings.timezone)
                self.update_leadership()
            if ready is not None:
                ready.set()
            while not stop.wait(self.poll):
                self.update_leadership()
        finally:
            stop.set()
            if self.scheduler is not None and self.scheduler.running:
                self.scheduler.shutdown(wait=True)
            self.leading = False
            if self.election is not None:
                self.election.release()  # the next worker takes over at once
            for thread in self.threads:
                thread.join(timeout=30)
            log.info("worker stopped")


def run_worker(
    services: Services,
    stop_event: threading.Event,
    *,
    scheduler: bool = True,
    relays: int = 1,
    ready: threading.Event | None = None,
    election: leader.LeaderElection | None = None,
) -> None:
    """Run until ``stop_event`` is set: ``relays`` delivery loops, and scheduled jobs (unless
    ``scheduler=False``) while ``election`` makes this worker the leader. Without an election
    (the demo: one worker in-process) the scheduler always runs. Releases the election on return."""
    Worker(services, scheduler=scheduler, relays=relays, election=election).run(stop_event, ready)


def _catch_up(services: Services) -> None:
    try:
        catch_up(services)
    except Exception:
        log.exception("catch-up after start failed; the next slots run as usual")


def main(services: Services) -> int:
    """``planloop worker``: run until SIGTERM or Ctrl-C. On SQLite, exits 1 if another worker
    already runs against the same database file."""
    try:
        election = leader.elect(services.engine)  # SQLite: takes the file lock now
    except leader.WorkerRefused as exc:
        print(f"planloop worker: {exc}", file=sys.stderr, flush=True)
        return 1
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker = Worker(services, election=election)
    extra = services.settings.extra
    port = metrics.worker_port(extra)
    server = None
    if port:
        try:
            server = metrics.start_worker_server(
                port,
                alive=worker.alive,
                engine=services.engine,
                token=metrics.metrics_token(extra),
                streams=worker.streams.states,
            )
            log.info("worker /healthz and /metrics on port %d", server.server_port)
        except OSError as exc:  # the relay matters more than the probe port: keep going, loudly
            log.error("cannot serve /healthz and /metrics on port %d: %s", port, exc)
    try:
        worker.run(stop)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
    return 0


def run_now(
    services: Services, name: str, at: datetime | None = None, *, deadline: timedelta = RUN_DELIVERY_DEADLINE
) -> tuple[JobResult, RelayStats]:
    """``planloop run JOB [--at]``: run the job explicitly (even if the scheduler already ran it
    for that period), then deliver its messages, retrying for up to ``deadline``. Whatever is
    still undelivered stays in the outbox for the worker. Raises ``bot.worker.jobs.UnknownJob``."""
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
