"""The weekly bulk paths (issue 18 §6): a run and its publishing read and write in a fixed number
of statements however many people, with the same versions, audit entries and outbox rows as one
person at a time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import case, event, func, select

from appraisal.templates import spec_of
from cards.model import Card
from handlers.appraisal_runs import publish, run_week
from handlers.leave import WeekLeave, away_whole_week, leave_days
from storage import outbox
from storage.models import (
    Appraisal,
    AuditLog,
    Identity,
    Kpi,
    Leave,
    MetricSample,
    OutboxMessage,
    Person,
    Plan,
    PlanItem,
    Team,
    Template,
)
from storage.people import person_target, person_targets

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)  # Sunday 20:00 +08:00, the end of 2026-W48
WEEK = "2026-W48"
MONDAY = date(2026, 11, 23)


def seed(s, teams: dict[str, int]) -> None:
    """Per team, that many operations people with a two-item plan, a chat and a week of samples;
    every fifth also has a leave inside the week (read for the flags)."""
    s.add(Kpi(key="cr", name="转化率", unit="%", direction="up", metric="cr", scope="shop"))
    s.add(Kpi(key="ctr", name="点击率", unit="%", direction="up", metric="ctr", scope="shop"))
    entry = {"id": "ops-default", "role": "operations", "weights": {"cr": 60, "ctr": 40}}
    s.add(Template(id="ops-default", name="运营默认", role="operations", spec=spec_of(entry)))
    for team in teams:
        s.add(Team(id=team, name=team, chat_bot="sim", chat_id=team))
    s.flush()
    people = [
        (f"p{n:03d}", team)
        for n, (team, _) in enumerate((team, n) for team, size in teams.items() for n in range(size))
    ]
    for n, (pid, team) in enumerate(people):
        s.add(Person(id=pid, name=f"员工{n}", team_id=team, role="operations"))
    s.flush()
    for n, (pid, team) in enumerate(people):
        s.add(Identity(bot_id="sim", external_id=f"u{n}", person_id=pid))
        plan = Plan(person_id=pid, team_id=team, week=WEEK, submitted_at=NOW)
        plan.items = [
            PlanItem(position=1, text="a", kpi_key="cr", scope=f"s{n % 3}", target_text="+1",
                     baseline=D("3"), target=D("4")),
            PlanItem(position=2, text="b", kpi_key="ctr", scope=f"s{n % 3}", target_text="+1",
                     baseline=D("2"), target=D("3")),
        ]  # fmt: skip
        s.add(plan)
        if n % 5 == 0:
            s.add(Leave(person_id=pid, start=MONDAY, until=MONDAY + timedelta(days=1), at=NOW))
    for scope in ("s0", "s1", "s2"):
        for d in range(7):
            for metric, value in (("cr", "3.5"), ("ctr", "2.5")):
                day = MONDAY + timedelta(days=d)
                s.add(MetricSample(metric=metric, scope=scope, day=day, value=D(value), fetched_at=NOW))
    s.flush()


@contextmanager
def counted(engine) -> Iterator[list[str]]:  # noqa: ANN001
    statements: list[str] = []

    def count(conn, cursor, statement, params, context, executemany) -> None:  # noqa: ANN001
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def statements_of(db, engine, team: str, people: int) -> list[int]:  # noqa: ANN001
    """The statements of a team's first run, its recompute and the publishing of its cards."""
    counts = []
    for reason in ("", "重算"):
        with db() as s, s.begin(), counted(engine) as statements:
            rows = run_week(s, WEEK, NOW, reason=reason, team=team)
            assert len(rows) == people
            assert publish(s, rows, NOW, bots={"sim"}) == people
            publishing = len(statements)
            rows = run_week(s, WEEK, NOW, reason=reason, team=team)
        counts += [publishing, len(statements) - publishing]
    return counts


def test_a_run_and_its_cards_take_the_same_statements_for_4_people_and_for_40(db, engine) -> None:
    with db() as s, s.begin():
        seed(s, {"small": 4, "big": 40})
    small = statements_of(db, engine, "small", 4)
    big = statements_of(db, engine, "big", 40)
    assert small == big
    assert max(small) < 40  # a query per person would make the big team's at least 40


def test_bulk_writes_keep_every_version_audit_and_card_once(db) -> None:
    with db() as s, s.begin():
        seed(s, {"ops": 12})
    for reason in ("", "重算", "补录"):
        with db() as s, s.begin():
            rows = run_week(s, WEEK, NOW, reason=reason)
            publish(s, rows, NOW, bots={"sim"})
            publish(s, rows, NOW, bots={"sim"})  # a retried publish queues nothing again
    with db() as s:
        versions = s.execute(
            select(Appraisal.person_id, func.count(), func.sum(case((Appraisal.current, 1), else_=0)))
            .group_by(Appraisal.person_id)
            .order_by(Appraisal.person_id)
        ).all()
        audits = s.scalar(select(func.count()).where(AuditLog.action == "appraisal.publish"))
        cards = list(s.scalars(select(OutboxMessage.dedupe_key)))
        newest = s.scalars(select(Appraisal).where(Appraisal.current.is_(True))).all()
        flags = {r.person_id: r.rules["flags"] for r in newest}
        reasons = {r.version_reason for r in newest}
    assert [(pid, count, current) for pid, count, current in versions] == [
        (f"p{n:03d}", 3, 1) for n in range(12)
    ]
    assert audits == 36
    assert len(cards) == len(set(cards)) == 36
    assert {r.version for r in newest} == {3}
    assert reasons == {"补录；结果未变"}
    # the leave rows loaded for the whole run flag exactly the people who had one that week
    assert sorted(pid for pid, f in flags.items() if "on_leave" in f) == ["p000", "p005", "p010"]


def test_enqueue_many_queues_each_key_once(db) -> None:
    card = Card(title="t")
    target = outbox.Target("sim", "user", "u1")
    with db() as s, s.begin():
        assert outbox.enqueue(s, target, card, dedupe_key="k1", now=NOW) is not None
        queued = outbox.enqueue_many(
            s,
            [outbox.Message(target, card, key) for key in ("k1", "k2", "k3", "k2")],
            now=NOW,
        )
        assert outbox.enqueue_many(s, [], now=NOW) == []
    with db() as s:
        rows = {r.dedupe_key: r for r in s.scalars(select(OutboxMessage))}
    assert queued == ["k2", "k3"]
    assert sorted(rows) == ["k1", "k2", "k3"]
    assert {(r.status, r.attempts, r.parts_sent, r.target) for r in rows.values()} == {
        ("pending", 0, 0, "u1")
    }
    assert rows["k2"].card == card.to_dict()


@pytest.mark.parametrize(
    "identities, chat_bot, bots, expected",
    [
        ([("sim", "u1")], "sim", {"sim"}, ("sim", "u1")),
        ([("sim", "u1"), ("feishu", "ou_1")], "feishu", {"sim", "feishu"}, ("feishu", "ou_1")),
        ([("sim", "u1"), ("feishu", "ou_1")], "sim", {"sim", "feishu"}, ("sim", "u1")),
        ([("dingtalk", "d1"), ("feishu", "ou_1")], None, {"feishu", "dingtalk"}, ("dingtalk", "d1")),
        ([("feishu", "ou_1")], "feishu", {"sim"}, None),
        ([], "sim", {"sim"}, None),
    ],
)
def test_person_targets_answer_as_person_target(db, identities, chat_bot, bots, expected) -> None:
    with db() as s, s.begin():
        s.add(Team(id="t", name="组", chat_bot=chat_bot))
        s.add(Person(id="a", name="甲", team_id="t", role="operations"))
        s.flush()
        for bot_id, external in identities:
            s.add(Identity(bot_id=bot_id, external_id=external, person_id="a"))
        s.flush()
        person = s.get(Person, "a")
        one = person_target(s, person, bots)
        many = person_targets(s, [person], bots)
    got = (one.bot_id, one.target) if one else None
    assert got == expected
    assert many == ({"a": one} if one else {})


@pytest.mark.parametrize(
    "leaves, until, days, away",
    [
        ([], None, [], False),
        ([], date(2026, 11, 29), [], True),  # no leave rows: the old "on leave until"
        ([], date(2026, 11, 28), [], False),
        ([("2026-11-20", "2026-11-24")], None, ["2026-11-23", "2026-11-24"], False),
        ([("2026-11-20", "2026-12-02")], None, [f"2026-11-{d}" for d in range(23, 30)], True),
        ([("2026-11-23", "2026-11-25"), ("2026-11-26", "2026-11-29")], None,
         [f"2026-11-{d}" for d in range(23, 30)], True),
        ([("2026-11-01", "2026-11-05")], date(2026, 12, 31), [], False),  # rows win over the old field
    ],
)  # fmt: skip
def test_week_leave_answers_as_one_person_at_a_time(db, leaves, until, days, away) -> None:
    with db() as s, s.begin():
        s.add(Team(id="t", name="组"))
        s.add(Person(id="a", name="甲", team_id="t", role="operations", on_leave_until=until))
        s.add(Person(id="b", name="乙", team_id="t", role="operations"))
        s.flush()
        for start, end in leaves:
            s.add(
                Leave(person_id="a", start=date.fromisoformat(start), until=date.fromisoformat(end), at=NOW)
            )
        s.flush()
        person = s.get(Person, "a")
        for people in (None, ["a", "b"]):
            bulk = WeekLeave.load(s, WEEK, people)
            assert bulk.leave_days("a") == leave_days(s, "a", WEEK) == [date.fromisoformat(d) for d in days]
            assert bulk.away_whole_week(person) is away_whole_week(s, person, WEEK) is away
