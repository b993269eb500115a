"""/metrics: webhook counts and latency from real requests, outbox gauges from the database,
the worker's counters, the token, the worker's own /healthz + /metrics, gunicorn multi-process."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.config import Secret
from bot.ops import metrics
from cards.model import Card, Markdown
from storage import outbox

ROOT = Path(__file__).resolve().parents[1]


def samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(body: str, name: str, **labels: str) -> float:
    return samples(body).get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(client) -> str:
    res = client.get("/metrics")
    assert res.status_code == 200
    assert res.content_type.startswith("text/plain")
    return res.get_data(as_text=True)


def test_webhook_requests_are_counted_by_platform_and_status(client, sim):
    before = scrape(client)
    sim.say("nobody", "帮助")
    sim.say("nobody", "帮助")
    bad = client.post("/sim/api/say", data=b"{not json", content_type="application/json")
    assert bad.status_code == 400
    assert client.post("/webhooks/feishu/no-such-bot", json={}).status_code == 404
    assert client.post("/webhooks/bogus/x", json={}).status_code == 404
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("planloop_webhook_requests_total", platform="simulator", status="200") == 2
    assert delta("planloop_webhook_requests_total", platform="simulator", status="400") == 1
    assert delta("planloop_webhook_requests_total", platform="feishu", status="404") == 1
    assert delta("planloop_webhook_requests_total", platform="other", status="404") == 1
    assert delta("planloop_webhook_duration_seconds_count", platform="simulator") == 3
    assert delta("planloop_webhook_duration_seconds_sum", platform="simulator") > 0
    # every observation falls in some bucket at or below +Inf
    assert delta("planloop_webhook_duration_seconds_bucket", platform="simulator", le="+Inf") == 3


def _enqueue(db, clock, n: int, key: str) -> None:
    with db() as s, s.begin():
        for i in range(n):
            outbox.enqueue(
                s,
                outbox.Target("sim", "chat", "ops"),
                Card(title="t", blocks=[Markdown("x")]),
                dedupe_key=f"{key}:{i}",
                now=clock(),
            )


def test_outbox_depth_and_oldest_age_are_read_from_the_database(client, db, clock):
    from storage.models import OutboxMessage

    body = scrape(client)
    assert value(body, "planloop_outbox_pending") == 0
    assert value(body, "planloop_outbox_oldest_pending_age_seconds") == 0
    assert value(body, "planloop_metrics_db_up") == 1

    _enqueue(db, clock, 3, "old")  # enqueued at T
    clock.advance(minutes=10)
    _enqueue(db, clock, 2, "new")  # at T+10 min
    clock.advance(seconds=30)
    with db() as s, s.begin():  # one of the old ones was delivered, one gave up
        rows = s.query(OutboxMessage).filter(OutboxMessage.dedupe_key.in_(["old:0", "old:1"])).all()
        rows[0].status, rows[1].status = "sent", "dead"
    body = scrape(client)
    assert value(body, "planloop_outbox_pending") == 3
    assert value(body, "planloop_outbox_dead") == 1
    # the oldest pending is old:2, enqueued 10 min 30 s before the clock
    assert value(body, "planloop_outbox_oldest_pending_age_seconds") == pytest.approx(630.0)


def test_outbox_gauges_survive_a_database_outage():
    from storage.db import make_engine

    engine = make_engine("postgresql+psycopg://nobody:pw@127.0.0.1:1/none")
    body = metrics.exposition(engine).decode()
    assert value(body, "planloop_metrics_db_up") == 0
    assert "planloop_outbox_pending" not in body


def test_worker_counters(client):
    before = scrape(client)
    for result in ("sent", "sent", "retry", "dead"):
        metrics.count_delivery(result)
    metrics.count_job("monday-summary", "done")
    metrics.count_job("lag-alerts", "failed")
    after = scrape(client)
    for result, n in {"sent": 2, "retry": 1, "dead": 1, "skipped": 0}.items():
        assert (
            value(after, "planloop_deliveries_total", result=result)
            - value(before, "planloop_deliveries_total", result=result)
            == n
        )
    assert (
        value(after, "planloop_job_runs_total", job="monday-summary", status="done")
        - value(before, "planloop_job_runs_total", job="monday-summary", status="done")
        == 1
    )


@pytest.mark.parametrize(("call", "arg"), [(metrics.count_delivery, "ok"), (metrics.count_job, "finished")])
def test_unknown_labels_are_refused(call, arg):
    with pytest.raises(ValueError, match=arg):
        if call is metrics.count_job:
            call("poll", arg)
        else:
            call(arg)


@pytest.mark.parametrize(
    ("header", "status"),
    [(None, 401), ("Bearer wrong", 401), ("Bearer metrics-token-1", 200), ("metrics-token-1", 200)],
)
def test_metrics_token(settings, services, header, status):
    from dataclasses import replace

    from bot.web.app import create_app

    guarded = replace(settings, extra={"metrics_token": Secret("metrics-token-1")})
    client = create_app(guarded, services).test_client()
    res = client.get("/metrics", headers={"Authorization": header} if header else {})
    assert res.status_code == status
    if status == 401:
        assert res.get_json() == {"error": "metrics token required (Authorization: Bearer …)"}


def test_worker_server_health_and_metrics(engine):
    state = {"alive": True}
    server = metrics.start_worker_server(
        0, "127.0.0.1", alive=lambda: state["alive"], engine=engine, token="t0k"
    )
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as resp:
            assert resp.status == 200
        state["alive"] = False
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{base}/healthz", timeout=5)
        assert err.value.code == 503
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{base}/metrics", timeout=5)
        assert err.value.code == 401
        metrics.count_delivery("sent")
        req = urllib.request.Request(f"{base}/metrics", headers={"Authorization": "Bearer t0k"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            body = resp.read().decode()
        assert value(body, "planloop_deliveries_total", result="sent") >= 1
        assert value(body, "planloop_metrics_db_up") == 1
    finally:
        server.shutdown()
        server.server_close()


def test_multiprocess_mode_adds_up_every_process(tmp_path, monkeypatch):
    """Three processes count into PROMETHEUS_MULTIPROC_DIR; one exposition shows the sum; the
    child_exit hook folds dead processes' files into an archive without changing any total."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    count = (
        "import os; from bot.ops import metrics; metrics.count_delivery('sent'); "
        "metrics.observe_webhook('feishu', 200, 0.2); print(os.getpid())"
    )
    pids = [
        int(
            subprocess.run(
                [sys.executable, "-c", count], env=env, check=True, timeout=60, capture_output=True
            ).stdout
        )
        for _ in range(3)
    ]
    show = "import sys; from bot.ops import metrics; sys.stdout.write(metrics.exposition().decode())"

    def scrape_all() -> str:
        return subprocess.run(
            [sys.executable, "-c", show], env=env, check=True, capture_output=True, text=True, timeout=60
        ).stdout

    def files() -> set[str]:
        return {p.name for p in tmp_path.glob("*.db")}

    def check(out: str) -> None:
        assert value(out, "planloop_deliveries_total", result="sent") == 3
        assert value(out, "planloop_webhook_requests_total", platform="feishu", status="200") == 3
        assert value(out, "planloop_webhook_duration_seconds_bucket", platform="feishu", le="0.25") == 3
        assert value(out, "planloop_webhook_duration_seconds_bucket", platform="feishu", le="0.1") == 0

    check(scrape_all())
    assert {f"counter_{p}.db" for p in pids} <= files()
    # gunicorn's child_exit for two of them (it runs in the master, i.e. here)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    metrics.mark_process_dead(pids[0])
    metrics.mark_process_dead(pids[1])
    metrics.mark_process_dead(pids[1])  # twice is harmless
    assert files() == {
        "counter_archive.db",
        "histogram_archive.db",
        f"counter_{pids[2]}.db",
        f"histogram_{pids[2]}.db",
    }
    check(scrape_all())


def test_age_uses_the_clock_given(db, clock, engine):
    _enqueue(db, clock, 1, "x")
    later = clock() + timedelta(hours=2)
    body = metrics.exposition(engine, lambda: later).decode()
    assert value(body, "planloop_outbox_oldest_pending_age_seconds") == pytest.approx(7200.0)
