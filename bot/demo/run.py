"""`planloop demo`: SQLite in a data dir, the example team, four weeks of synthetic metrics and
the team's story over them (``bot.demo.story``), the web app and the worker in one process, the
simulator on. Starts again on the same data."""

from __future__ import annotations

import hashlib
import logging
import math
import random
import signal
import threading
import tomllib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from bot.cli.texts import config_locale, texts
from bot.config import Secret, Settings
from storage.models import MetricSample

log = logging.getLogger("planloop.demo")

# metric key -> (typical value, daily drift, noise, decimals): plausible for a small Tmall shop.
DEMO_METRICS: dict[str, tuple[float, float, float, int]] = {
    "visitors": (12000, 40, 900, 0),
    "page_views": (41000, 120, 2500, 0),
    "pay_amount": (35000, 150, 3000, 2),
    "pay_buyers": (360, 1.5, 25, 0),
    "pay_conversion_rate": (3.0, 0.004, 0.08, 2),
    "avg_order_value": (97, 0.1, 4, 2),
    "ctr": (4.5, 0.005, 0.15, 2),
    "activity_sales": (800, 6, 60, 0),
    "complaint_rate": (1.2, -0.002, 0.05, 2),
    "refund_rate": (5.0, -0.005, 0.2, 2),
    "avg_response_seconds": (35, -0.05, 2, 1),
    "first_response_seconds": (18, -0.03, 1.5, 1),
    "inquiry_conversion_rate": (42, 0.03, 1.2, 2),
    "logistics_issue_resolution_rate": (85, 0.05, 2, 2),
    "inventory_turnover_days": (28, -0.03, 0.8, 1),
    "ship_within_24h_rate": (92, 0.02, 1.0, 2),
    "mis_shipment_rate": (0.3, -0.001, 0.04, 2),
}
HISTORY_DAYS = 28
STORY_DAYS = 42


def demo_value(metric: str, day: date, *, effort: bool = False) -> Decimal:
    """A deterministic value per (metric, day): the same history every time the demo starts.

    ``effort``: the week's work shows: from Monday to Sunday the value moves its good way (the
    sign of its drift) by twice its noise, so most weekly plans of the demo's story are met."""
    typical, drift, noise, decimals = DEMO_METRICS[metric]
    seed = int(hashlib.sha256(f"{metric}|{day.isoformat()}".encode()).hexdigest()[:12], 16)
    # A slow ~8-week wave around the typical value (drift is its slope at the crossing), plus noise.
    offset = (day - date(2026, 1, 1)).days
    value = typical + drift * 9 * math.sin(offset / 9) + random.Random(seed).uniform(-noise, noise)  # noqa: S311
    if effort:
        value += math.copysign(2 * noise, drift) * day.weekday() / 6
    return Decimal(str(round(max(value, 0.0), decimals)))


def seed_metrics(
    session: Session, today: date, now: datetime, *, days: int = HISTORY_DAYS, effort: bool = False
) -> int:
    """Fill the last ``days`` days up to yesterday (reports arrive the next day); adds only missing
    rows (a day a real report already filled keeps its value), in one multi-row insert."""
    start = today - timedelta(days=days)
    have = set(
        session.execute(
            select(MetricSample.metric, MetricSample.day).where(
                MetricSample.scope == "shop", MetricSample.day >= start
            )
        ).all()
    )
    rows = [
        {"metric": metric, "scope": "shop", "day": day, "value": demo_value(metric, day, effort=effort),
         "source": "demo", "fetched_at": now}
        for day in (start + timedelta(days=offset) for offset in range(days))
        for metric in DEMO_METRICS
        if (metric, day) not in have
    ]  # fmt: skip
    if rows:
        session.execute(insert(MetricSample), rows)
    return len(rows)


def _secret_key(data_dir: Path) -> str:
    path = data_dir / "secret.key"
    if not path.exists():
        from cryptography.fernet import Fernet

        path.write_text(Fernet.generate_key().decode() + "\n", encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def _write_config(data_dir: Path, settings: Settings) -> None:
    """planloop.toml for the demo's data, so `planloop --config DIR/planloop.toml export …` works."""
    path = data_dir / "planloop.toml"
    path.write_text(
        "# written by `planloop demo`; use it with: planloop --config <this file> export plans --week …\n"
        "[server]\n"
        f'database_url = "{settings.database_url}"\n'
        f'public_url = "{settings.public_url}"\n'
        f'secret_key = "file:{(data_dir / "secret.key").resolve()}"\n\n'
        "[simulator]\nenabled = true\n",
        encoding="utf-8",
    )


def prepare(data_dir: Path, port: int, host: str = "127.0.0.1", *, now: datetime | None = None) -> Settings:
    """Create or upgrade the demo database, apply the team file, seed metrics and tell the
    team's story up to ``now`` (default: the real time). Idempotent."""
    from bot.services import build_services
    from handlers.setup import apply, parse
    from handlers.team_edits import example_team_file
    from storage.db import upgrade
    from storage.secrets import Sealer

    data_dir.mkdir(parents=True, exist_ok=True)
    key = _secret_key(data_dir)
    settings = Settings(
        database_url=f"sqlite:///{(data_dir / 'planloop.db').resolve()}",
        public_url=f"http://{host}:{port}",
        secret_keys=(Secret(key),),
        simulator=True,
    )
    _write_config(data_dir, settings)
    services = build_services(settings)
    upgrade(services.engine)
    spec = parse(tomllib.loads(example_team_file().read_text(encoding="utf-8")))
    sealer = Sealer([key])
    now = now or datetime.now(UTC)
    with services.sessions() as session, session.begin():
        apply(session, spec, now=now, actor="demo", seal=sealer.seal, open_sealed=sealer.open)
        # the story's four past weeks and the one before them (the first week's baselines)
        today = now.astimezone(settings.tz).date()
        added = seed_metrics(session, today, now, days=STORY_DAYS, effort=True)
        from bot.demo.cases import seed_cases

        added += seed_cases(session, today, now, settings.tz, settings.aftersales)
    log.info("demo data ready (%d metric samples added)", added)
    services.engine.dispose()
    from bot.demo.story import tell

    if tell(settings, now):
        print(texts(settings.locale)("demo_story"), flush=True)
    return settings


def console_link(services: Any) -> str:
    """A one-time /console/ sign-in link for the first team's leader (the demo has no OAuth)."""
    from bot.console.sessions import create_link
    from storage.models import Team

    with services.sessions() as session, session.begin():
        leader = session.scalar(select(Team.leader_id).where(Team.leader_id.is_not(None)).order_by(Team.id))
        if not leader:
            return ""
        token = create_link(session, leader, services.clock(), timedelta(minutes=60))
    return f"{services.settings.public_url.rstrip('/')}/console/link/{token}"


def run_demo(data_dir: Path, *, port: int = 8000, host: str = "127.0.0.1", verbose: bool = False) -> int:
    from werkzeug.serving import make_server

    from bot.ops import logs
    from bot.services import build_services
    from bot.web.app import create_app

    logs.configure_console(verbose=verbose)
    say = texts(config_locale(data_dir / "planloop.toml"))  # zh-CN until someone sets it there
    problem = _port_problem(host, port)
    if problem:
        print(say("demo_port", port=port, reason=problem, next=port + 1), flush=True)
        return 2
    quiet = logging.getLogger("planloop")  # the story's hundreds of cards: one summary line instead
    level = quiet.level
    quiet.setLevel(logging.INFO if verbose else logging.WARNING)
    try:
        settings = prepare(data_dir, port, host)
    finally:
        quiet.setLevel(level)
    logs.add_secrets(logs.settings_secrets(settings))
    services = build_services(settings)
    app = create_app(settings, services)
    try:
        server = make_server(host, port, app, threaded=True)
    except OSError as exc:
        services.engine.dispose()
        print(say("demo_port", port=port, reason=exc.strerror, next=port + 1), flush=True)
        return 2
    stop = threading.Event()
    worker = _start_worker(services, stop)
    print(say("demo_started", host=host, port=port, data=data_dir.resolve()), flush=True)
    console = console_link(services)
    if console:
        print(say("demo_console", url=console), flush=True)

    def on_signal(signum: int, _frame: object) -> None:
        # shutdown() waits for serve_forever() to return, so it must run on another thread.
        if not stop.is_set():
            stop.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()
        if worker is not None:
            worker.join(timeout=10)
        services.engine.dispose()
        print(say("demo_stopped"), flush=True)
    return 0


def _port_problem(host: str, port: int) -> str:
    """Why ``host:port`` cannot be listened on ("" when it can): asked before the demo prepares
    its data, so a busy port is said at once and in words a person can act on."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return ""


def _start_worker(services, stop: threading.Event) -> threading.Thread | None:  # noqa: ANN001
    """The scheduler and the outbox relay in a background thread, as `planloop worker` runs them."""
    try:
        from bot.worker.process import run_worker
    except ImportError:  # pragma: no cover - the worker ships with the package
        log.warning("no worker in this build: scheduled jobs and outbox delivery are off")
        return None
    thread = threading.Thread(target=run_worker, args=(services, stop), name="planloop-worker", daemon=True)
    thread.start()
    return thread
