"""`planloop serve`: the web app under gunicorn (gthread workers), started programmatically.

The web processes only answer HTTP; they never start the scheduler or the outbox relay
(that is `planloop worker`), so any number of replicas and gunicorn workers is safe.
Defaults suit webhooks that must answer within 3 s: a 30 s worker timeout is a hang
detector, not a budget. Any gunicorn setting can still be overridden with
``GUNICORN_CMD_ARGS`` (e.g. ``--forwarded-allow-ips=10.0.0.0/8``).
"""

from __future__ import annotations

import importlib
import logging
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from gunicorn import glogging
from gunicorn.app.base import BaseApplication

from bot.config import Settings
from bot.ops import logs

log = logging.getLogger("planloop.serve")

MAX_WORKERS = 8  # 2 × cores + 1 is for CPU-bound work; past 8 the DB pool is the limit
# Threads per worker. 1 runs gunicorn's `sync` worker: measured on the webhook path (docs/ops/
# performance.md), four gthread threads cost 0.4–0.6 ms more CPU a request than one sync
# worker (GIL hand-offs, the poller) and served 40 % fewer requests, on SQLite and PostgreSQL
# alike. More than 1 runs `gthread`, for slow clients or long uploads without a buffering proxy.
THREADS = 1
TIMEOUT = 30  # seconds before a silent worker is killed and replaced
GRACEFUL_TIMEOUT = 20  # seconds in-flight requests get on SIGTERM (Docker waits 10 s by default; see docs)
KEEPALIVE = 5  # seconds: longer than a load balancer's idle probe, shorter than its idle timeout
# Recycle a worker after this many requests (guards slow leaks) with jitter so the workers do
# not all restart at once. A restart stalls its worker for a moment: at 2,000 a busy server
# restarted each worker every few seconds, and those stalls were its p99 (performance.md).
# A team's server answers a few thousand requests a day, so this is still a restart a week.
MAX_REQUESTS = 50000
MAX_REQUESTS_JITTER = 5000


def default_workers(cpus: int | None = None) -> int:
    cpus = cpus or os.cpu_count() or 1
    return max(1, min(2 * cpus + 1, MAX_WORKERS))


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


class JsonGunicornLogger(glogging.Logger):
    """gunicorn's error and access logs in planloop's JSON lines; access lines carry fields
    (method, path without the query string — which may hold signatures —, status, duration)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                handler.setFormatter(logs.formatter())

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if self.cfg.accesslog is None:
            return
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        try:
            code = int(status)
        except (TypeError, ValueError):
            code = 0
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "")
        # One record straight to the handlers: no caller lookup, no level checks (gunicorn
        # calls this only when the access log is on), on every request of the server.
        record = logging.LogRecord(
            self.access_log.name, logging.INFO, __file__, 0, "%s %s %s", (method, path, code), None
        )
        record.__dict__.update(
            {
                "method": method,
                "path": path,
                "status": code,
                "duration_ms": round(request_time.total_seconds() * 1000, 2),
                "bytes": getattr(resp, "sent", None),
                "remote": environ.get("REMOTE_ADDR", ""),
                "user_agent": environ.get("HTTP_USER_AGENT", ""),
                "request_id": environ.get("HTTP_X_REQUEST_ID", ""),
            }
        )
        self.access_log.handle(record)


def _child_exit(_server: Any, worker: Any) -> None:
    from bot.ops.metrics import mark_process_dead

    mark_process_dead(worker.pid)


def _when_ready(server: Any) -> None:
    log.info(
        "planloop web is listening",
        extra={
            "bind": ",".join(server.cfg.bind),
            "workers": server.cfg.workers,
            "threads": server.cfg.threads,
        },
    )


def gunicorn_options(settings: Settings, host: str, port: int, workers: int | None) -> dict[str, Any]:
    """Our defaults; ``[server] workers/threads/timeout`` in planloop.toml refine them."""
    server = settings.extra
    chosen_workers = workers or int(server.get("workers", 0) or 0) or default_workers()
    threads = int(server.get("threads", THREADS))
    options: dict[str, Any] = {
        "bind": _bind(host, port),
        "workers": chosen_workers,
        "worker_class": "gthread" if threads > 1 else "sync",
        "threads": threads,
        "timeout": int(server.get("timeout", TIMEOUT)),
        "graceful_timeout": GRACEFUL_TIMEOUT,
        "keepalive": KEEPALIVE,
        "max_requests": MAX_REQUESTS,
        "max_requests_jitter": MAX_REQUESTS_JITTER,
        "accesslog": "-",
        "errorlog": "-",
        "loglevel": os.environ.get("PLANLOOP_LOG_LEVEL", "info").lower(),
        "logger_class": JsonGunicornLogger,
        "proc_name": "planloop-web",
        "child_exit": _child_exit,
        "when_ready": _when_ready,
        "preload_app": False,  # each worker opens its own DB pool after the fork
        "forwarded_allow_ips": str(server.get("forwarded_allow_ips", "127.0.0.1")),
        # gunicorn ≥ 25.1 opens a control socket under $HOME; replicas sharing a home would
        # fight over it, and a read-only container has no writable home. Nothing here uses it.
        "control_socket_disable": True,
    }
    if Path("/dev/shm").is_dir():  # noqa: S108 - gunicorn's heartbeat file; Docker's /tmp may be a slow overlay
        options["worker_tmp_dir"] = "/dev/shm"  # noqa: S108
    return options


class PlanloopServer(BaseApplication):
    def __init__(self, settings: Settings, options: dict[str, Any]):
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        assert self.cfg is not None
        for key, value in self.options.items():
            if key in self.cfg.settings:  # a setting older gunicorns lack is skipped
                self.cfg.set(key, value)
        # Deployers' overrides, the way the gunicorn command reads them.
        env_args = os.environ.get("GUNICORN_CMD_ARGS", "")
        if env_args:
            parsed = self.cfg.parser().parse_args(shlex.split(env_args))
            for key, value in vars(parsed).items():
                if value is not None and key != "args":
                    self.cfg.set(key.lower(), value)

    def load(self) -> Any:
        """Runs in each worker after the fork: its own engine and pool, sized to its threads."""
        from bot.services import build_services
        from bot.web.app import create_app
        from storage.db import is_sqlite, make_engine

        assert self.cfg is not None
        kwargs: dict[str, Any] = {}
        if not is_sqlite(self.settings.database_url):
            kwargs = {"pool_size": self.cfg.threads + 1, "max_overflow": self.cfg.threads}
        engine = make_engine(self.settings.database_url, **kwargs)
        return create_app(self.settings, build_services(self.settings, engine=engine))


def check_database(settings: Settings) -> str | None:
    """None when the database answers and is migrated; else the reason, for stderr."""
    from storage.db import NotMigrated, make_engine, require_current

    engine = make_engine(settings.database_url)
    try:
        require_current(engine)
    except NotMigrated as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - any driver error means "cannot reach it"
        return f"cannot reach the database ({type(exc).__name__}: {logs.redact(str(exc).splitlines()[0])})"
    finally:
        engine.dispose()  # never carry a connection across gunicorn's fork
    return None


def _multiprocess_metrics(workers: int) -> str | None:
    """Several processes answer /metrics: give prometheus_client a shared folder, emptied at
    start. Returns the folder if this function made it (then the master removes it at exit)."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    made = None
    if not path and workers > 1:
        if "prometheus_client.values" in sys.modules:  # too late: its value class is chosen on import
            log.warning("metrics: prometheus_client already imported; /metrics shows one worker per scrape")
            return None
        path = made = tempfile.mkdtemp(prefix="planloop-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    if not path:
        return None
    Path(path).mkdir(parents=True, exist_ok=True)
    for entry in Path(path).glob("*.db"):  # counters of a previous run must not be added in
        entry.unlink()
    return made


# What a worker imports while building the app (create_app imports some lazily).
APP_MODULES = (
    "bot.web.app",
    "bot.services",
    "bot.api.app",
    "bot.api.reads",
    "bot.api.writes",
    "bot.api.switches",
    "bot.api.webhooks",
    "bot.api.setup_writes",
    "bot.web.pages",
    "bot.console",
    "bot.console.web",
    "bot.console.auth",
    "bot.console.views",
    "bot.console.template_edit",
    "bot.console.data_page",
    "bot.console.people_page",
    "handlers.directory",
    "handlers.team_edits",
    "bot.worker.leader",
    "bot.platforms.signin",
    "bot.platforms.stream",
    "bot.worker.streams",
    "bot.web.sim",
    "handlers.scenarios",
    "flask_openapi3.plugins",
    "pydantic.dataclasses",
    "pydantic.type_adapter",
)


def _import_app_modules() -> None:
    """Import the web app's modules in the master, before the fork: each worker then inherits
    them (copy-on-write) instead of importing Flask, pydantic, SQLAlchemy's models and every
    handler itself at every boot — and a worker boots again every ``max_requests`` requests.
    Only modules: no app, engine or pool exists before the fork (``preload_app`` stays off).
    Runs after ``_multiprocess_metrics``: prometheus_client picks its value class on import."""
    for name in APP_MODULES:
        importlib.import_module(name)


def run_serve(settings: Settings, host: str = "0.0.0.0", port: int = 8000, workers: int | None = None) -> int:  # noqa: S104
    """Check the database, then run gunicorn until SIGTERM/SIGINT. Exit 1 if not migrated."""
    logs.configure(settings)
    problem = check_database(settings)
    if problem:
        print(f"planloop serve: {problem}", file=sys.stderr, flush=True)
        return 1
    options = gunicorn_options(settings, host, port, workers)
    made = _multiprocess_metrics(options["workers"])
    _import_app_modules()
    master = os.getpid()
    try:
        PlanloopServer(settings, options).run()
    except SystemExit as exc:  # gunicorn's arbiter (and each forked worker) exits through sys.exit
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    finally:
        # Forked workers unwind through here too (a worker recycled after max_requests):
        # only the master may remove the folder every process writes its counters into.
        if made and os.getpid() == master:
            shutil.rmtree(made, ignore_errors=True)
    return 0
