"""The outbox relay under faults: 500, 429 + Retry-After, timeouts, final errors, dead rows,
a relay killed between claim and send (or after send), rate limits, and two relays at once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
import requests
from cryptography.fernet import Fernet
from sqlalchemy import select

from bot.platforms.base import Outbound, RateLimit, SendResult
from bot.worker import delivery
from bot.worker.delivery import Relay, RelayPolicy, TokenBuckets, backoff, drain
from cards.model import Card
from storage import outbox
from storage.db import transaction
from storage.models import AuditLog, OutboxMessage, SimMessage
from tests import worker_seed as seed
from tests.fakes.chat_server import ChatServer, HttpFakePlatform


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    server = ChatServer().start()
    yield server
    server.stop()


@pytest.fixture
def wired(services, chat, db, clock):  # noqa: ANN001, ANN201
    """Services with a ``fake`` bot talking HTTP to the chat server, and an admin ``root``."""
    services.platforms["fake"] = HttpFakePlatform("fake", chat.url)
    services.settings = replace(services.settings, extra={"admins": ["root"]})
    with db() as session, session.begin():
        seed.team(session, leader="root")
        seed.person(session, "root", "管理员")
    return services


def enqueue(services, n: int, *, bot: str = "fake", channel: str = "user", target: str = "u1") -> list[str]:
    ids = []
    with transaction(services.sessions) as session:
        for i in range(n):
            row = outbox.enqueue(
                session,
                outbox.Target(bot, channel, target),
                Card(title=f"消息 {i}"),
                dedupe_key=f"test:{bot}:{target}:{i}",
                now=services.clock(),
            )
            assert row is not None
            ids.append(row.id)
    return ids


def rows(services) -> dict[str, OutboxMessage]:
    with services.sessions() as session:
        return {r.id: r for r in session.scalars(select(OutboxMessage))}


def advancing(clock) -> Callable[[float], None]:  # noqa: ANN001
    return lambda seconds: clock.advance(seconds=seconds)


def relay(services, name: str = "A", **policy) -> Relay:  # noqa: ANN001
    return Relay(services, name=name, policy=RelayPolicy(**policy), rng=lambda: 0.5)


# --- pure parts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempts", "rng", "retry_after", "expected"),
    [
        (1, 1.0, None, 2.0),  # base 2 s
        (3, 1.0, None, 8.0),  # 2 × 2²
        (3, 0.25, None, 2.0),  # full jitter: a uniform share of the ceiling
        (20, 1.0, None, 3600.0),  # capped
        (1, 0.0, None, 0.0),
        (1, 0.0, 30.0, 30.0),  # never sooner than the platform asked
        (12, 1.0, 30.0, 3600.0),  # a longer backoff still wins
    ],
)
def test_backoff(attempts: int, rng: float, retry_after: float | None, expected: float) -> None:
    assert backoff(attempts, RelayPolicy(), lambda: rng, retry_after) == expected


@pytest.mark.parametrize(
    ("sends", "at", "expected"),
    [
        ([], 0.0, 0.0),
        ([0.0], 1.0, 0.0),  # one token left
        ([0.0, 10.0], 20.0, 40.0),  # both spent: the first returns at 60
        ([0.0, 10.0], 60.0, 0.0),
        ([0.0, 10.0], 65.0, 0.0),
    ],
)
def test_token_bucket_wait(sends: list[float], at: float, expected: float) -> None:
    limit = RateLimit("robot", 2, 60)
    buckets = TokenBuckets()
    for t in sends:
        buckets.take([limit], t)
    assert buckets.wait([limit], at) == pytest.approx(expected)


def test_acquire_takes_from_every_bucket_or_from_none() -> None:
    robot, app = RateLimit("robot", 1, 60), RateLimit("app", 2, 1)
    buckets = TokenBuckets()
    assert buckets.acquire([robot, app], 0.0) == 0.0
    assert buckets.acquire([robot, app], 0.1) == pytest.approx(59.9)  # the robot is spent ...
    assert buckets.acquire([app], 0.2) == 0.0  # ... so the app's token was not taken by the refusal
    assert buckets.acquire([app], 0.3) == pytest.approx(0.7)


@pytest.mark.parametrize(
    ("sends", "at", "expected"),
    [
        ([0.0] * 5, 0.5, 0.5),  # 5 a second: the 6th waits for the first to age out
        ([i / 5 for i in range(100)], 20.0, 40.0),  # 100 a minute: the 101st waits until 60 s
        ([i / 5 for i in range(100)], 60.0, 0.0),
        ([i / 5 for i in range(99)], 20.0, 0.0),
    ],
)
def test_two_windows_on_one_key_each_keep_their_own_history(
    sends: list[float], at: float, expected: float
) -> None:
    """Feishu's robot declares 5/s and 100/min under one key; the 1 s window must not make the
    bucket forget sends the 60 s window still counts, nor count one send twice."""
    limits = [RateLimit("robot", 5, 1.0), RateLimit("robot", 100, 60.0)]
    buckets = TokenBuckets()
    for t in sends:
        assert buckets.acquire(limits, t) == 0.0
    assert buckets.wait(limits, at) == pytest.approx(expected)


def test_token_bucket_block_and_independent_keys() -> None:
    a, b = RateLimit("a", 1, 10), RateLimit("b", 5, 10)
    buckets = TokenBuckets()
    buckets.take([a], 0.0)
    assert buckets.wait([b], 0.0) == 0.0
    assert buckets.wait([a, b], 0.0) == 10.0
    buckets.block(["b"], 30.0)
    assert buckets.wait([b], 5.0) == 25.0


# --- faults against the HTTP fake -------------------------------------------------------------


@pytest.mark.parametrize(
    "script",
    [
        ["500"],
        ["429:30"],
        ["slow"],  # the client times out; the server delivered anyway; the resend is deduped by uuid
        ["500", "slow", "429:5", "500"],
    ],
)
def test_faults_deliver_everything_once(wired, chat, clock, script: list[str]) -> None:
    chat.script.extend(script)
    (msg_id,) = enqueue(wired, 1)
    stats = drain(wired, relay=relay(wired), sleep=advancing(clock))
    row = rows(wired)[msg_id]
    assert row.status == "sent"
    assert row.attempts == len(script) + 1
    assert list(chat.delivered) == [msg_id]  # what a person sees: once
    assert len(chat.received) == len(script) + 1  # what went over the wire: every retry
    assert row.platform_message_id == chat.delivered[msg_id]["message_id"]
    assert (stats.sent, stats.dead) == (1, 0)


def test_retry_after_is_honoured(wired, chat, clock) -> None:
    chat.script.append("429:30")
    (msg_id,) = enqueue(wired, 1)
    r = relay(wired)
    start = clock()
    assert r.run_once().retried == 1
    assert rows(wired)[msg_id].next_attempt_at == start + timedelta(seconds=30)  # jitter was only 1 s
    clock.advance(seconds=29)
    assert r.run_once().claimed == 0
    clock.advance(seconds=1)
    assert r.run_once().sent == 1


def test_a_429_holds_back_the_other_messages_for_that_robot(wired, chat, clock) -> None:
    wired.platforms["fake"] = HttpFakePlatform("fake", chat.url, limits=[RateLimit("robot", 100, 60)])
    chat.script.append("429:20")
    ids = enqueue(wired, 3)
    start = clock()
    first = relay(wired).run_once()
    assert (first.retried, first.waited, first.sent) == (1, 2, 0)  # waited, not failed
    got = rows(wired)
    assert all(got[i].next_attempt_at >= start + timedelta(seconds=20) for i in ids)
    assert sorted(got[i].attempts for i in ids) == [0, 0, 1]


def test_rate_limit_makes_messages_wait(wired, chat, clock) -> None:
    sent_at: list[float] = []
    platform = HttpFakePlatform("fake", chat.url, limits=[RateLimit("robot", 2, 60)])
    real_send = platform.send

    def timed(message: Outbound) -> SendResult:
        sent_at.append(clock().timestamp())
        return real_send(message)

    platform.send = timed  # type: ignore[method-assign]
    wired.platforms["fake"] = platform
    ids = enqueue(wired, 5)
    drain(wired, relay=relay(wired), sleep=advancing(clock))
    got = rows(wired)
    assert all(got[i].status == "sent" and got[i].attempts == 1 for i in ids)  # none counted as a failure
    assert len(chat.delivered) == 5
    # no 60-second window holds more than two sends
    assert all(sent_at[i + 2] - sent_at[i] >= 60 for i in range(len(sent_at) - 2))
    assert sent_at[-1] - sent_at[0] == pytest.approx(120, abs=0.1)  # and no slower than needed


def test_dead_after_max_attempts_tells_the_admin(wired, chat, clock, db) -> None:
    chat.script.extend(["500"] * 8)
    (msg_id,) = enqueue(wired, 1)
    stats = drain(wired, relay=relay(wired), sleep=advancing(clock))
    row = rows(wired)[msg_id]
    assert (row.status, row.attempts, stats.dead) == ("dead", 8, 1)
    assert "server error 500" in row.last_error
    assert len(chat.received) == 8 and chat.delivered == {}
    with db() as session:
        notice = session.scalar(
            select(OutboxMessage).where(OutboxMessage.dedupe_key == f"admin:dead:{msg_id}:root")
        )
        assert notice is not None and notice.status == "sent"  # delivered to root through the simulator
        dm = session.scalars(select(SimMessage).where(SimMessage.chat == "root")).one()
        assert dm.card["title"] == "消息投递失败" and msg_id in dm.text
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "admin_notice")).one()
        assert audit.detail["outbox_id"] == msg_id and audit.detail["admins_reached"] == 1


def test_final_error_is_dead_at_once(wired, chat, clock) -> None:
    chat.script.append("400")
    (msg_id,) = enqueue(wired, 1)
    drain(wired, relay=relay(wired), sleep=advancing(clock))
    row = rows(wired)[msg_id]
    assert (row.status, row.attempts) == ("dead", 1)
    assert row.last_error.startswith("[230001] invalid receive_id")


def test_dead_without_admins_is_audited(wired, chat, clock, db) -> None:
    wired.settings = replace(wired.settings, extra={})
    chat.script.append("400")
    (msg_id,) = enqueue(wired, 1)
    drain(wired, relay=relay(wired), sleep=advancing(clock))
    with db() as session:
        audit = session.scalars(select(AuditLog)).one()
        assert audit.detail["admins_reached"] == 0 and audit.detail["outbox_id"] == msg_id
        assert (
            session.scalars(select(OutboxMessage).where(OutboxMessage.dedupe_key.like("admin:%"))).all() == []
        )


def test_drain_stops_at_the_deadline_and_leaves_the_rest(wired, chat, clock) -> None:
    chat.script.extend(["500"] * 8)
    (msg_id,) = enqueue(wired, 1)
    drain(wired, deadline=clock() + timedelta(seconds=10), relay=relay(wired), sleep=advancing(clock))
    row = rows(wired)[msg_id]
    assert row.status == "pending" and 1 < row.attempts < 8  # waits 1, 2, 4, 8 s: stops before the last


# --- a relay killed mid-way -------------------------------------------------------------------


def test_killed_between_claim_and_send(wired, chat, clock) -> None:
    ids = enqueue(wired, 3)
    dead = relay(wired, "A")
    assert sorted(c.id for c in dead.claim()) == sorted(ids)  # ... and the process dies here
    survivor = relay(wired, "B")
    assert survivor.run_once().claimed == 0  # leased to A for now
    stats = drain(wired, relay=survivor, sleep=advancing(clock))
    assert stats.sent == 3
    assert sorted(chat.delivered) == sorted(ids)
    assert len(chat.received) == 3  # nothing went out twice


def test_killed_after_send_before_recording(wired, chat, clock) -> None:
    (msg_id,) = enqueue(wired, 1)
    dead = relay(wired, "A")
    (claimed,) = dead.claim()
    wired.platforms["fake"].send(dead._outbound(claimed))  # the platform accepted it; then A died
    drain(wired, relay=relay(wired, "B"), sleep=advancing(clock))
    assert len(chat.received) == 2  # B could not know and sent again ...
    assert list(chat.delivered) == [msg_id]  # ... with the same uuid, so it shows once
    assert rows(wired)[msg_id].platform_message_id == chat.delivered[msg_id]["message_id"]


# --- the platform seen through a scripted in-process adapter ----------------------------------


class Scripted:
    """An in-process adapter: each send pops the next outcome (an exception or a SendResult)."""

    name = "scripted"

    def __init__(self, bot_id: str, outcomes: list[object] | None = None):
        self.bot_id = bot_id
        self.outcomes = list(outcomes or [])
        self.sent: list[Outbound] = []

    def send(self, message: Outbound) -> SendResult:
        outcome = self.outcomes.pop(0) if self.outcomes else SendResult(f"m-{len(self.sent) + 1}")
        if isinstance(outcome, BaseException):
            raise outcome
        self.sent.append(message)
        assert isinstance(outcome, SendResult)
        return outcome

    def limits(self, message: Outbound) -> list[RateLimit]:
        return []


def test_message_id_and_reply_handle_are_recorded(services, clock) -> None:
    services.platforms["fake"] = Scripted("fake", [SendResult("om_42", reply_handle="rc-9")])
    (msg_id,) = enqueue(services, 1)
    assert relay(services).run_once().sent == 1
    row = rows(services)[msg_id]
    assert (row.platform_message_id, row.reply_handle, row.claimed_by) == ("om_42", "rc-9", None)


def test_a_plain_exception_from_an_adapter_is_retried(services, clock) -> None:
    platform = Scripted("fake", [requests.ConnectionError("reset by peer"), requests.Timeout("read timeout")])
    services.platforms["fake"] = platform
    (msg_id,) = enqueue(services, 1)
    drain(services, relay=relay(services), sleep=advancing(clock))
    row = rows(services)[msg_id]
    assert (row.status, row.attempts, len(platform.sent)) == ("sent", 3, 1)


def test_webhook_rows_carry_the_team_robot(services, db, clock) -> None:
    from storage.secrets import Sealer
    from tests.conftest import TEST_KEY

    platform = Scripted("fake")
    services.platforms["fake"] = platform
    sealer = Sealer([TEST_KEY])
    with db() as session, session.begin():
        seed.team(
            session,
            "ops",
            webhook_enc=sealer.seal("https://robot.example/hook/abc"),
            webhook_secret_enc=sealer.seal("SEC123"),
        )
        seed.team(session, "legacy", leader=None, webhook_enc="https://robot.example/hook/plain")
        seed.team(session, "bare", leader=None)
        seed.team(
            session, "foreign", leader=None, webhook_enc=Sealer([Fernet.generate_key().decode()]).seal("x")
        )
    (ok,) = enqueue(services, 1, channel="webhook", target="ops")
    (legacy,) = enqueue(services, 1, channel="webhook", target="legacy")
    (missing,) = enqueue(services, 1, channel="webhook", target="bare")
    (unopenable,) = enqueue(services, 1, channel="webhook", target="foreign")
    relay(services).run_once()
    sent = {m.id: dict(m.extra) for m in platform.sent}
    assert sent == {
        ok: {delivery.WEBHOOK_URL: "https://robot.example/hook/abc", delivery.WEBHOOK_SECRET: "SEC123"},
        legacy: {delivery.WEBHOOK_URL: "https://robot.example/hook/plain", delivery.WEBHOOK_SECRET: ""},
    }
    got = rows(services)
    assert (got[missing].status, got[missing].attempts) == ("pending", 1)
    assert got[missing].last_error.startswith("[no_webhook]")
    assert got[unopenable].last_error.startswith("[secret] cannot open the team's webhook")
    assert "x" not in got[unopenable].last_error.split("webhook")[0]


def test_unknown_bot_retries_then_dies(services, clock) -> None:
    (msg_id,) = enqueue(services, 1, bot="gone")
    drain(services, relay=relay(services, max_attempts=2), sleep=advancing(clock))
    row = rows(services)[msg_id]
    assert (row.status, row.attempts) == ("dead", 2)
    assert "no bot named 'gone'" in row.last_error


def test_an_unreadable_card_is_dead_without_retries(services, db, clock) -> None:
    services.platforms["fake"] = Scripted("fake")
    (msg_id,) = enqueue(services, 1)
    with db() as session, session.begin():
        session.get(OutboxMessage, msg_id).card = {"blocks": "nonsense"}
    relay(services).run_once()
    row = rows(services)[msg_id]
    assert (row.status, row.attempts) == ("dead", 1) and "[bad_card]" in row.last_error


# --- two relays on one database ---------------------------------------------------------------


def test_two_relays_send_each_message_exactly_once(wired, chat, clock) -> None:
    ids = enqueue(wired, 120)
    errors: list[BaseException] = []

    def work(name: str) -> None:
        r = Relay(wired, name=name, policy=RelayPolicy(batch=7))
        try:
            while r.run_once().progressed:
                pass
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in ("A", "B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(chat.received) == 120  # not a single duplicate request
    assert sorted(chat.delivered) == sorted(ids)
    assert {r.status for r in rows(wired).values()} == {"sent"}
