"""storage/hot.py: a HotStatement writes the row SQLAlchemy writes, and reads what it reads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, select

from cards.model import Card, Markdown
from storage import outbox
from storage.db import insert_new
from storage.hot import HotStatement
from storage.models import OutboxMessage

NOW = datetime(2026, 12, 7, 1, 2, 3, 456789, tzinfo=UTC)
CARD = Card(title="周计划 ✓", blocks=(Markdown("转化率 +2%\n客诉率 −10%"),))


def _row(session, key: str) -> dict:
    row = session.scalars(select(OutboxMessage).where(OutboxMessage.dedupe_key == key)).one()
    values = {c.name: getattr(row, c.name) for c in OutboxMessage.__table__.columns}
    values.pop("id")
    values.pop("dedupe_key")
    return values


def test_the_row_written_is_the_row_core_writes(db):
    """Every column, through the same bind processors: timestamps, JSON, defaults left out."""
    target = outbox.Target("feishu-main", "user", "ou_lilei", reply_handle="om_1")
    values = outbox._values(outbox.Message(target, CARD, "hot"), NOW, None)
    with db() as s, s.begin():
        conn = s.connection()
        statement = insert_new(conn.dialect.name, OutboxMessage.__table__)
        assert HotStatement(statement).rowcount(conn, values) == 1
        conn.execute(statement, {**values, "id": "core-id", "dedupe_key": "core"})
    with db() as s:
        hot, core = _row(s, "hot"), _row(s, "core")
    assert hot == core
    assert hot["card"] == CARD.to_dict() and hot["created_at"].replace(tzinfo=UTC) == NOW


def test_a_conflict_counts_zero_and_a_query_gives_the_first_row_or_none(db, demo_team):
    people = select(bindparam("marker"), select(OutboxMessage.id).exists()).limit(bindparam("n", 1))
    first = HotStatement(people)
    with db() as s, s.begin():
        conn = s.connection()
        insert = HotStatement(insert_new(conn.dialect.name, OutboxMessage.__table__))
        values = outbox._values(outbox.Message(outbox.Target("b", "user", "u"), CARD, "k"), NOW, None)
        assert [insert.rowcount(conn, values), insert.rowcount(conn, {**values, "id": "other"})] == [1, 0]
        marker, exists = first.first(conn, {"marker": "m"}) or (None, None)  # n keeps its own value
        assert (marker, bool(exists)) == ("m", True)
        missing = HotStatement(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == bindparam("k")))
        assert missing.first(conn, {"k": "nobody"}) is None


def test_a_statement_is_compiled_once_per_dialect_and_column_order(db):
    from storage.models import InboundEvent

    with db() as s, s.begin():
        conn = s.connection()
        statement = HotStatement(insert_new(conn.dialect.name, InboundEvent.__table__))
        written = [
            statement.rowcount(conn, {"key": "a", "received_at": NOW}),
            statement.rowcount(conn, {"key": "b", "received_at": NOW}),
            statement.rowcount(conn, {"received_at": NOW, "key": "c"}),  # positional order follows
        ]
        keys = s.scalars(select(InboundEvent.key).order_by(InboundEvent.key)).all()
    assert written == [1, 1, 1] and keys == ["a", "b", "c"]
    assert len(statement._compiled) == 2


def test_an_insert_missing_a_column_sqlalchemy_would_default_is_refused(db):
    """outbox.status has a Python-side default: left out, a raw insert would write NULL."""
    values = outbox._values(outbox.Message(outbox.Target("b", "user", "u"), CARD, "k"), NOW, None)
    del values["status"]
    with db() as s, s.begin():
        conn = s.connection()
        statement = HotStatement(insert_new(conn.dialect.name, OutboxMessage.__table__))
        with pytest.raises(ValueError, match="'status'"):
            statement.rowcount(conn, values)
