"""Two workers on one PostgreSQL for a simulated week: every scheduled message goes out exactly once.

Each worker has its own engine (its own connections), runs every slot the scheduler would
fire, hour by hour, and relays the outbox with SKIP LOCKED claims, at the same time as
the other. The Monday summary here is a stand-in job whose dedupe keys are unique per
call, so only the (job, period) claim can keep it single.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.services import build_services
from bot.worker import jobs
from bot.worker.delivery import Relay, RelayPolicy
from bot.worker.jobs import JobResult
from bot.worker.scheduler import fire_due
from cards.model import Card
from storage import outbox
from storage.db import make_engine, transaction
from storage.models import Team
from tests import worker_seed as seed
from tests.fakes.chat_server import ChatServer, HttpFakePlatform

SH = ZoneInfo("Asia/Shanghai")
MEMBERS = 12


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH).astimezone(UTC)


def summary_without_dedupe(services, at: datetime) -> JobResult:  # noqa: ANN001
    """A Monday summary to each team's chat, first workday 09:00 only (as issue 11 will decide)."""
    tz = services.settings.tz
    local_at = at.astimezone(tz)
    from handlers import workdays

    if local_at.date() != workdays.first_workday(workdays.week_of(at, tz)):
        return JobResult("monday-summary", status="skipped", reason="not the first workday")
    sent = 0
    with transaction(services.sessions) as session:
        for team in session.query(Team).all():
            target = outbox.Target("fake", "chat", team.id)
            key = f"monday:{team.id}:{uuid.uuid4()}"  # deliberately no protection here
            sent += (
                outbox.enqueue(session, target, Card(title=f"{team.name} 上周汇总"), dedupe_key=key, now=at)
                is not None
            )
    return JobResult("monday-summary", enqueued=sent)


def test_two_workers_one_week_every_message_once(engine, clock, settings, monkeypatch) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip(
            "needs PostgreSQL: SQLite deployments run a single worker (a second one is refused), "
            "so concurrent workers are only supported, and tested, on PostgreSQL"
        )
    chat = ChatServer().start()
    monkeypatch.setitem(jobs.JOBS, "monday-summary", summary_without_dedupe)
    workers = []
    for name in ("w1", "w2"):
        svc = build_services(
            settings, clock=clock, engine=make_engine(engine.url.render_as_string(hide_password=False))
        )
        svc.platforms["fake"] = HttpFakePlatform("fake", chat.url)
        workers.append((name, svc))
    services = workers[0][1]
    clock.set(local("2026-11-23 08:00"))
    with transaction(services.sessions) as session:
        seed.team(session, chat_bot="fake")
        seed.kpi(session, "conversion_rate", "支付转化率", metric="pay_conversion_rate")
        seed.person(session, "zhangwei", "张伟", bot="fake")
        for n in range(MEMBERS):
            pid = f"p{n:02d}"
            seed.person(session, pid, f"成员{n:02d}", bot="fake")
            seed.plan(
                session,
                pid,
                "2026-W48",
                [("提升转化", "conversion_rate", f"s{n}", "3.00", "5.00")],
                at=clock(),
            )
    # Every member's shop is stuck at 3.10 (5 %): lagging from Wednesday to Friday.
    with transaction(services.sessions) as session:
        for n in range(MEMBERS):
            for day in ("2026-11-23", "2026-11-24", "2026-11-25", "2026-11-26"):
                seed.sample(session, "pay_conversion_rate", day, "3.10", scope=f"s{n}", at=clock())

    errors: list[BaseException] = []

    def worker_hour(name: str, svc, start: datetime, end: datetime) -> None:  # noqa: ANN001
        try:
            fire_due(svc, start, end, only=("lag-alerts", "monday-summary", "reminders", "appraisal"))
            relay = Relay(svc, name=name, policy=RelayPolicy(batch=3))
            while relay.run_once().progressed:
                pass
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    hour = local("2026-11-23 00:00")
    try:
        while hour < local("2026-11-30 00:00"):
            clock.set(hour + timedelta(hours=1))
            threads = [
                threading.Thread(target=worker_hour, args=(n, s, hour, hour + timedelta(hours=1)))
                for n, s in workers
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert errors == []
            hour += timedelta(hours=1)
    finally:
        chat.stop()
        for _, svc in workers[1:]:
            svc.engine.dispose()

    by_chat: dict[str, list[str]] = {}
    for message in chat.delivered.values():
        by_chat.setdefault(message["to"], []).append(message["text"].splitlines()[0])
    # Wed, Thu, Fri: one alert per member per day, one folded card to the leader per day
    assert {pid: len(titles) for pid, titles in by_chat.items() if pid.startswith("p")} == {
        f"p{n:02d}": 3 for n in range(MEMBERS)
    }
    assert by_chat["zhangwei"] == [f"运营组 · 进度落后 {MEMBERS} 项"] * 3
    assert by_chat["ops"] == ["运营组 上周汇总"]  # Monday 09:00, once, although both workers fired it
    assert len(chat.received) == len(chat.delivered) == MEMBERS * 3 + 3 + 1  # nothing sent twice
