"""`planloop demo` as a new user runs it: starts, answers in the simulator, stops on a signal, restarts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(data_dir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli.commands", "demo", "--data-dir", str(data_dir), "--port", str(port)],
        cwd=Path(__file__).parents[1],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    proc.startup = []  # type: ignore[attr-defined]  # what the console showed up to the address
    for line in proc.stdout:
        proc.startup.append(line)  # type: ignore[attr-defined]
        if "planloop demo 已启动" in line:
            assert f"http://127.0.0.1:{port}/sim/" in line
            return proc
        if time.monotonic() > deadline:
            break
    proc.kill()
    pytest.fail("the demo did not start")


def _console_link(proc: subprocess.Popen) -> str:
    for line in proc.stdout:  # type: ignore[union-attr]
        if "/console/link/" in line:
            return line.rsplit("：", 1)[1].strip()
    pytest.fail("the demo printed no console link")


def _say(port: int, who: str, text: str) -> dict:
    body = json.dumps({"as": who, "chat": "dm", "text": text}).encode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/sim/api/say", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as res:  # noqa: S310 - loopback
        return json.loads(res.read())


@pytest.mark.slow
def test_demo_runs_stops_on_sigterm_and_restarts_on_the_same_data(tmp_path):
    port = _free_port()
    proc = _start(tmp_path / "demo", port)
    try:
        # 赵强 is the one the demo's story leaves without a plan this week
        (receipt,) = _say(port, "zhaoqiang", "计划\n优化详情页首屏 支付转化率 +2%\n差评回访 投诉率 -10%")[
            "replies"
        ]
        assert receipt["title"].startswith("本周计划已提交"), receipt["text"]
        # the leader's one-time console link follows the address (a worker's log line may come
        # between them): it signs in and shows the team
        link = _console_link(proc)
        assert link.startswith(f"http://127.0.0.1:{port}/console/link/")
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with browser.open(urllib.request.Request(link, b"", method="POST"), timeout=30) as res:  # noqa: S310
            page = res.read().decode()
        assert res.url.endswith("/console/") and "运营设计组" in page and "张伟" in page
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "planloop demo 已停止" in out
    assert (tmp_path / "demo" / "planloop.toml").exists()

    proc = _start(tmp_path / "demo", port)
    try:
        (shown,) = _say(port, "zhaoqiang", "计划")["replies"]
        assert shown["title"].startswith("我的本周计划") and "优化详情页首屏" in shown["text"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_a_port_in_use_says_how_to_choose_another(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "bot.cli.commands",
                "demo",
                "--data-dir",
                str(tmp_path / "d"),
                "--port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=Path(__file__).parents[1],
        )
    assert proc.returncode == 2
    assert f"端口 {port} 无法使用" in proc.stdout and f"planloop demo --port {port + 1}" in proc.stdout


def test_the_console_of_a_demo_start_fits_on_one_screen(tmp_path):
    port = _free_port()
    proc = _start(tmp_path / "demo", port)
    try:
        _say(port, "zhaoqiang", "帮助")
        for _ in range(3):  # the page polls every 2 s: no access log without --verbose
            url = f"http://127.0.0.1:{port}/sim/api/messages?chat=lilei"
            urllib.request.urlopen(url, timeout=5).read()  # noqa: S310 - loopback
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    lines = "".join([*proc.startup, out]).strip().splitlines()
    assert len(lines) <= 24, out
    assert not any("Adding job" in line or "GET /sim" in line for line in lines), out
