"""Two `planloop worker` processes on one PostgreSQL, one DingTalk Stream bot: exactly one of them
holds the connection; SIGKILL it and the other takes over within 30 s, with nothing lost or
applied twice. The fake gateway counts live connections per app (``max_live``) the whole time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.config import Secret, Settings
from bot.demo.run import seed_metrics
from bot.services import build_services
from handlers.setup import apply, parse
from handlers.team_edits import example_team_file as team_file
from storage.db import upgrade
from storage.models import InboundEvent, OutboxMessage, Plan
from storage.secrets import Sealer
from tests.conftest import TEST_KEY
from tests.dbs import KINDS, fresh_database
from tests.fakes.dingtalk import ROBOT_TOPIC, FakeDingTalk
from tests.test_serve import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
LILEI = "0102"
PLAN = "写计划\n优化详情页首屏 支付转化率 +2%\n差评回访 投诉率 -10%"


def write_config(path: Path, fake: FakeDingTalk, worker_port: int) -> Path:
    path.write_text(
        '[server]\ndatabase_url = "env:TEST_DATABASE_URL"\nsecret_key = "env:TEST_SECRET_KEY"\n'
        f"worker_port = {worker_port}\n"
        "[[bots]]\n"
        'id = "dingtalk-main"\nplatform = "dingtalk"\nconnection = "stream"\n'
        f'app_key = "{fake.app_key}"\napp_secret = "{fake.app_secret}"\nrobot_code = "{fake.robot_code}"\n'
        f'api_base = "{fake.url}"\noapi_base = "{fake.url}"\ncard_template_id = "tpl-planloop.schema"\n',
        encoding="utf-8",
    )
    return path


def health(port: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:  # noqa: S310
            return json.loads(resp.read())
    except OSError:
        return {}


def connected(port: int) -> bool:
    return any(s.get("connected") for s in health(port).get("streams", []))


def wait(condition, seconds: float, what: str) -> float:  # noqa: ANN001
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if condition():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def test_one_connection_across_two_workers_and_failover_on_sigkill(tmp_path) -> None:
    if "postgresql" not in KINDS:
        pytest.skip("two workers on one database only exist on PostgreSQL (SQLite allows one worker)")
    fake = FakeDingTalk(lambda: datetime.now(UTC)).start()
    gateway = fake.stream()
    procs: list[subprocess.Popen[str]] = []
    with fresh_database("postgresql", tmp_path) as url:
        now = datetime.now(UTC)
        services = build_services(
            Settings(database_url=url, secret_keys=(Secret(TEST_KEY),)), clock=lambda: now
        )
        upgrade(services.engine)
        sealer = Sealer([TEST_KEY])
        spec = parse(tomllib.loads(team_file().read_text(encoding="utf-8")))
        with services.sessions() as session, session.begin():
            apply(session, spec, now=now, actor="test", seal=sealer.seal, open_sealed=sealer.open)
            seed_metrics(session, now.date(), now)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMETHEUS_", "GUNICORN_"))}
        env.update(TEST_DATABASE_URL=url, TEST_SECRET_KEY=TEST_KEY, PYTHONPATH=str(ROOT))
        ports = [free_port(), free_port()]
        logs = []
        try:
            for n, port in enumerate(ports):
                cfg = write_config(tmp_path / f"worker{n}.toml", fake, port)
                log = (tmp_path / f"worker{n}.log").open("w", encoding="utf-8")
                logs.append(log)
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "bot.cli.commands", "--config", str(cfg), "worker"],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        text=True,
                    )
                )
            wait(
                lambda: len(gateway.live) == 1 and any(connected(p) for p in ports), 30, "a first connection"
            )
            time.sleep(3)  # the other worker polls its lease a few times meanwhile
            assert len(gateway.live) == 1 and gateway.max_live == 1
            holder = next(n for n, p in enumerate(ports) if connected(p))
            other = 1 - holder
            standby = health(ports[other])["streams"][0]
            assert standby["holder"] is False and standby["connected"] is False

            first = gateway.push(
                ROBOT_TOPIC, fake.robot_message("写计划", sender=LILEI, conversation_type="1")
            )
            assert gateway.wait_ack(first, 10) is not None

            procs[holder].send_signal(signal.SIGKILL)
            procs[holder].wait(10)
            # pushed while no worker holds the connection: kept by the gateway, delivered later
            second = gateway.push(ROBOT_TOPIC, fake.robot_message(PLAN, sender=LILEI, conversation_type="1"))
            took = wait(lambda: connected(ports[other]), 30, "the other worker to take over")
            assert gateway.wait_ack(second, 10) is not None
            print(f"takeover after SIGKILL: {took:.1f} s")
            assert took < 30 and gateway.max_live == 1 and gateway.pending == {}

            with services.sessions() as session:
                assert session.scalar(select(func.count()).select_from(InboundEvent)) == 2
                assert session.scalar(select(func.count()).select_from(Plan)) == 1
                keys = list(session.scalars(select(OutboxMessage.dedupe_key)))
            replies = [k for k in keys if k.startswith("reply:")]
            assert len(replies) == 2 == len(set(replies))
            assert sorted(set(keys) - set(replies)) == ["welcome:lilei"]  # the first message's welcome, once
            assert wait(lambda: len(fake.session_messages) + len(fake.cards) >= 2, 20, "both replies") >= 0

            procs[other].send_signal(signal.SIGTERM)
            assert procs[other].wait(30) == 0
            assert gateway.when(lambda: gateway.live == {}, 5)
            text = (tmp_path / f"worker{other}.log").read_text(encoding="utf-8")
            assert "DingTalk Stream connected for dingtalk-main" in text
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
            for log in logs:
                log.close()
            services.engine.dispose()
            fake.stop()
