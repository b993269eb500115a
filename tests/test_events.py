"""The lean webhook path (issue 18 §4) keeps every guarantee: the event-id dedupe and the answer's
outbox row are single ``INSERT … ON CONFLICT DO NOTHING`` statements in the handler's
transaction — on SQLite and PostgreSQL alike, also when the same event arrives twice at once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.config import Secret, Settings
from cards.model import Card, Markdown
from handlers.router import Context
from storage import events, outbox
from storage.db import insert_new
from storage.models import InboundEvent, OutboxMessage, Person
from tests.conftest import TEST_KEY
from tests.fakes import feishu as ff

URL = "/webhooks/feishu/feishu-main"
CARD = Card("计划已提交", theme="green", blocks=(Markdown("共 2 项"),))
TARGET = outbox.Target("feishu-main", "user", "ou_lilei", reply_handle="om_1")


def count(db, model) -> int:  # noqa: ANN001
    with db() as s:
        return int(s.scalar(select(func.count()).select_from(model)))


# --- storage.events.first_time -----------------------------------------------------------------


def test_first_time_is_true_once_per_key(db, clock):
    with db() as s, s.begin():
        answers = [events.first_time(s, key, clock()) for key in ["b:e1", "b:e2", "b:e1", "b:e2", "b:e1"]]
    assert answers == [True, True, False, False, False]
    with db() as s:
        rows = {k: at for k, at in s.execute(select(InboundEvent.key, InboundEvent.received_at))}
    assert rows == {"b:e1": clock(), "b:e2": clock()}  # the first receipt's time, an aware UTC datetime


def test_a_rolled_back_transaction_forgets_the_event(db, clock):
    """The platform's retry of an event whose handler failed must be processed again."""
    with pytest.raises(RuntimeError), db() as s, s.begin():
        assert events.first_time(s, "b:e1", clock())
        raise RuntimeError("the handler failed")
    with db() as s, s.begin():
        assert events.first_time(s, "b:e1", clock())


def test_prune_keeps_recent_keys(db, clock):
    with db() as s, s.begin():
        events.first_time(s, "b:old", clock() - events.KEEP - timedelta(minutes=1))
        events.first_time(s, "b:new", clock())
    with db() as s, s.begin():
        assert events.prune(s, clock()) == 1
    with db() as s, s.begin():
        assert (events.first_time(s, "b:old", clock()), events.first_time(s, "b:new", clock())) == (
            True,
            False,
        )


def test_concurrent_first_deliveries_of_one_key_let_exactly_one_through(db, clock):
    """Eight transactions insert the same key at once, each holding its transaction open a moment
    after the insert (as a handler would): exactly one sees a first time, and no one fails."""
    answers: list[bool] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def deliver() -> None:
        try:
            start.wait()
            with db() as s, s.begin():
                answers.append(events.first_time(s, "b:same", clock()))
                threading.Event().wait(0.05)  # the handler's work, with the row still uncommitted
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(answers) == [False] * 7 + [True]
    assert count(db, InboundEvent) == 1


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_insert_new_is_on_conflict_do_nothing_for_each_dialect(dialect):
    from sqlalchemy.dialects import postgresql, sqlite

    stmt = insert_new(dialect, InboundEvent.__table__)  # type: ignore[arg-type]
    sql = str(stmt.compile(dialect=(sqlite if dialect == "sqlite" else postgresql).dialect()))
    assert sql.startswith("INSERT INTO inbound_events") and sql.endswith("ON CONFLICT DO NOTHING")


def test_insert_new_refuses_a_dialect_without_on_conflict():
    with pytest.raises(ValueError, match="mysql"):
        insert_new("mysql", InboundEvent.__table__)  # type: ignore[arg-type]


# --- storage.outbox.put ------------------------------------------------------------------------


def test_put_writes_the_row_enqueue_writes(db, clock):
    with db() as s, s.begin():
        assert outbox.put(s, TARGET, CARD, dedupe_key="reply:a", now=clock()) is True
        assert outbox.enqueue(s, TARGET, CARD, dedupe_key="reply:b", now=clock()) is not None
    with db() as s:
        put_row, enqueued = (
            s.scalar(select(OutboxMessage).where(OutboxMessage.dedupe_key == k))
            for k in ("reply:a", "reply:b")
        )
    columns = [c.key for c in OutboxMessage.__table__.columns if c.key not in ("id", "dedupe_key")]
    assert {c: getattr(put_row, c) for c in columns} == {c: getattr(enqueued, c) for c in columns}
    assert (put_row.status, put_row.attempts, put_row.parts_sent, put_row.next_attempt_at) == (
        "pending",
        0,
        0,
        clock(),
    )
    assert put_row.card == CARD.to_dict() and put_row.reply_handle == "om_1"
    assert len(put_row.id) == 36 and put_row.id != enqueued.id


def test_put_is_false_for_a_dedupe_key_already_queued(db, clock):
    with db() as s, s.begin():
        assert outbox.enqueue(s, TARGET, CARD, dedupe_key="welcome:lilei", now=clock()) is not None
        assert outbox.put(s, TARGET, CARD, dedupe_key="welcome:lilei", now=clock()) is False
        # and the ORM sees a row put in the same transaction
        assert outbox.enqueue(s, TARGET, CARD, dedupe_key="reply:c", now=clock()) is not None
        assert outbox.put(s, TARGET, CARD, dedupe_key="reply:c", now=clock()) is False
        assert outbox.put(s, TARGET, CARD, dedupe_key="reply:d", now=clock()) is True
        assert outbox.enqueue(s, TARGET, CARD, dedupe_key="reply:d", now=clock()) is None
    assert count(db, OutboxMessage) == 3


# --- through the app: the same event at once, on a real handler -----------------------------------


@pytest.fixture
def feishu_services(engine, clock, demo_team):  # noqa: ANN001
    from bot.services import build_services
    from bot.web.app import create_app

    settings = Settings(
        database_url="sqlite://",
        secret_keys=(Secret(TEST_KEY),),
        public_url="http://planloop.test",
        bots=(ff.bot_config(),),
    )
    services = build_services(settings, clock=clock, engine=engine)
    app = create_app(settings, services)
    app.testing = True
    return app, services


def test_the_same_help_message_delivered_six_times_at_once_is_answered_once(feishu_services, db, clock):
    """A platform retry racing the original (or a replayed request) on six threads: every answer is
    Feishu's 200, one event row, one reply in the outbox — on PostgreSQL with real concurrency."""
    app, services = feishu_services
    event = ff.deliver(ff.text_message("帮助", open_id="ou_lilei", event_id="ev-race"), now=clock())
    start = threading.Barrier(6)
    answers: list[tuple[int, object]] = []

    def post() -> None:
        client = app.test_client()
        start.wait()
        resp = client.post(URL, data=event.body, headers=event.headers)
        answers.append((resp.status_code, resp.get_json()))

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert answers == [(200, {"msg": "success"})] * 6
    with db() as s:
        assert s.scalars(select(InboundEvent.key)).all() == ["feishu-main:ev-race"]
        rows = s.scalars(select(OutboxMessage)).all()
    assert [(r.dedupe_key, r.channel, r.target, r.card["title"]) for r in rows] == [
        ("reply:feishu-main:ev-race", "user", "ou_lilei", "planloop 帮助")
    ]


def test_help_for_a_known_person_builds_no_person_and_shows_the_leaders_commands(feishu_services, db, clock):
    """帮助 is public: the router learns the actor's id from one row and the handler never loads the
    Person; the leader still gets the leader's part of the help."""
    app, services = feishu_services
    seen: list[Context] = []
    original = services.router._commands["帮助"]

    def spy(event, ctx):  # noqa: ANN001, ANN202
        card = original[0](event, ctx)
        seen.append(ctx)
        return card

    services.router._commands["帮助"] = (spy, original[1])
    for who, event_id in [
        ("ou_zhangwei", "ev-leader"),
        ("ou_lilei", "ev-member"),
        ("ou_nobody", "ev-stranger"),
    ]:
        event = ff.deliver(ff.text_message("帮助", open_id=who, event_id=event_id), now=clock())
        assert app.test_client().post(URL, data=event.body, headers=event.headers).status_code == 200
    assert [(c.person_id, c._person) for c in seen] == [("zhangwei", None), ("lilei", None), (None, None)]
    with db() as s:
        cards = {r.target: r.card["blocks"][0]["text"] for r in s.scalars(select(OutboxMessage))}
    assert "组长命令" in cards["ou_zhangwei"] and "组长命令" not in cards["ou_lilei"]
    assert "可用命令" in cards["ou_nobody"]


def test_context_loads_the_person_on_first_use(db, clock, demo_team):
    from zoneinfo import ZoneInfo

    with db() as s, s.begin():
        ctx = Context(session=s, now=clock(), tz=ZoneInfo("Asia/Shanghai"), person_id="lilei")
        assert ctx._person is None and ctx.welcomed() is False  # demo_team greeted everyone: not loaded yet
        person = ctx.person
        assert isinstance(person, Person) and person.id == "lilei" and person.name == "李雷"
        assert ctx.welcomed() is True  # now from the loaded person
        ctx.person = None
        assert (ctx.person_id, ctx.person) == (None, None)


@pytest.mark.parametrize(("rowcount", "answer"), [(1, True), (0, False), (-1, None), (2, None)])
def test_an_unknown_row_count_is_an_error_not_a_guess(rowcount, answer):
    from types import SimpleNamespace

    from storage.db import inserted

    if answer is None:
        with pytest.raises(RuntimeError, match="expected 0 or 1"):
            inserted(SimpleNamespace(rowcount=rowcount))
    else:
        assert inserted(SimpleNamespace(rowcount=rowcount)) is answer
