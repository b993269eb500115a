"""Prometheus metrics: webhook requests and latency, deliveries, job runs, outbox depth and age.

The worker and the relay count with three calls: ``count_delivery(result)``,
``count_job(job, status)`` and (the web app) ``observe_webhook(platform, status, seconds)``.
Outbox depth and age are read from the database at scrape time (two indexed queries), so
any replica's /metrics shows the same numbers and nothing has to keep them up to date.

Under gunicorn with several processes, ``PROMETHEUS_MULTIPROC_DIR`` must be set before
this module is imported (`planloop serve` does it); each process then writes its counters
to files in that folder and /metrics adds them up.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import Engine, func, select

from storage.models import OutboxMessage

log = logging.getLogger("planloop.metrics")

# Feishu wants an answer within 3 s; the buckets are dense below that.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
DELIVERY_RESULTS = ("sent", "retry", "dead", "skipped")
JOB_STATUSES = ("done", "failed", "skipped")

WEBHOOK_REQUESTS = Counter(
    "planloop_webhook_requests",
    "Webhook requests answered, by platform and HTTP status",
    ["platform", "status"],
)
WEBHOOK_SECONDS = Histogram(
    "planloop_webhook_duration_seconds",
    "Time from a webhook request's arrival to its answer, by platform",
    ["platform"],
    buckets=LATENCY_BUCKETS,
)
DELIVERIES = Counter(
    "planloop_deliveries",
    "Outbox delivery attempts by result (sent, retry, dead, skipped)",
    ["result"],
)
JOB_RUNS = Counter(
    "planloop_job_runs",
    "Scheduled job runs by job and final status (done, failed, skipped)",
    ["job", "status"],
)


def observe_webhook(platform: str, status: int, seconds: float) -> None:
    """One answered webhook request (the web app calls this for every platform path)."""
    WEBHOOK_REQUESTS.labels(platform=platform, status=str(status)).inc()
    WEBHOOK_SECONDS.labels(platform=platform).observe(seconds)


def count_delivery(result: str) -> None:
    """One outbox delivery attempt: ``sent``, ``retry`` (will try again), ``dead`` or ``skipped``."""
    if result not in DELIVERY_RESULTS:
        raise ValueError(f"delivery result {result!r} is not one of {', '.join(DELIVERY_RESULTS)}")
    DELIVERIES.labels(result=result).inc()


def count_job(job: str, status: str) -> None:
    """One scheduled run finished: ``done``, ``failed`` or ``skipped`` (claimed elsewhere)."""
    if status not in JOB_STATUSES:
        raise ValueError(f"job status {status!r} is not one of {', '.join(JOB_STATUSES)}")
    JOB_RUNS.labels(job=job, status=status).inc()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir")


class OutboxCollector:
    """Outbox depth and the age of the oldest pending message, read at scrape time."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] | None = None):
        self.engine = engine
        self.clock = clock or (lambda: datetime.now(UTC))

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("planloop_metrics_db_up", "1 when the outbox gauges could be read")
        try:
            with self.engine.connect() as conn:
                counts = dict(
                    conn.execute(
                        select(OutboxMessage.status, func.count())
                        .where(OutboxMessage.status.in_(("pending", "dead")))
                        .group_by(OutboxMessage.status)
                    ).all()
                )
                oldest = conn.scalar(
                    select(func.min(OutboxMessage.created_at)).where(OutboxMessage.status == "pending")
                )
        except Exception as exc:  # a scrape must not fail because the database is away
            log.warning("metrics: outbox gauges unavailable: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        pending = GaugeMetricFamily("planloop_outbox_pending", "Messages in the outbox not yet delivered")
        pending.add_metric([], counts.get("pending", 0))
        yield pending
        dead = GaugeMetricFamily("planloop_outbox_dead", "Messages given up on (need an operator)")
        dead.add_metric([], counts.get("dead", 0))
        yield dead
        age = GaugeMetricFamily(
            "planloop_outbox_oldest_pending_age_seconds",
            "Seconds since the oldest undelivered message was enqueued (0 when none)",
        )
        seconds = 0.0
        if oldest is not None:
            if oldest.tzinfo is None:  # the column type gives aware UTC; belt and braces
                oldest = oldest.replace(tzinfo=UTC)
            seconds = max(0.0, (self.clock() - oldest).total_seconds())
        age.add_metric([], seconds)
        yield age


def exposition(engine: Engine | None = None, clock: Callable[[], datetime] | None = None) -> bytes:
    """The /metrics body: this process's (or all gunicorn processes') counters + outbox gauges."""
    folder = multiprocess_dir()
    if folder:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        with _folder_lock(folder, exclusive=False):  # never half-way through a compaction
            body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    if engine is not None:
        scrape = CollectorRegistry(auto_describe=False)
        scrape.register(OutboxCollector(engine, clock))
        body += generate_latest(scrape)
    return body


CONTENT_TYPE = CONTENT_TYPE_LATEST


def authorized(header: str | None, token: str) -> bool:
    """``Authorization: Bearer <token>`` when ``server.metrics_token`` is set; constant-time."""
    if not token:
        return True
    presented = (header or "").removeprefix("Bearer ").strip()
    return hmac.compare_digest(presented.encode(), token.encode())


@contextmanager
def _folder_lock(folder: str, *, exclusive: bool) -> Iterator[None]:
    import fcntl

    with open(os.path.join(folder, "compaction.lock"), "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def mark_process_dead(pid: int) -> None:
    """gunicorn's child_exit hook (runs in the master): drop a dead worker's live gauges and
    fold its counter and histogram files into one archive file per type.

    prometheus_client keeps a dead process's files so totals never go down; with workers
    recycled every few thousand requests (max_requests) that would be hundreds of files a
    day, every one read on every scrape. Folding keeps the folder at one file per live
    process plus one archive, with the same totals. Scrapes hold a shared lock on the
    folder, so none sees a value counted twice or missing mid-fold.
    """
    folder = multiprocess_dir()
    if not folder:
        return
    from prometheus_client import multiprocess
    from prometheus_client.mmap_dict import MmapedDict

    multiprocess.mark_process_dead(pid, folder)
    with _folder_lock(folder, exclusive=True):
        for kind in ("counter", "histogram"):
            dead = os.path.join(folder, f"{kind}_{pid}.db")
            if not os.path.exists(dead):
                continue
            archive = MmapedDict(os.path.join(folder, f"{kind}_archive.db"))
            try:
                for key, value, timestamp, _pos in MmapedDict.read_all_values_from_file(dead):
                    total, _ = archive.read_value(key)
                    archive.write_value(key, total + value, timestamp)
            finally:
                archive.close()
            os.remove(dead)


class _WorkerHandler(BaseHTTPRequestHandler):
    server: _WorkerServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            ok = self.server.alive()
            status: dict[str, Any] = {"status": "ok" if ok else "down"}
            states = self.server.streams() if self.server.streams is not None else []
            if states:  # each stream bot's connection (bot/worker/streams.py)
                from bot.worker.streams import health

                status["streams"] = health(states)
            self._answer(200 if ok else 503, json.dumps(status).encode())
        elif path == "/metrics":
            if not authorized(self.headers.get("Authorization"), self.server.token):
                self._answer(401, b'{"error": "metrics token required"}')
                return
            body = exposition(self.server.engine)
            if self.server.streams is not None:
                from bot.worker.streams import metrics_text

                body += metrics_text(self.server.streams(), datetime.now(UTC))
            self._answer(200, body, CONTENT_TYPE)
        else:
            self._answer(404, b'{"error": "not found"}')

    def _answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        pass  # probes every few seconds would drown the worker's own log


class _WorkerServer(ThreadingHTTPServer):
    daemon_threads = True
    alive: Callable[[], bool]
    engine: Engine | None
    token: str
    streams: Callable[[], list[Any]] | None


WORKER_PORT = 9100


def worker_port(extra: Any) -> int:
    """``[server] worker_port`` (default 9100; 0 = no HTTP port in the worker)."""
    try:
        return int(extra.get("worker_port", WORKER_PORT))
    except (TypeError, ValueError):
        return WORKER_PORT


def metrics_token(extra: Any) -> str:
    """``[server] metrics_token`` (resolved by bot.config into a Secret), or "" for none."""
    token = extra.get("metrics_token")
    return token.get() if token is not None and hasattr(token, "get") else ""


def start_worker_server(
    port: int,
    host: str = "0.0.0.0",  # noqa: S104 - a probe reaches a container on its interface
    *,
    alive: Callable[[], bool] = lambda: True,
    engine: Engine | None = None,
    token: str = "",
    streams: Callable[[], list[Any]] | None = None,
) -> _WorkerServer:
    """/healthz and /metrics for `planloop worker` on a small HTTP server in a daemon thread.

    ``alive()`` says whether the worker's loops are still turning (503 otherwise, so Docker's
    HEALTHCHECK restarts a stuck worker). Port 0 picks a free port (``server.server_port``).
    Stop it with ``server.shutdown()``.
    """
    server = _WorkerServer((host, port), _WorkerHandler)
    server.alive = alive
    server.engine = engine
    server.token = token
    server.streams = streams  # each stream bot's StreamState (bot/worker/streams.py)
    thread = threading.Thread(target=server.serve_forever, name="planloop-metrics", daemon=True)
    thread.start()
    return server
