"""The image's entry commands run for real: `planloop db upgrade`, `planloop serve` (gunicorn) and
the HEALTHCHECK, as subprocesses on a free port, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bot.config import Settings
from bot.ops.healthcheck import check, default_url
from bot.ops.serve import GRACEFUL_TIMEOUT, MAX_WORKERS, TIMEOUT, default_workers, gunicorn_options
from tests.conftest import TEST_KEY
from tests.dbs import KINDS, fresh_database

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "planloop.toml"
    path.write_text(
        '[server]\ndatabase_url = "env:TEST_DATABASE_URL"\nsecret_key = "env:TEST_SECRET_KEY"\n'
        "[simulator]\nenabled = true\n",
        encoding="utf-8",
    )
    return path


def env_for(config: Path, url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMETHEUS_", "GUNICORN_"))}
    env.update(
        PLANLOOP_CONFIG=str(config),  # as the image passes it: no --config flag
        TEST_DATABASE_URL=url,
        TEST_SECRET_KEY=TEST_KEY,
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


def planloop(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli.commands", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def start_serve(port: int, env: dict[str, str], *, stdout: int) -> subprocess.Popen:
    """`planloop serve` with two workers on 127.0.0.1:port, as a deployer starts it."""
    cmd = [
        sys.executable,
        "-m",
        "bot.cli.commands",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "2",
    ]
    return subprocess.Popen(cmd, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True)


def wait_until_up(port: int, proc: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited early with {proc.returncode}: {proc.stderr.read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("serve did not listen in time")


@pytest.mark.parametrize("kind", KINDS)
def test_serve_refuses_an_unmigrated_database_then_runs_after_db_upgrade(kind, tmp_path):
    with fresh_database(kind, tmp_path) as url:
        config = write_config(tmp_path, url)
        env = env_for(config, url)
        port = free_port()

        refused = planloop("serve", "--host", "127.0.0.1", "--port", str(port), env=env)
        assert refused.returncode == 1
        assert "planloop db upgrade" in refused.stderr
        assert "database is empty" in refused.stderr

        upgraded = planloop("db", "upgrade", env=env)
        assert upgraded.returncode == 0, upgraded.stderr
        assert "数据库已在版本" in upgraded.stdout

        proc = start_serve(port, env, stdout=subprocess.PIPE)
        try:
            wait_until_up(port, proc)
            assert get(f"http://127.0.0.1:{port}/healthz") == (200, {"status": "ok"})
            status, body = get(f"http://127.0.0.1:{port}/readyz")
            assert status == 200 and body["status"] == "ready"
            # A webhook path through gunicorn: the simulator answers the help command.
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/sim/api/say",
                data=json.dumps({"as": "nobody", "chat": "dm", "text": "帮助"}).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert resp.status == 200
                assert json.loads(resp.read())["replies"]
            # The container's HEALTHCHECK command, pointed at this port.
            health = subprocess.run(
                [sys.executable, "-m", "bot.ops.healthcheck"],
                env={**env, "PORT": str(port)},
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert health.returncode == 0, health.stderr
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=GRACEFUL_TIMEOUT + 10)
        assert proc.returncode == 0, err
        access = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        paths = {(a["method"], a["path"], a["status"]) for a in access}
        assert ("GET", "/healthz", 200) in paths and ("POST", "/sim/api/say", 200) in paths
        assert all(a["logger"] == "gunicorn.access" and a["duration_ms"] >= 0 for a in access)
        errors = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        assert any(e["message"] == "planloop web is listening" for e in errors)
        assert all(line.startswith("{") for line in err.splitlines() if line.strip()), err
        assert TEST_KEY not in out + err


def test_serve_without_secret_key_is_a_usage_error(tmp_path):
    config = tmp_path / "planloop.toml"
    config.write_text(f'[server]\ndatabase_url = "sqlite:///{tmp_path}/p.db"\n', encoding="utf-8")
    result = planloop("serve", env={**os.environ, "PLANLOOP_CONFIG": str(config), "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2
    assert "没有设置 server.secret_key" in result.stderr


def test_the_web_app_never_loads_the_scheduler(tmp_path):
    """What a gunicorn worker loads (PlanloopServer.load) must not import a scheduler or the worker."""
    code = (
        "import sys\n"
        "from bot.config import Settings, Secret\n"
        "from bot.ops.serve import PlanloopServer, gunicorn_options\n"
        f"s = Settings(database_url='sqlite:///{tmp_path}/p.db', secret_keys=(Secret('{TEST_KEY}'),), simulator=True)\n"
        "app = PlanloopServer(s, gunicorn_options(s, '127.0.0.1', 0, 1)).load()\n"
        "assert app.url_map is not None\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('apscheduler', 'bot.worker.process', 'bot.worker.scheduler', 'bot.worker.delivery')))\n"
        "print(loaded)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_master_imports_what_a_worker_would_import_at_boot(tmp_path):
    """run_serve imports the app's modules before the fork, so a worker (booted again every
    max_requests) inherits them: building the app must import nothing more of ours or of the
    heavy libraries, and the master must not load the scheduler either."""
    ours = (
        "bot",
        "handlers",
        "storage",
        "sources",
        "cards",
        "appraisal",
        "flask",
        "pydantic",
        "flask_openapi3",
    )
    code = (
        "import sys\n"
        "from bot.config import Settings, Secret\n"
        "from bot.ops.serve import PlanloopServer, gunicorn_options, _import_app_modules\n"
        f"s = Settings(database_url='sqlite:///{tmp_path}/p.db', secret_keys=(Secret('{TEST_KEY}'),), simulator=True)\n"
        "_import_app_modules()\n"
        "scheduler = sorted(m for m in sys.modules if m.startswith(('apscheduler', 'bot.worker.process', 'bot.worker.scheduler')))\n"
        "before = set(sys.modules)\n"
        "PlanloopServer(s, gunicorn_options(s, '127.0.0.1', 0, 1)).load()\n"
        f"late = sorted(m for m in set(sys.modules) - before if m.split('.')[0] in {ours!r})\n"
        "print(scheduler, late)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] []"


@pytest.mark.parametrize(
    ("cpus", "expected"),
    [(1, 3), (2, 5), (3, 7), (4, 8), (16, 8)],
)
def test_default_workers_is_two_per_core_plus_one_capped(cpus, expected):
    assert default_workers(cpus) == min(2 * cpus + 1, MAX_WORKERS) == expected


@pytest.mark.parametrize(
    ("extra", "workers_arg", "expect"),
    [
        (
            {},
            None,
            {"workers": default_workers(), "threads": 1, "worker_class": "sync", "timeout": TIMEOUT},
        ),
        ({}, 3, {"workers": 3, "worker_class": "sync"}),
        (
            {"workers": 6, "threads": 8, "timeout": 20},
            None,
            {"workers": 6, "threads": 8, "worker_class": "gthread", "timeout": 20},
        ),
        ({"threads": 2}, None, {"threads": 2, "worker_class": "gthread"}),
        ({"workers": 6}, 2, {"workers": 2}),  # the command line wins over the file
    ],
)
def test_gunicorn_options(extra, workers_arg, expect):
    opts = gunicorn_options(Settings(extra=extra), "::", 8000, workers_arg)
    assert opts["bind"] == "[::]:8000"
    assert opts["max_requests"] > 0 and 0 < opts["max_requests_jitter"] < opts["max_requests"]
    assert opts["graceful_timeout"] == GRACEFUL_TIMEOUT and opts["keepalive"] > 0
    assert opts["preload_app"] is False
    for key, value in expect.items():
        assert opts[key] == value


def test_gunicorn_cmd_args_override_the_defaults(monkeypatch):
    from bot.ops.serve import PlanloopServer

    monkeypatch.setenv("GUNICORN_CMD_ARGS", "--timeout 12 --forwarded-allow-ips=10.0.0.0/8")
    server = PlanloopServer(Settings(), gunicorn_options(Settings(), "127.0.0.1", 8000, 2))
    assert server.cfg.timeout == 12
    assert server.cfg.forwarded_allow_ips == ["10.0.0.0/8"]
    assert server.cfg.workers == 2 and server.cfg.worker_class_str == "sync"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "http://127.0.0.1:8000/healthz"),
        ({"PORT": "9000"}, "http://127.0.0.1:9000/healthz"),
        (
            {"PLANLOOP_HEALTHCHECK_URL": "http://127.0.0.1:9100/healthz", "PORT": "1"},
            "http://127.0.0.1:9100/healthz",
        ),
    ],
)
def test_healthcheck_url(env, expected):
    assert default_url(env) == expected


def test_healthcheck_fails_when_nothing_listens():
    port = free_port()
    problem = check(f"http://127.0.0.1:{port}/healthz", timeout=1)
    assert problem is not None and str(port) in problem
    assert check("file:///etc/passwd") == "not an http(s) URL: file:///etc/passwd"


def test_recycled_workers_keep_serving_and_counting(tmp_path):
    """Workers recycled after a few requests (max_requests) must neither break /metrics nor lose
    counts: the shared metrics folder outlives every worker and dead workers' counts are kept."""
    from prometheus_client.parser import text_string_to_metric_families

    with fresh_database("sqlite", tmp_path) as url:
        config = write_config(tmp_path, url)
        env = env_for(config, url, GUNICORN_CMD_ARGS="--max-requests 3 --max-requests-jitter 1")
        assert planloop("db", "upgrade", env=env).returncode == 0
        port = free_port()
        proc = start_serve(port, env, stdout=subprocess.DEVNULL)
        try:
            wait_until_up(port, proc)
            for n in range(20):
                req = urllib.request.Request(
                    f"http://127.0.0.1:{port}/sim/api/say",
                    data=json.dumps({"as": "nobody", "chat": "dm", "text": "帮助", "id": f"r{n}"}).encode(),
                    headers={"Content-Type": "application/json", "Connection": "close"},
                )
                with urllib.request.urlopen(req, timeout=10) as resp:
                    assert resp.status == 200
            time.sleep(1)  # let the master reap the last recycled worker
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
                body = resp.read().decode()
        finally:
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=GRACEFUL_TIMEOUT + 10)
        total = sum(
            s.value
            for family in text_string_to_metric_families(body)
            for s in family.samples
            if s.name == "planloop_webhook_requests_total"
            and s.labels == {"platform": "simulator", "status": "200"}
        )
        assert total == 20
        assert "Autorestarting worker" in err or "max requests" in err.lower()
        assert '"level": "error"' not in err
